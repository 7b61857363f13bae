/** openPolicy: a neutral host. Any registered key may run; optional per-key rate limit and daily job quota. */
import type { Decision, PolicyV1 } from '@weft/core'
import type { PolicyComponents, PolicyFactory } from './components.js'

export interface OpenPolicyInit {
  /** at most `jobs` admissions per key in any `perSeconds` window (default window 60 s) */
  rateLimit?: { jobs: number; perSeconds?: number }
  /** at most this many jobs per key per UTC day */
  quota?: { jobsPerDay: number }
}

export function openPolicy (init: OpenPolicyInit = {}): PolicyFactory {
  return (components: PolicyComponents): PolicyV1 => {
    const recent = new Map<string, number[]>()
    const windowMs = (init.rateLimit?.perSeconds ?? 60) * 1000
    return {
      specificationVersion: 'v1',
      name: 'open',
      summary: () => ({ name: 'open', rateLimit: init.rateLimit ?? null, quota: init.quota ?? null }),
      admit ({ keyId, now }): Decision {
        if (init.quota !== undefined) {
          const used = components.ledger.jobsToday(now, keyId)
          if (used >= init.quota.jobsPerDay) {
            return { allow: false, code: 'RATE_LIMITED', reason: `daily quota of ${init.quota.jobsPerDay} jobs used; try again after 00:00 UTC`, details: { quota: init.quota.jobsPerDay, used } }
          }
        }
        if (init.rateLimit !== undefined) {
          const times = (recent.get(keyId) ?? []).filter(t => t > now - windowMs)
          if (times.length >= init.rateLimit.jobs) {
            const retryAfterMs = times[0]! + windowMs - now
            return { allow: false, code: 'RATE_LIMITED', reason: `more than ${init.rateLimit.jobs} jobs in ${windowMs / 1000} s; retry in ${Math.ceil(retryAfterMs / 1000)} s`, details: { retryAfterMs } }
          }
          times.push(now)
          recent.set(keyId, times)
        }
        return { allow: true }
      },
    }
  }
}
