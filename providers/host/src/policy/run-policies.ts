/** Runs policies in order; the first deny wins. Allowed limits from several policies combine to the tightest. */
import { WeftError, type AdmissionRequest, type PolicyV1 } from '@weft/core'

export interface Admission { maxEgressBytes: number | null; timeoutMs: number | null }

export async function runPolicies (policies: readonly PolicyV1[], request: AdmissionRequest): Promise<Admission> {
  let maxEgressBytes: number | null = null
  let timeoutMs: number | null = null
  for (const policy of policies) {
    const decision = await policy.admit(request)
    if (!decision.allow) {
      throw new WeftError(decision.code, `${policy.name} policy: ${decision.reason}`, { policy: policy.name, ...decision.details })
    }
    const limits = decision.limits
    if (limits?.maxEgressBytes !== undefined) maxEgressBytes = Math.min(maxEgressBytes ?? Infinity, limits.maxEgressBytes)
    if (limits?.timeoutMs !== undefined) timeoutMs = Math.min(timeoutMs ?? Infinity, limits.timeoutMs)
  }
  return { maxEgressBytes, timeoutMs }
}
