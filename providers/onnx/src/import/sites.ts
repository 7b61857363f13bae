/**
 * Module outputs and inputs of an imported graph. Rule (deterministic): a module's output candidates are the
 * values produced inside its scope and consumed outside it (or graph outputs); the primary output is the
 * floating-point candidate produced last in graph order (the module's return value), ties → lower output slot.
 * Its input is the first value (node order, then input slot) consumed inside but produced outside, skipping
 * initializers and Constant outputs; floating-point values first, then graph inputs (input_ids), then any value
 * (an embedding's ids).
 */
import type { onnx } from '../graph/onnx.js'

const FLOAT_TYPES = new Set([1, 10, 11, 16]) // FLOAT, FLOAT16, DOUBLE, BFLOAT16

export interface GraphFacts {
  nodes: onnx.NodeProto[]
  producer: Map<string, number>
  consumers: Map<string, number[]>
  constants: Set<string>
  outputs: Set<string>
  inputs: Set<string>
  elemType: (value: string) => number
}

export interface ModuleSites {
  path: string
  type: string
  depth: number
  /** graph position used for forward ordering */
  order: number
  output?: string
  input?: string
  /** nodes inside the scope (graph order) */
  members: number[]
  kind: 'module' | 'site'
}

export function graphFacts (graph: onnx.GraphProto, elemType: (value: string) => number): GraphFacts {
  const producer = new Map<string, number>()
  const consumers = new Map<string, number[]>()
  graph.node.forEach((node, index) => {
    node.output.forEach((value) => { if (value !== '') producer.set(value, index) })
    node.input.forEach((value) => {
      if (value === '') return
      const list = consumers.get(value) ?? []
      if (list.at(-1) !== index) list.push(index)
      consumers.set(value, list)
    })
  })
  const constants = new Set(graph.initializer.map((tensor) => tensor.name))
  graph.node.forEach((node) => { if (node.opType === 'Constant') node.output.forEach((value) => constants.add(value)) })
  return { nodes: graph.node, producer, consumers, constants, outputs: new Set(graph.output.map((value) => value.name)),
    inputs: new Set(graph.input.map((value) => value.name)), elemType }
}

function primaryOutput (facts: GraphFacts, members: Set<number>): string | undefined {
  let best: { value: string; float: boolean; index: number; slot: number } | undefined
  for (const index of members) {
    facts.nodes[index].output.forEach((value, slot) => {
      if (value === '') return
      const escapes = facts.outputs.has(value) || (facts.consumers.get(value) ?? []).some((consumer) => !members.has(consumer))
      if (!escapes) return
      const candidate = { value, float: FLOAT_TYPES.has(facts.elemType(value)), index, slot }
      const better = best === undefined || (candidate.float && !best.float) ||
        (candidate.float === best.float && (candidate.index > best.index || (candidate.index === best.index && candidate.slot < best.slot)))
      if (better) best = candidate
    })
  }
  return best?.value
}

function firstInput (facts: GraphFacts, members: number[], memberSet: Set<number>): string | undefined {
  let graphInput: string | undefined
  let fallback: string | undefined
  for (const index of members) {
    for (const value of facts.nodes[index].input) {
      if (value === '' || facts.constants.has(value)) continue
      const from = facts.producer.get(value)
      if (from !== undefined && memberSet.has(from)) continue
      if (FLOAT_TYPES.has(facts.elemType(value))) return value
      if (facts.inputs.has(value)) graphInput ??= value
      fallback ??= value
    }
  }
  return graphInput ?? fallback
}

/** Every module (and container) with its bound values, in forward order: children precede their parents. */
export function moduleSites (facts: GraphFacts, chains: string[][], types: Map<string, string>): ModuleSites[] {
  const members = new Map<string, number[]>()
  chains.forEach((chain, index) => chain.forEach((path) => {
    const list = members.get(path) ?? []
    list.push(index)
    members.set(path, list)
  }))
  const paths = new Set(members.keys())
  for (const path of [...paths]) {
    const parts = path.split('.')
    for (let i = 1; i < parts.length; i++) paths.add(parts.slice(0, i).join('.'))
  }
  const out: ModuleSites[] = []
  for (const path of paths) {
    const list = members.get(path)
    const depth = path.split('.').length
    if (list === undefined) {
      const container = /^\d+$/.test(firstChildSegment(path, paths) ?? '') ? 'ModuleList' : 'Module'
      out.push({ path, type: types.get(path) ?? container, depth, order: -1, members: [], kind: 'module' })
      continue
    }
    const set = new Set(list)
    const output = primaryOutput(facts, set)
    const input = firstInput(facts, list, set)
    out.push({ path, type: types.get(path) ?? 'Module', depth, order: output === undefined ? -1 : facts.producer.get(output) ?? -1, output, input, members: list, kind: 'module' })
  }
  for (const entry of out) {
    if (entry.order >= 0) continue
    // containers (and modules without an escaping value) sit right after their last descendant
    const descendants = out.filter((other) => other.path.startsWith(entry.path + '.') && other.order >= 0)
    entry.order = Math.max(-1, ...descendants.map((other) => other.order), ...entry.members)
  }
  out.push(...attentionProbs(facts, out, chains))
  return out.sort((a, b) => a.order - b.order || b.depth - a.depth || (a.path < b.path ? -1 : 1))
}

function firstChildSegment (path: string, paths: Set<string>): string | undefined {
  for (const other of paths) if (other.startsWith(path + '.')) return other.slice(path.length + 1).split('.')[0]
  return undefined
}

/** `<attention module>.probs`: the single Softmax directly inside a module whose class names it an attention. */
function attentionProbs (facts: GraphFacts, modules: ModuleSites[], chains: string[][]): ModuleSites[] {
  const sites: ModuleSites[] = []
  for (const module of modules) {
    if (!/Attention/i.test(module.type)) continue
    const softmax = module.members.filter((index) => facts.nodes[index].opType === 'Softmax' && chains[index].at(-1) === module.path)
    if (softmax.length !== 1) continue
    sites.push({ path: `${module.path}.probs`, type: 'attention_probs', depth: module.depth + 1, order: softmax[0],
      output: facts.nodes[softmax[0]].output[0], members: [softmax[0]], kind: 'site' })
  }
  return sites
}
