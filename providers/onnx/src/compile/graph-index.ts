/** Lookups over a base graph the compiler needs repeatedly: producers, consumers, scopes, what depends on graph inputs. */
import type { ModuleEntry } from '@weft/core'
import type { onnx } from '../graph/onnx.js'
import { SCOPE_KEY, type ModelGraph } from '../graph/model-graph.js'

/** A node's `weft.scope` metadata (its innermost module path), '' when absent. */
export function scopeOf (node: onnx.NodeProto): string {
  return node.metadataProps.find(p => p.key === SCOPE_KEY)?.value ?? ''
}

export interface GraphIndex {
  nodes: onnx.NodeProto[]
  /** value name → index of the node producing it */
  producer: Map<string, number>
  /** value name → indices of the nodes reading it (once per input slot, in node order) */
  consumers: Map<string, number[]>
  /** node index → its `weft.scope` ('' when absent) */
  scope: string[]
  initializers: Set<string>
  graphInputs: Set<string>
  /** values that (transitively) depend on a graph input: per-row values */
  perRow: Set<string>
}

const cache = new WeakMap<ModelGraph, GraphIndex>()

export function graphIndex (graph: ModelGraph): GraphIndex {
  const known = cache.get(graph)
  if (known !== undefined) return known
  const g = graph.model.graph!
  const nodes = g.node
  const initializers = new Set(g.initializer.map(t => t.name))
  const graphInputs = new Set(g.input.map(v => v.name).filter(n => !initializers.has(n)))
  const producer = new Map<string, number>()
  const consumers = new Map<string, number[]>()
  const scope: string[] = []
  const perRow = new Set<string>(graphInputs)
  nodes.forEach((node, i) => {
    for (const out of node.output) producer.set(out, i)
    for (const input of node.input) {
      const list = consumers.get(input)
      if (list === undefined) consumers.set(input, [i])
      else list.push(i)
    }
    scope.push(scopeOf(node))
  })
  for (const node of topoOrder(nodes, producer)) {
    if (node.input.some(name => perRow.has(name))) for (const out of node.output) perRow.add(out)
  }
  const made = { nodes, producer, consumers, scope, initializers, graphInputs, perRow }
  cache.set(graph, made)
  return made
}

const entries = new WeakMap<ModelGraph['manifest']['modules'], Map<string, ModuleEntry>>()

/** The graph's manifest entries by path (the first entry of a path, as `modules.find` would give), built once per modules array. */
export function manifestEntries (graph: ModelGraph): Map<string, ModuleEntry> {
  const modules = graph.manifest.modules
  const known = entries.get(modules)
  if (known !== undefined) return known
  const made = new Map<string, ModuleEntry>()
  for (const entry of modules) if (!made.has(entry.path)) made.set(entry.path, entry)
  entries.set(modules, made)
  return made
}

/** Nodes in a topological order (stable: keeps the given order when it already is one). */
export function topoOrder (nodes: readonly onnx.NodeProto[], producer?: Map<string, number>): onnx.NodeProto[] {
  const made = producer ?? new Map(nodes.flatMap((node, i) => node.output.map(o => [o, i] as [string, number])))
  const state = new Uint8Array(nodes.length) // 0 new, 1 visiting, 2 done
  const order: onnx.NodeProto[] = []
  const visit = (start: number): void => {
    state[start] = 1
    const stack: [number, number][] = [[start, 0]]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      const inputs = nodes[top[0]]!.input
      if (top[1] < inputs.length) {
        const p = made.get(inputs[top[1]++]!)
        if (p === undefined) continue
        if (state[p] === 1) throw new Error(`graph has a cycle through node ${p}`)
        if (state[p] === 0) { state[p] = 1; stack.push([p, 0]) }
        continue
      }
      state[top[0]] = 2
      order.push(nodes[top[0]]!)
      stack.pop()
    }
  }
  for (let i = 0; i < nodes.length; i++) if (state[i] === 0) visit(i)
  return order
}

export function inScope (scope: string, module: string): boolean {
  return scope === module || scope.startsWith(module + '.')
}
