/**
 * What a policy plugin may see of the host: the egress ledger and the served models. Policies are factories
 * `(init) => (components) => PolicyV1`, so they can be composed as data and tested against a real store.
 */
import type { Manifest, PolicyV1 } from '@weft/core'

export interface EgressLedger {
  /** bytes charged today (UTC) plus bytes reserved by admitted, unfinished jobs; all keys when `kid` is absent */
  committedToday (now: number, kid?: string): number
  /** jobs this key submitted today (UTC) */
  jobsToday (now: number, kid: string): number
}

export interface PolicyComponents {
  ledger: EgressLedger
  /** manifests of the models the host serves, for summaries such as the exfiltration horizon */
  models (): Manifest[]
}

export type PolicyFactory = (components: PolicyComponents) => PolicyV1

/** Parses '50MB', '1.5GiB', '1024', 2048 → bytes (decimal units for kB/MB/GB, binary for KiB/MiB/GiB). */
export function parseBytes (value: string | number): number {
  if (typeof value === 'number') return value
  const match = /^\s*([\d.]+)\s*([kmgt]i?b?|b)?\s*$/i.exec(value)
  if (match === null) throw new Error(`cannot parse a byte size from '${value}' (use e.g. 50MB, 2GiB or 1048576)`)
  const unit = (match[2] ?? 'b').toLowerCase().replace(/b$/, '')
  const powers: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 }
  const factor = powers[unit]
  if (factor === undefined) throw new Error(`unknown byte unit in '${value}'`)
  return Math.round(Number(match[1]) * factor)
}
