/**
 * Which providers a routed run may use: the client's `require`/`prefer` choice (open or closed policy, provider
 * ids, queue length) and the provider's published policy summary judged against the Program before it is sent
 * (forbidden ops, per-save element limit, per-job egress cap), so a Program the policy refuses never goes there.
 */
import { inferProgramTypes, numel, type Manifest, type Program } from '@weft/core'
import type { ProviderRecord, RecordPolicy } from '@weft/federation'

/** A condition on providers: every field given must hold. */
export interface ProviderChoice {
  /** 'closed': providers whose policy guards the weights (forbidden ops, reductions or egress limits); 'open': the others */
  policy?: 'open' | 'closed'
  /** one provider id (`ed25519:…`) or several */
  provider?: string | readonly string[]
  /** at most this many jobs waiting in the provider's queue (from its health probe, else its record) */
  maxQueue?: number
}

/** `require` filters providers; `prefer` ranks those that match it first (health and load decide among equals). */
export interface RouteChoice {
  require?: ProviderChoice
  prefer?: ProviderChoice
}

const BYTES: Record<string, number> = { float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1 }

/** true when the record's policy summary says it guards the weights (older records: the closed-model policy's name) */
function isClosed (policy: RecordPolicy): boolean {
  if (typeof policy.closed === 'boolean') return policy.closed
  return policy.name.split('+').includes('closed-model')
}

/** null when `record` (queued jobs `queued`, if probed) satisfies `choice`, else why not. */
export function choiceMismatch (record: ProviderRecord, choice: ProviderChoice | undefined, queued?: number): string | null {
  if (choice === undefined) return null
  if (choice.policy !== undefined && (choice.policy === 'closed') !== isClosed(record.policy)) return `its policy is not ${choice.policy}`
  if (choice.provider !== undefined) {
    const ids = typeof choice.provider === 'string' ? [choice.provider] : choice.provider
    if (!ids.includes(record.provider)) return 'it is not one of the providers asked for'
  }
  if (choice.maxQueue !== undefined) {
    const depth = queued ?? record.capacity.queueDepth
    if (depth > choice.maxQueue) return `its queue holds ${depth} jobs, more than ${choice.maxQueue}`
  }
  return null
}

export interface ProgramFacts {
  ops: ReadonlySet<string>
  /** each save's element count and bytes, when every dimension is known (trace mode with token ids) */
  saves: { name: string; elements: number; bytes: number }[] | null
}

/** What the policy checks need to know of a Program, computed once per run. */
export function programFacts (program: Program, manifest: Manifest | undefined): ProgramFacts {
  const ops = new Set(program.nodes.map(([op]) => op))
  if (manifest === undefined || program.mode !== 'trace') return { ops, saves: null }
  try {
    const types = inferProgramTypes(program, manifest)
    const saves: NonNullable<ProgramFacts['saves']> = []
    for (const [index, [op, attrs, inputs]] of program.nodes.entries()) {
      if (op !== 'save') continue
      const type = types[index] ?? types[inputs[0]!]
      if (type === undefined || !type.shape.every((d): d is number => typeof d === 'number')) return { ops, saves: null }
      const elements = numel(type.shape as number[])
      saves.push({ name: String((attrs as { name?: unknown }).name), elements, bytes: elements * (BYTES[type.dtype] ?? 8) })
    }
    return { ops, saves }
  } catch {
    return { ops, saves: null } // the provider's validation will say what is wrong
  }
}

/** null when nothing in the summary refuses the Program, else the reason (what the provider would answer 403 for). */
export function policyRefusal (policy: RecordPolicy, facts: ProgramFacts): string | null {
  const forbidden = Array.isArray(policy.forbiddenOps) ? policy.forbiddenOps.filter(op => facts.ops.has(op as string)) : []
  if (forbidden.length > 0) return `its policy forbids ${forbidden.join(', ')}`
  if (facts.saves === null) return null
  const maxElements = policy.maxElementsPerSave
  if (typeof maxElements === 'number') {
    const large = facts.saves.filter(s => s.elements > maxElements)
    if (large.length > 0) return `its policy allows at most ${maxElements} elements per save (${large.map(s => `${s.name}: ${s.elements}`).join(', ')})`
  }
  const total = facts.saves.reduce((n, s) => n + s.bytes, 0)
  for (const field of ['perJobCap', 'egressPerKeyPerDay', 'egressPerDay'] as const) {
    const cap = policy[field]
    if (typeof cap === 'number' && total > cap) return `the job returns ${total} bytes, more than its ${field} of ${cap}`
  }
  return null
}
