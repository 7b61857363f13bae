/**
 * Client-side trust in providers (spec/provider-record.md, "Threat model and trust"): with no trust options every
 * verified record is usable (its signature proves only who announced it); with them, a provider is used only when
 * its id is allow-listed or an endorsement signed by a trusted endorser key vouches for it serving the model (at
 * the revision, when the endorsement names one) and has not expired.
 */
import { fromHex } from '@weft/core'
import type { Endorsement } from '@weft/federation/endorsement'
import type { ProviderRecord } from '@weft/federation'
import { federation } from './federation.js'

export interface TrustOptions {
  /** provider ids (`ed25519:…`) trusted outright */
  providers?: readonly string[]
  /** Ed25519 public keys (64 hex digits or bytes) whose endorsements vouch for providers */
  endorsers?: readonly (string | Uint8Array)[]
  /** endorsements the client holds itself (besides those providers carry in their records) */
  endorsements?: readonly Uint8Array[]
}

export class TrustPolicy {
  private readonly providers: ReadonlySet<string>
  private readonly endorsers: Uint8Array[]
  private readonly held: readonly Uint8Array[]
  /** verified endorsements by their bytes (hex), or the error that refused them */
  private readonly verified = new Map<string, Endorsement | null>()

  constructor (options: TrustOptions, private readonly clock: () => number = Date.now) {
    this.providers = new Set(options.providers ?? [])
    this.endorsers = (options.endorsers ?? []).map(key => typeof key === 'string' ? fromHex(key) : key)
    this.held = options.endorsements ?? []
  }

  /** true when the options restrict anything */
  get active (): boolean { return this.providers.size > 0 || this.endorsers.length > 0 }

  private endorsement (bytes: Uint8Array): Endorsement | null {
    const key = Buffer.from(bytes).toString('hex')
    let entry = this.verified.get(key)
    if (entry === undefined) {
      const { verifyEndorsement } = federation().endorsements
      try { entry = verifyEndorsement(bytes, { trusted: this.endorsers, now: Math.floor(this.clock() / 1000) }) } catch { entry = null }
      if (entry !== null && this.verified.size < 4096) this.verified.set(key, entry)
    }
    // expiry is judged at every use, verification is cached
    return entry !== null && Math.floor(this.clock() / 1000) <= entry.expiresAt + 60 ? entry : null
  }

  /** null when `record` may serve `model` at `revision`, else why not */
  refusal (record: ProviderRecord, model: string, revision: string): string | null {
    if (!this.active || this.providers.has(record.provider)) return null
    if (this.endorsers.length > 0) {
      for (const bytes of [...(record.endorsements ?? []), ...this.held]) {
        const endorsement = this.endorsement(bytes)
        if (endorsement !== null && federation().endorsements.endorses(endorsement, record.provider, model, revision)) return null
      }
      return `it is not allow-listed and no trusted endorser vouches for it serving ${model} at ${revision}`
    }
    return 'it is not on the trusted providers list'
  }
}
