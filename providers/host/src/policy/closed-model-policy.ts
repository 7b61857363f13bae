/**
 * closedModelPolicy: for weights that must not leave. Egress budgets (per key per day, aggregate per day, per job),
 * forbidden ops (default: every op flagged 'reads_weights'), optional required reductions, optional bans on
 * low-precision casts and on reads of embedding rows, and a published exfiltration horizon = parameters × the least
 * bytes per parameter an allowed Program reaches ÷ allowed aggregate egress per day (a lower bound; see horizon.ts).
 */
import { OPS, type Decision, type DType, type PolicyV1, type AdmissionRequest } from '@weft/core'
import { parseBytes, type PolicyComponents, type PolicyFactory } from './components.js'
import { FULL_PRECISION_DTYPES, embeddingExactSites, exfiltrationHorizonDays, leastBytesPerParameter, weightDerivedNodes, type HorizonBasis } from './horizon.js'

export { exfiltrationHorizonDays }

export interface ClosedModelPolicyInit {
  egressPerKeyPerDay?: number | string
  egressPerDay?: number | string
  perJobCap?: number | string
  /** op names refused outright; default: ops whose table entry has the 'reads_weights' flag */
  forbiddenOps?: string[]
  /** every save must be reduced on the provider to at most this many elements (e.g. topk, mean, argmax) */
  requiredReductions?: { maxElementsPerSave: number }
  /**
   * refuse `cast` to anything but float32/float64 of weight-derived values ('weight-derived': reads, module calls,
   * params, grads and what is computed from them) or of every value ('all'); default false (casts allowed)
   */
  forbidLowPrecisionCasts?: false | 'weight-derived' | 'all'
  /** refuse `read`s that return embedding rows exactly (the Embedding modules' outputs and the first block's input); default false */
  forbidEmbeddingReads?: boolean
  /** bits per parameter an extractor is assumed to settle for when computing the horizon (default 8: int8 quantization) */
  horizonPrecisionBits?: number
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

export function closedModelPolicy (init: ClosedModelPolicyInit = {}): PolicyFactory {
  const perKey = init.egressPerKeyPerDay === undefined ? null : parseBytes(init.egressPerKeyPerDay)
  const perDay = init.egressPerDay === undefined ? null : parseBytes(init.egressPerDay)
  const perJob = init.perJobCap === undefined ? null : parseBytes(init.perJobCap)
  const forbidden = new Set(init.forbiddenOps ?? defaultForbiddenOps())
  const lowPrecision = init.forbidLowPrecisionCasts ?? false
  const forbidEmbeddings = init.forbidEmbeddingReads ?? false
  const basis: HorizonBasis = leastBytesPerParameter({ forbiddenOps: forbidden, forbidLowPrecisionCasts: lowPrecision, precisionBits: init.horizonPrecisionBits ?? 8 })
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
      forbidLowPrecisionCasts: lowPrecision,
      forbidEmbeddingReads: forbidEmbeddings,
      exfiltrationHorizon: basis,
      exfiltrationHorizonDays: Object.fromEntries(components.models().map(m => [m.name, exfiltrationHorizonDays(m, perDay, basis.bytesPerParam)])),
      adapterDownloads,
    }),
    admit: request => forbiddenOps(request, forbidden) ?? lowPrecisionCasts(request, lowPrecision) ??
      (forbidEmbeddings ? embeddingReads(request) : null) ?? reductions(request, init.requiredReductions) ?? budgets(request, components, perKey, perDay, perJob),
    admitDownload: request => adapterDownloads === 'host-only'
      ? { allow: false, code: 'POLICY_DENIED', reason: `adapters stay on this closed-model provider (host-only): '${request.adapter}' can be used by your later Programs but its values cannot be downloaded`, details: { adapterDownloads, adapter: request.adapter } }
      : budgets({ keyId: request.keyId, now: request.now, estimatedEgressBytes: request.bytes }, components, perKey, perDay, perJob),
  })
}

/** Every trace of a session, the Program itself first. */
const tracesOf = (program: AdmissionRequest['program']): Pick<AdmissionRequest['program'], 'nodes'>[] => [program, ...(program.then ?? [])]

function forbiddenOps (request: AdmissionRequest, forbidden: Set<string>): Decision | null {
  // every trace of a session: a later trace is as able to read weights as the first
  const hits = tracesOf(request.program).flatMap((trace, t) => trace.nodes.flatMap(([op], node) => forbidden.has(op) ? [{ trace: t, node, op }] : []))
  if (hits.length === 0) return null
  const ops = [...new Set(hits.map(h => h.op))]
  const details: Record<string, unknown> = { forbiddenOps: ops, nodes: hits.filter(h => h.trace === 0).map(h => h.node) }
  if (hits.some(h => h.trace > 0)) details.traces = hits.map(h => ({ trace: h.trace, node: h.node }))
  return { allow: false, code: 'POLICY_DENIED', reason: `this closed model forbids the op(s) ${ops.join(', ')}; save reduced activations instead`, details }
}

function lowPrecisionCasts (request: AdmissionRequest, rule: false | 'weight-derived' | 'all'): Decision | null {
  if (rule === false) return null
  // every trace of a session (a later trace's `from` values count as weight-derived)
  const hits = tracesOf(request.program).flatMap((trace, t) => {
    const derived = weightDerivedNodes(trace)
    return trace.nodes.flatMap(([op, attrs, inputs], node) =>
      op === 'cast' && !FULL_PRECISION_DTYPES.includes(attrs.dtype as DType) && (rule === 'all' || inputs.some(i => derived[i] === true))
        ? [{ trace: t, node, dtype: attrs.dtype as string }]
        : [])
  })
  if (hits.length === 0) return null
  return {
    allow: false, code: 'POLICY_DENIED',
    reason: `this closed model forbids low-precision casts of ${rule === 'all' ? 'any value' : 'weight-derived values'} (rule forbidLowPrecisionCasts); cast to float32 or float64 only: ${hits.map(h => `node ${h.node} → ${h.dtype}`).join(', ')}`,
    details: { rule: 'forbidLowPrecisionCasts', scope: rule, nodes: hits.filter(h => h.trace === 0).map(h => h.node), dtypes: [...new Set(hits.map(h => h.dtype))], ...(hits.some(h => h.trace > 0) ? { traces: hits.map(h => ({ trace: h.trace, node: h.node })) } : {}) },
  }
}

function embeddingReads (request: AdmissionRequest): Decision | null {
  const sites = embeddingExactSites(request.manifest)
  const hits = tracesOf(request.program).flatMap((trace, t) => trace.nodes.flatMap(([op, attrs], node) => {
    if (op !== 'read') return []
    const site = String(attrs.site)
    const port = attrs.port === 'input' ? 'input' : 'output'
    return (port === 'output' ? sites.outputs : sites.inputs).has(site) ? [{ trace: t, node, site, port }] : []
  }))
  if (hits.length === 0) return null
  return {
    allow: false, code: 'POLICY_DENIED',
    reason: `this closed model forbids reads that return embedding rows exactly (rule forbidEmbeddingReads): ${hits.map(h => `${h.site} ${h.port}`).join(', ')}`,
    details: { rule: 'forbidEmbeddingReads', nodes: hits.filter(h => h.trace === 0).map(h => h.node), sites: [...new Set(hits.map(h => h.site))], ...(hits.some(h => h.trace > 0) ? { traces: hits.map(h => ({ trace: h.trace, node: h.node })) } : {}) },
  }
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
