/**
 * Parameters of an imported graph: initializers named under the HF root become HF parameter names
 * (`model.transformer.wpe.weight` → `transformer.wpe.weight`); an Embedding whose Gather reads another
 * module's initializer (tied weights) also gets `<embedding>.weight`.
 */
import type { onnx } from '../graph/onnx.js'
import type { ModelGraph } from '../graph/model-graph.js'
import { dtypeOf } from './values.js'
import type { ModuleSites } from './sites.js'

export type ParamMap = ModelGraph['params']

export function importParams (graph: onnx.GraphProto, root: string, modules: ModuleSites[]): ParamMap {
  const params: ParamMap = new Map()
  const topLevel = new Set(modules.map((module) => module.path.split('.')[0]))
  const byName = new Map(graph.initializer.map((tensor) => [tensor.name, tensor]))
  const add = (name: string, tensor: onnx.TensorProto): void => {
    const dtype = dtypeOf(tensor.dataType)
    if (dtype !== undefined && !params.has(name)) params.set(name, { initializer: tensor.name, shape: tensor.dims.map(Number), dtype })
  }
  for (const tensor of graph.initializer) {
    const name = root === '' ? tensor.name : tensor.name.startsWith(root + '.') ? tensor.name.slice(root.length + 1) : null
    if (name !== null && name.includes('.') && topLevel.has(name.split('.')[0])) add(name, tensor)
  }
  for (const module of modules) {
    if (module.type !== 'Embedding') continue
    const gather = module.members.map((index) => graph.node[index]).find((node) => node.opType === 'Gather' && byName.has(node.input[0]))
    if (gather !== undefined) add(`${module.path}.weight`, byName.get(gather.input[0])!)
  }
  return params
}

/** Parameters owned by `path` (its `path.`-prefixed names), each initializer counted once. */
export function parametersUnder (params: ParamMap, path: string): number {
  const seen = new Set<string>()
  let total = 0
  for (const [name, param] of params) {
    if ((path === '' || name.startsWith(path + '.')) && !seen.has(param.initializer)) {
      seen.add(param.initializer)
      total += param.shape.reduce((a, b) => a * b, 1)
    }
  }
  return total
}
