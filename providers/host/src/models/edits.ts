/**
 * Provider-wide edits: an operator's Program fragment (nodes only, no saves) applied to every job on a model.
 * The fragment is instantiated once per invoke of the job (read/write/… `invoke` attrs rewritten) and placed
 * before the job's own nodes, so the job's reads see the edited values.
 */
import { WeftError, type Program, type ProgramNode } from '@weft/core'

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

/** The Program that actually runs: every edit, once per invoke, then the job's nodes (indices shifted). */
export function applyEdits (program: Program, fragments: readonly EditFragment[]): Program {
  if (fragments.length === 0) return program
  const prefix: ProgramNode[] = []
  for (let invoke = 0; invoke < program.invokes.length; invoke++) {
    for (const fragment of fragments) {
      const offset = prefix.length
      for (const [op, attrs, inputs] of fragment.nodes) {
        const instanced = 'invoke' in attrs || op === 'read' || op === 'write' ? { ...attrs, invoke } : attrs
        prefix.push([op, instanced, inputs.map(i => i + offset)])
      }
    }
  }
  const shift = prefix.length
  const nodes: ProgramNode[] = [...prefix, ...program.nodes.map(([op, attrs, inputs]): ProgramNode => [op, attrs, inputs.map(i => i + shift)])]
  const result: Program = { ...program, nodes }
  if (program.locations !== undefined) result.locations = [...prefix.map(() => null), ...program.locations]
  return result
}

/** How receipts name an edit: `<name>@<digest>`. */
export function editLabel (fragment: Pick<EditFragment, 'name' | 'digest'>): string { return `${fragment.name}@${fragment.digest}` }
