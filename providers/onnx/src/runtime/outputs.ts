/** Resolves site names (manifest paths, `<path>:input`, `logits`) to graph values and exposes them as graph outputs. */
import { WeftError } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import type { onnx } from '../graph/onnx.js'
import { FLOAT, INT64, valueInfo } from '../build/graph-builder.js'

export interface ResolvedOutput { name: string; value: string; elemType: number }

/** `transformer.h.3.attn` → its output value; `transformer.h.3.attn:input` → its input value; else a raw value name. */
export function resolveOutput (graph: ModelGraph, name: string): ResolvedOutput {
  if (name === 'logits') return { name, value: graph.logits, elemType: FLOAT }
  const isInput = name.endsWith(':input')
  const path = isInput ? name.slice(0, -':input'.length) : name
  const binding = graph.sites.get(path)
  const value = isInput ? binding?.input : binding?.output
  if (value !== undefined) {
    const entry = graph.manifest.modules.find(m => m.path === path)
    const dtype = isInput ? entry?.input?.dtype : entry?.output?.dtype
    return { name, value, elemType: dtype === 'int64' ? INT64 : FLOAT }
  }
  const produced = graph.model.graph?.node.some(node => node.output.includes(name)) ?? false
  if (!produced) {
    throw new WeftError('PROGRAM_INVALID', `'${name}' is not a module, site or value of ${graph.manifest.name}`, { name })
  }
  return { name, value: name, elemType: FLOAT }
}

/** A shallow copy of `model` whose graph outputs are exactly `outputs`. */
export function withOutputs (model: onnx.ModelProto, outputs: ResolvedOutput[]): onnx.ModelProto {
  const graph = model.graph!
  const seen = new Set<string>()
  const output = outputs.filter(o => !seen.has(o.value) && seen.add(o.value)).map(o => valueInfo(o.value, o.elemType))
  return { ...model, graph: { ...graph, output } }
}
