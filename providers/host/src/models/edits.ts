/**
 * Provider-wide edits: an operator's Program fragment (nodes only, no saves) applied to every job on a model.
 * The fragment is instantiated once per invoke of the job (read/write/… `invoke` attrs rewritten) and placed
 * before the job's own nodes, so the job's reads see the edited values.
 */
import { WeftError, instanceFragments, prependNodes, type Program, type ProgramNode } from '@weft/core'

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
 * trace's own nodes (core's `prependNodes` moves inputs, `from` nodes and `train.loss` with them).
 */
export function applyEdits (program: Program, fragments: readonly EditFragment[]): Program {
  if (fragments.length === 0) return program
  const nodes = fragments.map(fragment => fragment.nodes)
  return prependNodes(program, trace => ({ nodes: instanceFragments(nodes, trace.invokes.length) }))
}

/** How receipts name an edit: `<name>@<digest>`. */
export function editLabel (fragment: Pick<EditFragment, 'name' | 'digest'>): string { return `${fragment.name}@${fragment.digest}` }
