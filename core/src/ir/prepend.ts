/**
 * Nodes placed before a Program's own, in every trace: how edits apply. A provider's edit fragments are instanced once
 * per invoke (`instanceFragments`); the SDK records `model.edit` callbacks per invoke. Either way `prependNodes` puts
 * them first and moves what points at node indices: inputs, `from` nodes (a node of an earlier trace), `train.loss`
 * (a node of trace 0), and the source locations stay aligned with the nodes.
 */
import type { Attrs, Program, ProgramNode, SourceLocation, Trace } from './program.js'

/** Nodes to place before one trace's own, with their source locations when known. */
export interface NodePrefix {
  nodes: readonly ProgramNode[]
  locations?: readonly (SourceLocation | null)[]
}

/**
 * The nodes of `fragments` for a trace of `invokes` invokes: every fragment once per invoke, fragments in order within
 * an invoke, each copy's `invoke` attr (every read's and write's) set to its invoke and its inputs moved to its place.
 */
export function instanceFragments (fragments: readonly (readonly ProgramNode[])[], invokes: number): ProgramNode[] {
  const nodes: ProgramNode[] = []
  for (let invoke = 0; invoke < invokes; invoke++) {
    for (const fragment of fragments) {
      const offset = nodes.length
      for (const [op, attrs, inputs] of fragment) {
        const instanced = 'invoke' in attrs || op === 'read' || op === 'write' ? { ...attrs, invoke } : attrs
        nodes.push([op, instanced, inputs.map(i => i + offset)])
      }
    }
  }
  return nodes
}

/**
 * `program` with `prefixOf(trace, t)` before the own nodes of each trace (t = 0 the Program itself, then `then[t - 1]`):
 * inputs shift by the prefix's length, `from` nodes by that of the trace they name, `train.loss` by trace 0's.
 * Locations are kept when the prefix or the trace has some (null where unknown).
 */
export function prependNodes (program: Program, prefixOf: (trace: Trace, index: number) => NodePrefix): Program {
  const shifts: number[] = []
  const prepended = (trace: Trace, index: number): Pick<Program, 'nodes' | 'locations'> => {
    const prefix = prefixOf(trace, index)
    const shift = prefix.nodes.length
    shifts.push(shift)
    const nodes: ProgramNode[] = [...prefix.nodes, ...trace.nodes.map(([op, attrs, inputs]): ProgramNode => [op, op === 'from' ? fromShifted(attrs, shifts) : attrs, inputs.map(i => i + shift)])]
    if (prefix.locations === undefined && trace.locations === undefined) return { nodes }
    return { nodes, locations: [...(prefix.locations ?? prefix.nodes.map(() => null)), ...(trace.locations ?? trace.nodes.map(() => null))] }
  }
  const result: Program = { ...program }
  delete result.locations
  Object.assign(result, prepended(program, 0))
  if (program.train !== undefined) result.train = { ...program.train, loss: program.train.loss + shifts[0]! }
  if (program.then !== undefined) {
    result.then = program.then.map((trace, t) => {
      const next: Trace = { ...trace }
      delete next.locations
      return Object.assign(next, prepended(trace, t + 1))
    })
  }
  return result
}

/** A `from` node's attrs with its node shifted like the earlier trace it names (left as is when that is no earlier trace: validation reports it). */
function fromShifted (attrs: Attrs, shifts: readonly number[]): Attrs {
  const trace = attrs.trace
  const node = attrs.node
  if (typeof trace !== 'number' || typeof node !== 'number' || shifts[trace] === undefined || trace >= shifts.length - 1) return attrs
  return { ...attrs, node: node + shifts[trace]! }
}
