/**
 * Provider-wide edits: an operator's Program fragment (nodes only, no saves) applied to every job on a model.
 * The fragment is instantiated once per invoke of the job (read/write/… `invoke` attrs rewritten) and placed
 * before the job's own nodes, so the job's reads see the edited values.
 */
import { WeftError, type Attrs, type Program, type ProgramNode } from '@weft/core'

export interface EditFragment { id: string; name: string; digest: string; nodes: ProgramNode[] }

const FORBIDDEN_IN_FRAGMENT = new Set(['save', 'stop'])

/** Structural checks of a fragment (the model-specific type check happens by validating an instantiated Program). */
export function checkFragment (nodes: unknown): ProgramNode[] {
  if (!Array.isArray(nodes) || nodes.length === 0) throw new WeftError('PROGRAM_INVALID', 'an edit needs a non-empty `nodes` array of [op, attrs, inputs]')
  nodes.forEach((node, index) => {
    if (!Array.isArray(node) || node.length !== 3 || typeof node[0] !== 'string' || typeof node[1] !== 'object' || node[1] === null || !Array.isArray(node[2])) {
      throw new WeftError('PROGRAM_INVALID', `edit node ${index} is not [op, attrs, inputs]`, { node: index })
    }
    if (FORBIDDEN_IN_FRAGMENT.has(node[0])) throw new WeftError('PROGRAM_INVALID', `edit node ${index}: '${node[0]}' is not allowed in a provider-wide edit (edits change the model, they return nothing)`, { node: index, op: node[0] })
    for (const input of node[2] as unknown[]) {
      if (!Number.isInteger(input) || (input as number) < 0 || (input as number) >= index) throw new WeftError('PROGRAM_INVALID', `edit node ${index}: input ${String(input)} is not an earlier node`, { node: index })
    }
  })
  if (!nodes.some(node => node[0] === 'write')) throw new WeftError('PROGRAM_INVALID', 'an edit must contain at least one write')
  return nodes as ProgramNode[]
}

/**
 * The Program that actually runs: in every trace of a session, every edit once per invoke of that trace, then the
 * trace's own nodes (indices shifted). What points at node indices follows the shift: `train.loss` (a node of trace
 * 0) and `from` nodes (a node of an earlier trace).
 */
export function applyEdits (program: Program, fragments: readonly EditFragment[]): Program {
  if (fragments.length === 0) return program
  const shifts: number[] = []
  const edited = (trace: Pick<Program, 'invokes' | 'nodes' | 'locations'>): Pick<Program, 'nodes' | 'locations'> => {
    const prefix = instantiate(fragments, trace.invokes.length)
    const shift = prefix.length
    shifts.push(shift)
    const nodes: ProgramNode[] = [...prefix, ...trace.nodes.map(([op, attrs, inputs]): ProgramNode => [op, op === 'from' ? fromShifted(attrs, shifts) : attrs, inputs.map(i => i + shift)])]
    return trace.locations === undefined ? { nodes } : { nodes, locations: [...prefix.map(() => null), ...trace.locations] }
  }
  const result: Program = { ...program, ...edited(program) }
  if (program.train !== undefined) result.train = { ...program.train, loss: program.train.loss + shifts[0]! }
  if (program.then !== undefined) result.then = program.then.map(trace => ({ ...trace, ...edited(trace) }))
  return result
}

function instantiate (fragments: readonly EditFragment[], invokes: number): ProgramNode[] {
  const prefix: ProgramNode[] = []
  for (let invoke = 0; invoke < invokes; invoke++) {
    for (const fragment of fragments) {
      const offset = prefix.length
      for (const [op, attrs, inputs] of fragment.nodes) {
        const instanced = 'invoke' in attrs || op === 'read' || op === 'write' ? { ...attrs, invoke } : attrs
        prefix.push([op, instanced, inputs.map(i => i + offset)])
      }
    }
  }
  return prefix
}

/** A `from` node's attrs with its node index shifted like the earlier trace it names (left as is when out of range: validation reports it). */
function fromShifted (attrs: Attrs, shifts: readonly number[]): Attrs {
  const trace = attrs.trace
  const node = attrs.node
  if (typeof trace !== 'number' || typeof node !== 'number' || shifts[trace] === undefined || trace >= shifts.length - 1) return attrs
  return { ...attrs, node: node + shifts[trace]! }
}

/** How receipts name an edit: `<name>@<digest>`. */
export function editLabel (fragment: Pick<EditFragment, 'name' | 'digest'>): string { return `${fragment.name}@${fragment.digest}` }
