/**
 * Pruning: keeps only the nodes, inputs, initializers and value_infos the graph outputs need, in topological
 * order. A trace that saves layer 2 never computes layers 3+ or the head: this is also early stop.
 */
import { create } from '@bufbuild/protobuf'
import { onnx } from '../graph/onnx.js'
import { topoOrder } from './graph-index.js'

export function prune (graph: onnx.GraphProto): onnx.GraphProto {
  const producer = new Map<string, number>()
  graph.node.forEach((node, i) => { for (const out of node.output) if (out !== '') producer.set(out, i) })
  const keep = new Set<number>()
  const needed = new Set<string>()
  const stack = graph.output.map(o => o.name)
  while (stack.length > 0) {
    const name = stack.pop()!
    if (name === '' || needed.has(name)) continue
    needed.add(name)
    const p = producer.get(name)
    if (p === undefined || keep.has(p)) continue
    keep.add(p)
    stack.push(...graph.node[p]!.input)
    for (const attribute of graph.node[p]!.attribute) {
      // subgraph bodies (If/Loop) read outer values implicitly: keep everything they name
      for (const sub of [attribute.g, ...attribute.graphs]) for (const n of sub?.node ?? []) stack.push(...n.input)
    }
  }
  const nodes = topoOrder(graph.node.filter((_, i) => keep.has(i)))
  return create(onnx.GraphProtoSchema, {
    ...graph,
    node: nodes,
    input: graph.input.filter(v => needed.has(v.name)),
    initializer: graph.initializer.filter(t => needed.has(t.name)),
    valueInfo: graph.valueInfo.filter(v => needed.has(v.name)),
  })
}
