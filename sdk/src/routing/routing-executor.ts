/**
 * RoutingExecutor: an Executor that finds a model's providers on the directory, connects to the best live one
 * (health, latency, queue) and, when that provider fails mid-job, bans it with backoff and re-runs the Program on
 * the next one hosting the same model revision — re-signed for the new provider (the remote executor addresses
 * every request to the provider it is connected to).
 */
import { WeftError, type Manifest, type Program } from '@weft/core'
import { ProviderSelector } from '@weft/federation/selection'
import type { VerifiedRecord } from '@weft/federation'
import type { Executor, ModelInfo, RunProgress, RunResult, SyncTokenizer } from '../executor.js'
import { RemoteExecutor, type ConnectOptions } from '../remote/remote-executor.js'

/** What routing needs from a directory (a DirectoryNode satisfies it). */
export interface DirectoryLike {
  find (model: string, options?: { timeoutMs?: number; min?: number }): Promise<VerifiedRecord[]>
  /** every record held (for listModels) */
  records? (): VerifiedRecord[]
}

export type ConnectProvider = (options: ConnectOptions) => Promise<Executor & { readonly providerId: string }>

export interface RouteEvent {
  type: 'select' | 'failover' | 'connect-failed'
  model: string
  provider: string
  endpoint: string
  error?: unknown
}

export interface RoutingOptions {
  directory: DirectoryLike
  /** the researcher's signing key (as for connectRemote) */
  key: ConnectOptions['key']
  selector?: ProviderSelector
  /** how long to wait for the directory to list a provider of the model (default 5000 ms) */
  findTimeoutMs?: number
  /** providers tried per run, the first included (default 3) */
  maxAttempts?: number
  /** options passed to each provider connection (waitSeconds, ttlSeconds, register, fetch) */
  remote?: Omit<ConnectOptions, 'provider' | 'key' | 'providerId'>
  /** default RemoteExecutor.connect */
  connect?: ConnectProvider
  onRoute?: (event: RouteEvent) => void
}

interface Route { executor: Executor & { readonly providerId: string }; record: VerifiedRecord; revision: string }

/** Errors after which another provider may succeed: the provider died, is overloaded, or misbehaved. */
export function shouldFailover (error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return false
  if (!WeftError.is(error)) return true // transport: connection refused or reset, stream terminated
  if (error.retryable || error.code === 'JOB_CANCELLED') return true
  // raised client-side while checking the provider's answer (no HTTP status): the provider misbehaved
  const providerFault = ['SIGNATURE_INVALID', 'AUDIENCE_MISMATCH', 'DECODE_FAILED', 'ENVELOPE_INVALID'].includes(error.code)
  return providerFault && error.details.status === undefined
}

export class RoutingExecutor implements Executor {
  readonly kind = 'remote' as const
  readonly selector: ProviderSelector
  private readonly routes = new Map<string, Promise<Route>>()
  private readonly resolved = new Map<string, Route>()
  /** revision each model was first routed to: failover stays on it */
  private readonly revisions = new Map<string, string>()
  private readonly connectProvider: ConnectProvider
  private readonly closers: (() => Promise<void>)[] = []

  constructor (private readonly options: RoutingOptions) {
    this.selector = options.selector ?? new ProviderSelector()
    this.connectProvider = options.connect ?? (o => RemoteExecutor.connect(o))
  }

  /** also closes `resource` (e.g. an owned directory node) on close() */
  own (close: () => Promise<void>): this { this.closers.push(close); return this }

  /** the provider currently serving `model`, if routed */
  async current (model: string): Promise<VerifiedRecord | undefined> {
    return (await this.routes.get(model)?.catch(() => undefined))?.record
  }

  private route (model: string, exclude: ReadonlySet<string> = new Set()): Promise<Route> {
    let pending = this.routes.get(model)
    if (pending === undefined) {
      const selecting: Promise<Route> = this.select(model, exclude)
      selecting.then(route => { if (this.routes.get(model) === selecting) this.resolved.set(model, route) }, () => { if (this.routes.get(model) === selecting) this.routes.delete(model) })
      pending = selecting
      this.routes.set(model, pending)
    }
    return pending
  }

