/**
 * The directory's state: the newest verified record per provider, judged by a controllable clock. Offers come from
 * gossip, sync exchanges and our own announcements; reads filter expired records, `sweep` forgets them.
 */
import { WeftError } from '@weft/core'
import { DEFAULT_RECORD_SKEW_SECONDS, assertNewer, verifyProviderRecord, type VerifiedRecord } from './provider-record.js'

export type DirectoryChangeType = 'added' | 'updated' | 'withdrawn' | 'expired'
export interface DirectoryChange { type: DirectoryChangeType; provider: string; record: VerifiedRecord }
export type ChangeListener = (change: DirectoryChange) => void

export type OfferResult =
  | { accepted: true; change: DirectoryChange }
  | { accepted: false; error: WeftError }

export interface RecordSetOptions {
  /** milliseconds since the epoch (default Date.now) */
  clock?: () => number
  skewSeconds?: number
  /** most providers held; offers from unknown providers beyond it are refused (default 4096) */
  maxProviders?: number
}

/** Live records first ordered by load (queue depth per batch slot), then freshness, then provider id. */
function byPreference (a: VerifiedRecord, b: VerifiedRecord): number {
  const load = (r: VerifiedRecord): number => r.record.capacity.queueDepth / r.record.capacity.maxBatch
  return load(a) - load(b) || b.record.issuedAt - a.record.issuedAt || (a.record.provider < b.record.provider ? -1 : 1)
}

export class RecordSet {
  private readonly held = new Map<string, VerifiedRecord>()
  private readonly listeners = new Set<ChangeListener>()
  private readonly clock: () => number
  private readonly skew: number
  private readonly maxProviders: number

  constructor (options: RecordSetOptions = {}) {
    this.clock = options.clock ?? Date.now
    this.skew = options.skewSeconds ?? DEFAULT_RECORD_SKEW_SECONDS
    this.maxProviders = options.maxProviders ?? 4096
  }

  /** seconds, as records count time */
  nowSeconds (): number { return Math.floor(this.clock() / 1000) }

  private live (entry: VerifiedRecord, now = this.nowSeconds()): boolean { return now <= entry.record.expiresAt + this.skew }

  /** Verifies and keeps a signed record when it is newer than the one held for its provider. Never throws. */
  offer (bytes: Uint8Array, options: { publisher?: string } = {}): OfferResult {
    const result = this.take(bytes, options)
    if (result.accepted) this.emit(result.change)
    return result
  }

  /**
   * Offers a batch (a directory exchange): every record is taken in before listeners hear of any change, so a
   * listener reading the set sees the whole batch, not its first record. Never throws.
   */
  offerMany (batch: readonly Uint8Array[]): OfferResult[] {
    const results = batch.map(bytes => this.holds(bytes) ? null : this.take(bytes))
    for (const result of results) if (result?.accepted === true) this.emit(result.change)
    return results.filter((r): r is OfferResult => r !== null)
  }

  private take (bytes: Uint8Array, options: { publisher?: string } = {}): OfferResult {
    let verified: VerifiedRecord
    try {
      verified = verifyProviderRecord(bytes, { now: this.nowSeconds(), skewSeconds: this.skew, publisher: options.publisher })
      assertNewer(verified.record, this.held.get(verified.record.provider)?.record.seq)
    } catch (error) {
      return { accepted: false, error: WeftError.is(error) ? error : new WeftError('RECORD_INVALID', `provider record: ${(error as Error).message}`) }
    }
    const provider = verified.record.provider
    const previous = this.held.get(provider)
    if (previous === undefined && this.held.size >= this.maxProviders) {
      this.sweep()
      if (this.held.size >= this.maxProviders) return { accepted: false, error: new WeftError('RECORD_INVALID', `directory holds ${this.maxProviders} providers; record of ${provider} refused`) }
    }
    this.held.set(provider, verified)
    const type: DirectoryChangeType = verified.record.status === 'offline' ? 'withdrawn' : previous === undefined || previous.record.status === 'offline' ? 'added' : 'updated'
    return { accepted: true, change: { type, provider, record: verified } }
  }

  /** true when exactly these bytes are already held (lets relays skip verifying what they have) */
  holds (bytes: Uint8Array): boolean {
    for (const entry of this.held.values()) {
      if (entry.bytes.length === bytes.length && Buffer.compare(entry.bytes, bytes) === 0) return true
    }
    return false
  }

  /** Live, online records listing `model`, preferred first. */
  find (model: string): VerifiedRecord[] {
    const now = this.nowSeconds()
    return [...this.held.values()]
      .filter(entry => entry.record.status === 'online' && this.live(entry, now) && entry.record.models.some(m => m.name === model))
      .sort(byPreference)
  }

  /** Every live record, withdrawals included (what a sync exchange hands to a peer). */
  all (): VerifiedRecord[] {
    const now = this.nowSeconds()
    return [...this.held.values()].filter(entry => this.live(entry, now))
  }

  get (provider: string): VerifiedRecord | undefined {
    const entry = this.held.get(provider)
    return entry !== undefined && this.live(entry) ? entry : undefined
  }

  /** Forgets expired records, reporting each as 'expired' (withdrawn ones silently). */
  sweep (): DirectoryChange[] {
    const now = this.nowSeconds()
    const changes: DirectoryChange[] = []
    for (const [provider, entry] of this.held) {
      if (this.live(entry, now)) continue
      this.held.delete(provider)
      if (entry.record.status === 'online') changes.push({ type: 'expired', provider, record: entry })
    }
    for (const change of changes) this.emit(change)
    return changes
  }

  onChange (listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private emit (change: DirectoryChange): void {
    for (const listener of this.listeners) {
      try { listener(change) } catch { /* a listener's bug must not break the directory */ }
    }
  }
}
