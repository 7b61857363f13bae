/**
 * closedModelPolicy: for weights that must not leave. Egress budgets (per key per day, aggregate per day, per job),
 * forbidden ops (default: every op flagged 'reads_weights'), optional required reductions, and a published
 * exfiltration horizon = model weight bytes ÷ allowed aggregate egress per day.
 */
import { OPS, type Decision, type Manifest, type PolicyV1, type AdmissionRequest } from '@weft/core'
import { DTYPE_BYTES, parseBytes, type PolicyComponents, type PolicyFactory } from './components.js'

export interface ClosedModelPolicyInit {
  egressPerKeyPerDay?: number | string
  egressPerDay?: number | string
  perJobCap?: number | string
  /** op names refused outright; default: ops whose table entry has the 'reads_weights' flag */
  forbiddenOps?: string[]
  /** every save must be reduced on the provider to at most this many elements (e.g. topk, mean, argmax) */
  requiredReductions?: { maxElementsPerSave: number }
  /** bytes per weight when computing the horizon (default 4: float32) */
  bytesPerParameter?: number
  /**
   * Kept adapters' values: 'host-only' (default) — they never leave, a download is POLICY_DENIED (they can still be
   * used by their owner's later Programs); 'counted' — a download is allowed within the same egress budgets as
   * results (per job cap, per key per day, per day) and charged to the ledger.
   */
  adapterDownloads?: 'host-only' | 'counted'
}

export function defaultForbiddenOps (): string[] {
  return Object.values(OPS).filter(op => op.flags.includes('reads_weights')).map(op => op.name)
}

/** Days needed to extract every weight byte at the allowed aggregate egress (null when egress is unbounded). */
export function exfiltrationHorizonDays (manifest: Manifest, egressPerDay: number | null, bytesPerParameter = 4): number | null {
  if (egressPerDay === null || egressPerDay <= 0) return egressPerDay === 0 ? Infinity : null
  return (manifest.parameters * bytesPerParameter) / egressPerDay
}

export function closedModelPolicy (init: ClosedModelPolicyInit = {}): PolicyFactory {
  const perKey = init.egressPerKeyPerDay === undefined ? null : parseBytes(init.egressPerKeyPerDay)
  const perDay = init.egressPerDay === undefined ? null : parseBytes(init.egressPerDay)
  const perJob = init.perJobCap === undefined ? null : parseBytes(init.perJobCap)
  const forbidden = new Set(init.forbiddenOps ?? defaultForbiddenOps())
  const bytesPerParameter = init.bytesPerParameter ?? DTYPE_BYTES.float32!
  const adapterDownloads = init.adapterDownloads ?? 'host-only'

  return (components: PolicyComponents): PolicyV1 => ({
    specificationVersion: 'v1',
    name: 'closed-model',
    summary: () => ({
      name: 'closed-model',
      egressPerKeyPerDay: perKey,
      egressPerDay: perDay,
      perJobCap: perJob,
      forbiddenOps: [...forbidden].sort(),
      requiredReductions: init.requiredReductions ?? null,
      exfiltrationHorizonDays: Object.fromEntries(components.models().map(m => [m.name, exfiltrationHorizonDays(m, perDay, bytesPerParameter)])),
      adapterDownloads,
    }),
    admit: request => forbiddenOps(request, forbidden) ?? reductions(request, init.requiredReductions) ?? budgets(request, components, perKey, perDay, perJob),
    admitDownload: request => adapterDownloads === 'host-only'
      ? { allow: false, code: 'POLICY_DENIED', reason: `adapters stay on this closed-model provider (host-only): '${request.adapter}' can be used by your later Programs but its values cannot be downloaded`, details: { adapterDownloads, adapter: request.adapter } }
      : budgets({ keyId: request.keyId, now: request.now, estimatedEgressBytes: request.bytes }, components, perKey, perDay, perJob),
  })
}

function forbiddenOps (request: AdmissionRequest, forbidden: Set<string>): Decision | null {
  // every trace of a session: a later trace is as able to read weights as the first
  const traces = [request.program, ...(request.program.then ?? [])]
  const hits = traces.flatMap((trace, t) => trace.nodes.flatMap(([op], node) => forbidden.has(op) ? [{ trace: t, node, op }] : []))
  if (hits.length === 0) return null
  const ops = [...new Set(hits.map(h => h.op))]
  const details: Record<string, unknown> = { forbiddenOps: ops, nodes: hits.filter(h => h.trace === 0).map(h => h.node) }
  if (hits.some(h => h.trace > 0)) details.traces = hits.map(h => ({ trace: h.trace, node: h.node }))
  return { allow: false, code: 'POLICY_DENIED', reason: `this closed model forbids the op(s) ${ops.join(', ')}; save reduced activations instead`, details }
}

function reductions (request: AdmissionRequest, rule: ClosedModelPolicyInit['requiredReductions']): Decision | null {
  if (rule === undefined || request.saves === undefined) return null
  const large = request.saves.filter(s => s.shape.reduce((a, b) => a * b, 1) > rule.maxElementsPerSave)
  if (large.length === 0) return null
  return {
    allow: false, code: 'POLICY_DENIED',
    reason: `saves must be reduced on the provider to at most ${rule.maxElementsPerSave} elements each (use topk, argmax, mean, …); too large: ${large.map(s => `${s.name} [${s.shape.join(',')}]`).join(', ')}`,
    details: { maxElementsPerSave: rule.maxElementsPerSave, saves: large },
  }
}

function budgets (request: Pick<AdmissionRequest, 'keyId' | 'now' | 'estimatedEgressBytes'>, components: PolicyComponents, perKey: number | null, perDay: number | null, perJob: number | null): Decision {
  const estimate = request.estimatedEgressBytes
  const remaining: number[] = []
  const refuse = (limit: string, cap: number, left: number): Decision => ({
    allow: false, code: 'EGRESS_BUDGET_EXCEEDED',
    reason: `this job may return up to ${estimate} bytes but the ${limit} budget has ${Math.max(0, left)} bytes left; save fewer or reduced values`,
    details: { limit, cap, remainingBytes: Math.max(0, left), estimatedBytes: estimate },
  })
  if (perJob !== null) {
    if (estimate > perJob) return refuse('per-job', perJob, perJob)
    remaining.push(perJob)
  }
  if (perKey !== null) {
    const left = perKey - components.ledger.committedToday(request.now, request.keyId)
    if (estimate > left) return refuse('per-key-per-day', perKey, left)
    remaining.push(left)
  }
  if (perDay !== null) {
    const left = perDay - components.ledger.committedToday(request.now)
    if (estimate > left) return refuse('per-day', perDay, left)
    remaining.push(left)
  }
  return remaining.length === 0 ? { allow: true } : { allow: true, limits: { maxEgressBytes: Math.min(...remaining) } }
}