  private async select (model: string, exclude: ReadonlySet<string>): Promise<Route> {
    const revision = this.revisions.get(model)
    const hosts = (entry: VerifiedRecord): boolean => entry.record.models.some(m => m.name === model && (revision === undefined || m.revision === revision))
    const records = (await this.options.directory.find(model, { timeoutMs: this.options.findTimeoutMs ?? 5000 }))
      .filter(entry => hosts(entry) && !exclude.has(entry.record.provider))
    const candidates = await this.selector.rank(records)
    for (const candidate of candidates) {
      const { record } = candidate.record
      try {
        const executor = await this.connectProvider({ ...this.options.remote, provider: record.endpoint, key: this.options.key, providerId: record.provider })
        const entry = record.models.find(m => m.name === model)!
        this.revisions.set(model, entry.revision)
        this.options.onRoute?.({ type: 'select', model, provider: record.provider, endpoint: record.endpoint })
        return { executor, record: candidate.record, revision: entry.revision }
      } catch (error) {
        this.selector.reportFailure(record.provider, error)
        this.options.onRoute?.({ type: 'connect-failed', model, provider: record.provider, endpoint: record.endpoint, error })
      }
    }
    throw new WeftError('PROVIDER_NOT_FOUND', `no live provider of '${model}'${revision === undefined ? '' : ` at revision ${revision}`} (directory listed ${records.length}, ${candidates.length} answered their health probe)`, { model, revision, listed: records.length, live: candidates.length })
  }

  async run (program: Program, options: { signal?: AbortSignal; onProgress?: (event: RunProgress) => void } = {}): Promise<RunResult> {
    const model = program.model.name
    if (program.model.revision !== null && !this.revisions.has(model)) this.revisions.set(model, program.model.revision)
    const tried = new Set<string>()
    const maxAttempts = this.options.maxAttempts ?? 3
    let lastError: unknown
    while (tried.size < maxAttempts) {
      let route: Route
      try {
        route = await this.route(model, tried)
      } catch (error) {
        throw lastError === undefined ? error : new WeftError('PROVIDER_UNAVAILABLE', `'${model}' failed on ${tried.size} provider(s) and no other is live: ${(lastError as Error).message}`, { model, tried: [...tried] }, { cause: lastError })
      }
      const provider = route.record.record.provider
      tried.add(provider)
      try {
        const result = await route.executor.run(program, options)
        this.selector.reportSuccess(provider)
        return result
      } catch (error) {
        if (!shouldFailover(error, options.signal)) throw error
        lastError = error
        this.selector.reportFailure(provider, error)
        this.options.onRoute?.({ type: 'failover', model, provider, endpoint: route.record.record.endpoint, error })
        this.drop(model, route)
      }
    }
    throw new WeftError('PROVIDER_UNAVAILABLE', `'${model}' failed on ${tried.size} provider(s): ${(lastError as Error).message}`, { model, tried: [...tried] }, { cause: lastError })
  }

  /** Forgets a failed route, unless a concurrent run already replaced it. */
  private drop (model: string, route: Route): void {
    if (this.resolved.get(model) === route) {
      this.routes.delete(model)
      this.resolved.delete(model)
    }
    void route.executor.close().catch(() => {})
  }

  /** Models listed on the directory (needs a directory with `records()`), else those routed so far. */
  async listModels (): Promise<ModelInfo[]> {
    const records = this.options.directory.records?.() ?? await Promise.all([...this.routes.values()].map(r => r.then(x => x.record)))
    const seen = new Map<string, ModelInfo>()
    for (const entry of records) {
      if (entry.record.status !== 'online') continue
      for (const m of entry.record.models) if (!seen.has(m.name)) seen.set(m.name, { name: m.name, revision: m.revision, family: m.family })
    }
    return [...seen.values()]
  }

  async manifest (model: string): Promise<Manifest> { return await (await this.route(model)).executor.manifest(model) }
  async tokenize (model: string, text: string): Promise<number[]> { return await (await this.route(model)).executor.tokenize(model, text) }
  async decode (model: string, ids: readonly number[]): Promise<string> { return await (await this.route(model)).executor.decode(model, ids) }
  async tokenizer (model: string): Promise<SyncTokenizer | null> {
    const { executor } = await this.route(model)
    return (await executor.tokenizer?.(model)) ?? null
  }

  async close (): Promise<void> {
    const routes = await Promise.allSettled([...this.routes.values()])
    this.routes.clear()
    this.resolved.clear()
    await Promise.allSettled(routes.map(r => r.status === 'fulfilled' ? r.value.executor.close() : Promise.resolve()))
    await Promise.allSettled(this.closers.map(close => close()))
  }
}
