/** The reference interpreter: evaluates one op, or a whole Program given the model-access values. */
import { WeftError } from '../errors/weft-error.js'
import type { Attrs, Program } from '../ir/program.js'
import type { Tensor } from '../tensor/tensor.js'
import { allocData, setElement } from '../tensor/create.js'
import { getOp, isTensorOp } from '../ops/table.js'
import type { InferContext, ValueType } from '../ops/types.js'

const noModel: InferContext = {
  manifest: { name: '', revision: '', family: '', config: {}, parameters: 0, modules: [], tokenizer: null, vocabSize: 0, maxPositions: null },
  seqLen: () => { throw new WeftError('BACKEND_CAPABILITY_MISSING', 'the reference interpreter has no model') },
}

/** Evaluates one tensor op (shape/dtype and values from its definition in the op table). */
export function evalOp (name: string, attrs: Attrs, inputs: Tensor[]): Tensor {
  const def = getOp(name)
  if (!isTensorOp(name)) throw new WeftError('BACKEND_CAPABILITY_MISSING', `${name}: needs a model; the reference interpreter runs tensor ops only`)
  const withDefaults: Attrs = { ...attrs }
  for (const [key, schema] of Object.entries(def.attrs)) {
    if (withDefaults[key] === undefined && schema.default !== undefined) withDefaults[key] = schema.default as Attrs[string]
  }
  const type: ValueType = def.infer(withDefaults, inputs.map(t => ({ shape: [...t.shape], dtype: t.dtype })), noModel)
  const result = def.eval!(withDefaults, inputs, type.shape as number[])
  if (!(result instanceof Float64Array)) return result
  if (type.dtype === 'float16' || type.dtype === 'bfloat16') throw new WeftError('BACKEND_CAPABILITY_MISSING', `${name}: the reference interpreter does not compute in ${type.dtype}`)
  const data = allocData(type.dtype, result.length)
  for (let i = 0; i < result.length; i++) setElement(data, type.dtype, i, result[i]!)
  return { dtype: type.dtype, shape: type.shape as number[], data }
}

/** Supplies the values of model-access nodes (read, param, module_call, write) for `interpretProgram`. */
export type AccessResolver = (node: { index: number; op: string; attrs: Attrs; inputs: Tensor[] }) => Tensor

/** Runs a Program's nodes in order; returns the saves. Access ops go to `resolve`; `stop` is ignored. */
export function interpretProgram (program: Program, resolve?: AccessResolver): Record<string, Tensor> {
  const results: (Tensor | null)[] = []
  const saves: Record<string, Tensor> = {}
  program.nodes.forEach(([op, attrs, inputIds], index) => {
    const inputs = inputIds.map(i => results[i]!)
    if (op === 'stop') { results.push(null); return }
    if (!isTensorOp(op)) {
      if (resolve === undefined) throw new WeftError('BACKEND_CAPABILITY_MISSING', `node ${index}: ${op} needs a model`)
      results.push(resolve({ index, op, attrs, inputs }))
      return
    }
    const value = evalOp(op, attrs, inputs)
    if (op === 'save') saves[attrs.name as string] = value
    results.push(value)
  })
  return saves
}
