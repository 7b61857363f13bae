/**
 * Runs policies in order; the first deny wins. Allowed limits from several policies combine to the tightest.
 * A policy that has not decided within `decisionTimeoutMs` denies (POLICY_DENIED naming it): admissions run one at a time,
 * so a decision that never settles would otherwise stop every submission.
 */
import { WeftError, type AdmissionRequest, type Decision, type DownloadRequest, type PolicyV1 } from '@weft/core'

export interface Admission { maxEgressBytes: number | null; timeoutMs: number | null }

export async function runPolicies (policies: readonly PolicyV1[], request: AdmissionRequest, decisionTimeoutMs = Infinity): Promise<Admission> {
  let maxEgressBytes: number | null = null
  let timeoutMs: number | null = null
  for (const policy of policies) {
    const decision = await decide(policy, request, decisionTimeoutMs)
    if (!decision.allow) {
      throw new WeftError(decision.code, `${policy.name} policy: ${decision.reason}`, { policy: policy.name, ...decision.details })
    }
    const limits = decision.limits
    if (limits?.maxEgressBytes !== undefined) maxEgressBytes = Math.min(maxEgressBytes ?? Infinity, limits.maxEgressBytes)
    if (limits?.timeoutMs !== undefined) timeoutMs = Math.min(timeoutMs ?? Infinity, limits.timeoutMs)
  }
  return { maxEgressBytes, timeoutMs }
}

/** Runs the policies' `admitDownload` (those that have one) in order; the first deny is thrown. */
export async function runDownloadPolicies (policies: readonly PolicyV1[], request: DownloadRequest, decisionTimeoutMs = Infinity): Promise<void> {
  for (const policy of policies) {
    if (policy.admitDownload === undefined) continue
    const decision = await settle(policy, policy.admitDownload(request), decisionTimeoutMs)
    if (!decision.allow) throw new WeftError(decision.code, `${policy.name} policy: ${decision.reason}`, { policy: policy.name, ...decision.details })
  }
}

async function decide (policy: PolicyV1, request: AdmissionRequest, timeoutMs: number): Promise<Decision> {
  return await settle(policy, policy.admit(request), timeoutMs)
}

async function settle (policy: PolicyV1, decision: Decision | Promise<Decision>, timeoutMs: number): Promise<Decision> {
  if (typeof (decision as Partial<PromiseLike<Decision>>).then !== 'function' || !Number.isFinite(timeoutMs)) return await decision
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new WeftError('POLICY_DENIED', `${policy.name} policy: no decision within ${timeoutMs} ms; the request is refused`, { policy: policy.name, reason: 'timeout', timeoutMs })), timeoutMs)
  })
  try { return await Promise.race([decision, timeout]) } finally { clearTimeout(timer) }
}
