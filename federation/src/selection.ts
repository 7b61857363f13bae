/**
 * Choosing among a model's providers: probe `GET /v1/health` (live, answers as the provider the record names,
 * how long the queue is), prefer fast and idle ones, and ban failing ones with exponential backoff (Petals).
 */
import type { VerifiedRecord } from './provider-record.js'
import { recordEndpoints } from './record-shape.js'

export { recordEndpoints } from './record-shape.js'

export interface Candidate {
  record: VerifiedRecord
  /** round trip of the health probe */
  latencyMs: number
  /** jobs waiting per batch slot (from the probe, else the record) */
  load: number
  /** jobs waiting (from the probe, else the record) */
  queued: number
  /** lower is better: latency plus a penalty per batch of queued work */
  score: number
  /** the record's endpoints that answered the probe, in the record's order (a multi-node provider lists several) */
  endpoints: string[]
}

export interface SelectorOptions {
  fetch?: typeof fetch
  /** milliseconds since the epoch (default Date.now); bans follow it */
  clock?: () => number
  /** a provider that does not answer its health probe within this is skipped and banned (default 1500 ms) */
  probeTimeoutMs?: number
  /** first ban (default 2 s), doubling per consecutive failure up to banMaxMs (default 5 min) */
  banBaseMs?: number
  banMaxMs?: number
  /** score penalty per full batch queued ahead (default 200 ms) */
  queuePenaltyMs?: number
}

export interface BanState { failures: number; bannedUntil: number; lastError?: string }

interface HealthBody { status?: unknown; provider?: unknown; queue?: { queued?: unknown } }

export class ProviderSelector {
  private readonly bans = new Map<string, BanState>()
  private readonly fetchImpl: typeof fetch
  private readonly clock: () => number
  private readonly options: Required<Omit<SelectorOptions, 'fetch' | 'clock'>>

  constructor (options: SelectorOptions = {}) {
    this.fetchImpl = options.fetch ?? fetch
    this.clock = options.clock ?? Date.now
    this.options = {
      probeTimeoutMs: options.probeTimeoutMs ?? 1500,
      banBaseMs: options.banBaseMs ?? 2000,
      banMaxMs: options.banMaxMs ?? 300_000,
      queuePenaltyMs: options.queuePenaltyMs ?? 200,
    }
  }

  isBanned (provider: string): boolean {
    const ban = this.bans.get(provider)
    return ban !== undefined && ban.bannedUntil > this.clock()
  }

  banState (provider: string): BanState | undefined { return this.bans.get(provider) }

  /** A failed probe or job: ban for base·2^(failures−1), capped. */
  reportFailure (provider: string, error?: unknown): BanState {
    const failures = (this.bans.get(provider)?.failures ?? 0) + 1
    const duration = Math.min(this.options.banBaseMs * 2 ** (failures - 1), this.options.banMaxMs)
    const state = { failures, bannedUntil: this.clock() + duration, lastError: error === undefined ? undefined : String((error as Error).message ?? error) }
    this.bans.set(provider, state)
    return state
  }

  reportSuccess (provider: string): void { this.bans.delete(provider) }

  /**
   * Probes one provider at each of its endpoints (in parallel); null (and a ban) when no endpoint is live and answers
   * as the record's provider (a record may point at someone else's server: such an endpoint is left out). The
   * candidate's latency and queue are those of the first live endpoint in record order.
   */
  async probe (entry: VerifiedRecord): Promise<Candidate | null> {
    const { record } = entry
    const probes = await Promise.all(recordEndpoints(record).map(async endpoint => ({ endpoint, outcome: await this.probeEndpoint(entry, endpoint).catch((error: unknown) => error as Error) })))
    const live = probes.filter((p): p is { endpoint: string; outcome: { latencyMs: number; queued: number } } => !(p.outcome instanceof Error))
    if (live.length === 0) {
      this.reportFailure(record.provider, probes[0]?.outcome)
      return null
    }
    const { latencyMs, queued } = live[0]!.outcome
    const load = queued / record.capacity.maxBatch
    return { record: entry, latencyMs, load, queued, score: latencyMs + this.options.queuePenaltyMs * load, endpoints: live.map(p => p.endpoint) }
  }

  private async probeEndpoint (entry: VerifiedRecord, endpoint: string): Promise<{ latencyMs: number; queued: number }> {
    const { record } = entry
    const started = performance.now()
    const response = await this.fetchImpl(new URL('/v1/health', endpoint), { signal: AbortSignal.timeout(this.options.probeTimeoutMs), headers: { 'Weft-Protocol': '1' } })
    const body = await response.json() as HealthBody
    const latencyMs = performance.now() - started
    if (!response.ok || body.status !== 'ok') throw new Error(`${endpoint} health answered ${response.status} ${String(body.status)}`)
    if (body.provider !== record.provider) throw new Error(`endpoint ${endpoint} answers as ${String(body.provider)}, not ${record.provider}`)
    return { latencyMs, queued: typeof body.queue?.queued === 'number' ? body.queue.queued : record.capacity.queueDepth }
  }

  /** Probes every record not banned, in parallel; returns the live ones, best first. */
  async rank (records: VerifiedRecord[]): Promise<Candidate[]> {
    const probes = await Promise.all(records.filter(r => !this.isBanned(r.record.provider)).map(r => this.probe(r)))
    return probes.filter((c): c is Candidate => c !== null).sort((a, b) => a.score - b.score || (a.record.record.provider < b.record.record.provider ? -1 : 1))
  }
}
