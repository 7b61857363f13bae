/**
 * RoutingExecutor: an Executor that finds a model's providers on the directory and runs each Program on the best
 * live provider that may take it:
 * - eligible: hosts the model (at the revision pinned from the first verified manifest), satisfies the client's
 *   `require`, is trusted (trust options), and its record's policy summary does not refuse the Program
 *   (forbidden ops, per-save limits, egress caps judged client-side); `prefer` ranks the matching ones first;
 * - verified at connect: the provider answers as the record's id, and the manifest it serves has the digest and
 *   revision its record announces (a liar is banned and the next provider tried);
 * - on failure mid-job (death, overload, misbehaviour) the provider is banned with backoff and the Program re-run,
 *   re-signed, on the next eligible provider; a provider that refuses the Program (POLICY_DENIED, egress budget,
 *   unknown key) is not banned, just not asked again for this run.
 */
import { WeftError, encodeCbor, sha256Digest, type Manifest, type Program } from '@weft/core'
import type { ProviderSelector, Candidate } from '@weft/federation/selection'
import type { VerifiedRecord } from '@weft/federation'
import { federation } from './federation.js'
import type { Executor, ModelInfo, RunOptions, RunResult, SyncTokenizer } from '../executor.js'
import { RemoteExecutor, type ConnectOptions } from '../remote/remote-executor.js'
import { choiceMismatch, policyRefusal, programFacts, type ProgramFacts, type ProviderChoice, type RouteChoice } from './choice.js'
import { TrustPolicy, type TrustOptions } from './trust.js'

/** What routing needs from a directory (a DirectoryNode satisfies it). */
export interface DirectoryLike {
  find (model: string, options?: { timeoutMs?: number; min?: number }): Promise<VerifiedRecord[]>
  /** every record held (for listModels) */
  records? (): VerifiedRecord[]
}

export type ProviderExecutor = Executor & {
  readonly providerId: string
  manifestDigest? (model: string): Promise<string>
  /** the provider's nodes as its newest record lists them (a multi-node provider) */
  useEndpoints? (urls: readonly string[]): void
}
export type ConnectProvider = (options: ConnectOptions) => Promise<ProviderExecutor>

export interface RouteEvent {
  type: 'select' | 'failover' | 'connect-failed' | 'refused'
  model: string
  provider: string
  endpoint: string
  error?: unknown
}

export interface RoutingOptions extends RouteChoice {
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
  /** use only allow-listed or endorsed providers (see TrustOptions) */
  trust?: TrustOptions
  /** milliseconds since the epoch, for endorsement expiry (default Date.now) */
  clock?: () => number
}

interface Route { executor: ProviderExecutor; record: VerifiedRecord; revision: string }

/** Errors after which another provider may succeed: the provider died, is overloaded, or misbehaved. */
export function shouldFailover (error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return false
  if (!WeftError.is(error)) return true // transport: connection refused or reset, stream terminated
  if (error.retryable || error.code === 'JOB_CANCELLED') return true
  // raised client-side while checking the provider's answer (no HTTP status): the provider misbehaved
  const providerFault = ['SIGNATURE_INVALID', 'AUDIENCE_MISMATCH', 'DECODE_FAILED', 'ENVELOPE_INVALID'].includes(error.code)
  return providerFault && error.details.status === undefined
}

/** A provider's refusal of this Program or this key (its policy, its budgets, its key list): another may accept. */
export function isRefusal (error: unknown): error is WeftError {
  return WeftError.is(error) && ['POLICY_DENIED', 'EGRESS_BUDGET_EXCEEDED', 'KEY_UNKNOWN', 'KEY_REVOKED'].includes(error.code) && error.details.status !== undefined
}

const idOf = (entry: VerifiedRecord): string => entry.record.provider

export class RoutingExecutor implements Executor {
  readonly kind = 'remote' as const
  readonly selector: ProviderSelector
  readonly trust: TrustPolicy
  /** one connection per provider, shared by its models */
  private readonly connections = new Map<string, Promise<ProviderExecutor>>()
  /** the route each model last ran on: later runs stay there while it is eligible */
  private readonly preferred = new Map<string, Route>()
  /** a selection in flight per model (concurrent first calls share it) */
  private readonly selecting = new Map<string, Promise<Route>>()
  /** revision each model was pinned to, from the first provider manifest verified against its record */
  private readonly revisions = new Map<string, string>()
  private readonly connectProvider: ConnectProvider
  /** seq of the record whose endpoints each provider's connection uses */
  private readonly endpointSeq = new Map<string, number>()
  private readonly closers: (() => Promise<void>)[] = []

  constructor (private readonly options: RoutingOptions) {
    this.selector = options.selector ?? new (federation().selection.ProviderSelector)()
    this.trust = new TrustPolicy(options.trust ?? {}, options.clock)
    this.connectProvider = options.connect ?? (o => RemoteExecutor.connect(o))
  }

  /** also closes `resource` (e.g. an owned directory node) on close() */
  own (close: () => Promise<void>): this { this.closers.push(close); return this }

  /** the provider currently serving `model`, if routed */
  async current (model: string): Promise<VerifiedRecord | undefined> {
    await this.selecting.get(model)?.catch(() => undefined)
    return this.preferred.get(model)?.record
  }

  /** the revision `model` is pinned to (after its first verified route) */
  revision (model: string): string | undefined { return this.revisions.get(model) }

  private choiceOf (choice: RouteChoice | undefined): RouteChoice {
    return { require: merge(this.options.require, choice?.require), prefer: choice?.prefer ?? this.options.prefer }
  }

  /** null when `entry` may run `model` (and the Program described by `facts`) under `require`, else why not */
  private refusal (entry: VerifiedRecord, model: string, require: ProviderChoice | undefined, facts: ProgramFacts | null): string | null {
    const { record } = entry
    const listed = record.models.find(m => m.name === model)
    if (listed === undefined) return `it does not list ${model}`
    const pinned = this.revisions.get(model)
    if (pinned !== undefined && listed.revision !== pinned) return `it serves ${model} at revision ${listed.revision}, not ${pinned}`
    return choiceMismatch(record, require) ?? this.trust.refusal(record, model, listed.revision) ?? (facts === null ? null : policyRefusal(record.policy, facts))
  }

  /** The route for one run (or for manifests and tokenizers when `facts` is null). */
  private async route (model: string, choice: RouteChoice, exclude: ReadonlySet<string>, facts: ProgramFacts | null): Promise<Route> {
    const usable = (route: Route | undefined): route is Route => route !== undefined && !exclude.has(idOf(route.record)) && !this.selector.isBanned(idOf(route.record)) &&
      this.refusal(route.record, model, choice.require, facts) === null && choiceMismatch(route.record.record, choice.prefer) === null
    const preferred = this.preferred.get(model)
    if (usable(preferred)) {
      this.followNodes(preferred)
      return preferred
    }
    const defaultRoute = exclude.size === 0 && facts === null && choice.require === undefined && choice.prefer === undefined
    if (defaultRoute) {
      let pending = this.selecting.get(model)
      if (pending === undefined) {
        pending = this.select(model, choice, exclude, facts).finally(() => this.selecting.delete(model))
        this.selecting.set(model, pending)
      }
      return await pending
    }
    const inFlight = this.selecting.get(model)
    if (inFlight !== undefined) {
      const route = await inFlight.catch(() => undefined)
      if (usable(route)) return route
    }
    return await this.select(model, choice, exclude, facts)
  }

  private async select (model: string, choice: RouteChoice, exclude: ReadonlySet<string>, facts: ProgramFacts | null): Promise<Route> {
    const listed = await this.options.directory.find(model, { timeoutMs: this.options.findTimeoutMs ?? 5000 })
    const refused: Record<string, string> = {}
    const records = listed.filter(entry => {
      if (exclude.has(idOf(entry))) return false
      const reason = this.refusal(entry, model, choice.require, facts)
      if (reason !== null) refused[idOf(entry)] = reason
      return reason === null
    })
    const ranked = (await this.selector.rank(records)).filter(c => {
      const reason = choiceMismatch(c.record.record, choice.require, c.queued) // queue length as probed
      if (reason !== null) refused[idOf(c.record)] = reason
      return reason === null
    })
    const matchesPreference = (c: Candidate): number => choiceMismatch(c.record.record, choice.prefer, c.queued) === null ? 0 : 1
    const candidates = ranked.sort((a, b) => matchesPreference(a) - matchesPreference(b)) // stable: health and load order within
    for (const candidate of candidates) {
      const { record } = candidate.record
      try {
        const route = await this.connect(candidate.record, model, candidate.endpoints)
        this.options.onRoute?.({ type: 'select', model, provider: record.provider, endpoint: record.endpoint })
        const current = this.preferred.get(model)
        if (current === undefined || exclude.has(idOf(current.record)) || this.selector.isBanned(idOf(current.record)) || facts === null) this.preferred.set(model, route)
        return route
      } catch (error) {
        this.selector.reportFailure(record.provider, error)
        this.options.onRoute?.({ type: 'connect-failed', model, provider: record.provider, endpoint: record.endpoint, error })
      }
    }
    const revision = this.revisions.get(model)
    const why = Object.entries(refused).map(([provider, reason]) => `${provider}: ${reason}`)
    const details = { model, revision, listed: listed.length, eligible: records.length, live: candidates.length, refused }
    // nothing eligible, and some provider that would otherwise do refuses by its policy: say what the policy refuses
    const byPolicy = facts === null || records.length > 0 ? [] : listed.filter(e => !exclude.has(idOf(e)) && this.refusal(e, model, choice.require, null) === null)
    if (byPolicy.length > 0) {
      throw new WeftError('POLICY_DENIED', `no provider of '${model}' admits this Program: ${byPolicy.map(e => `${idOf(e)}: ${refused[idOf(e)]}`).join('; ')}`, details)
    }
    throw new WeftError('PROVIDER_NOT_FOUND', `no live provider of '${model}'${revision === undefined ? '' : ` at revision ${revision}`} may take this (directory listed ${listed.length}, ${records.length} eligible, ${candidates.length} answered their health probe${why.length > 0 ? `; ${why.join('; ')}` : ''})`, details)
  }

  /**
   * A multi-node provider's nodes come and go: when the directory holds a newer record of the route's provider than
   * the one its connection last used, the connection asks the nodes that record lists.
   */
  private followNodes (route: Route): void {
    const provider = idOf(route.record)
    const latest = this.options.directory.records?.().find(entry => entry.record.provider === provider && entry.record.status === 'online')
    const seen = this.endpointSeq.get(provider) ?? route.record.record.seq
    if (latest === undefined || latest.record.seq <= seen || route.executor.useEndpoints === undefined) return
    this.endpointSeq.set(provider, latest.record.seq)
    route.executor.useEndpoints(federation().selection.recordEndpoints(latest.record))
  }

  /**
   * Connects (once per provider) and checks the model's manifest against the record before pinning its revision.
   * A provider of several nodes (the record's `endpoints`) is one connection over all of them, the first node that
   * answered the health probe (`live`) asked first; the connection fails over between them.
   */
  private async connect (entry: VerifiedRecord, model: string, live: readonly string[] = []): Promise<Route> {
    const { record } = entry
    let pending = this.connections.get(record.provider)
    if (pending === undefined) {
      const endpoints = federation().selection.recordEndpoints(record)
      const first = live[0] ?? endpoints[0]!
      pending = this.connectProvider({
        ...this.options.remote, provider: first, key: this.options.key, providerId: record.provider,
        ...(endpoints.length > 1 ? { endpoints: endpoints.filter(e => e !== first) } : {}),
      })
      pending.catch(() => this.connections.delete(record.provider))
      this.connections.set(record.provider, pending)
    }
    const executor = await pending
    const listed = record.models.find(m => m.name === model)!
    const manifest = await executor.manifest(model)
    const digest = executor.manifestDigest !== undefined ? await executor.manifestDigest(model) : sha256Digest(encodeCbor(manifest))
    if (digest !== listed.manifestDigest || manifest.revision !== listed.revision || manifest.name !== model) {
      this.connections.delete(record.provider)
      void executor.close().catch(() => {})
      throw new WeftError('SIGNATURE_INVALID', `provider ${record.provider} announces ${model} at revision ${listed.revision} (manifest ${listed.manifestDigest}) but serves ${manifest.name} at revision ${manifest.revision} (manifest ${digest})`, { provider: record.provider, announced: listed, served: { name: manifest.name, revision: manifest.revision, manifestDigest: digest } })
    }
    if (!this.revisions.has(model)) this.revisions.set(model, manifest.revision)
    return { executor, record: entry, revision: manifest.revision }
  }

  async run (program: Program, options: RunOptions = {}): Promise<RunResult> {
    const model = program.model.name
    if (program.model.revision !== null && !this.revisions.has(model)) this.revisions.set(model, program.model.revision)
    const choice = this.choiceOf(options.route)
    const manifest = await this.manifestIfKnown(model)
    const facts = programFacts(program, manifest)
    const tried = new Set<string>()
    const maxAttempts = this.options.maxAttempts ?? 3
    let lastError: unknown
    while (tried.size < maxAttempts) {
      let route: Route
      try {
        route = await this.route(model, choice, tried, facts)
      } catch (error) {
        if (lastError === undefined) throw error
        if (isRefusal(lastError) && WeftError.is(error, 'PROVIDER_NOT_FOUND')) throw lastError // every provider refused: say why
        throw new WeftError('PROVIDER_UNAVAILABLE', `'${model}' failed on ${tried.size} provider(s) and no other may take it: ${(lastError as Error).message}`, { model, tried: [...tried] }, { cause: lastError })
      }
      const provider = idOf(route.record)
      tried.add(provider)
      try {
        const result = await route.executor.run(program, options)
        this.selector.reportSuccess(provider)
        return { ...result, provider, endpoint: result.endpoint ?? route.record.record.endpoint }
      } catch (error) {
        if (isRefusal(error) && options.signal?.aborted !== true) {
          lastError = error
          this.options.onRoute?.({ type: 'refused', model, provider, endpoint: route.record.record.endpoint, error })
          continue
        }
        if (!shouldFailover(error, options.signal)) throw error
        lastError = error
        this.selector.reportFailure(provider, error)
        this.options.onRoute?.({ type: 'failover', model, provider, endpoint: route.record.record.endpoint, error })
        this.drop(model, route)
      }
    }
    if (isRefusal(lastError)) throw lastError
    throw new WeftError('PROVIDER_UNAVAILABLE', `'${model}' failed on ${tried.size} provider(s): ${(lastError as Error).message}`, { model, tried: [...tried] }, { cause: lastError })
  }

  /** the manifest of `model` from its current route (null-safe: none yet means no size checks before sending) */
  private async manifestIfKnown (model: string): Promise<Manifest | undefined> {
    const route = this.preferred.get(model)
    return route === undefined ? undefined : await route.executor.manifest(model).catch(() => undefined)
  }

  /** Forgets a failed provider's connection and route. */
  private drop (model: string, route: Route): void {
    const provider = idOf(route.record)
    if (this.preferred.get(model) === route) this.preferred.delete(model)
    this.connections.delete(provider)
    this.endpointSeq.delete(provider)
    for (const [other, r] of this.preferred) if (idOf(r.record) === provider) this.preferred.delete(other)
    void route.executor.close().catch(() => {})
  }

  /** Models listed on the directory (needs a directory with `records()`), else those routed so far. */
  async listModels (): Promise<ModelInfo[]> {
    const records = this.options.directory.records?.() ?? [...this.preferred.values()].map(r => r.record)
    const seen = new Map<string, ModelInfo>()
    for (const entry of records) {
      if (entry.record.status !== 'online') continue
      for (const m of entry.record.models) if (!seen.has(m.name)) seen.set(m.name, { name: m.name, revision: m.revision, family: m.family })
    }
    return [...seen.values()]
  }

  private async base (model: string): Promise<Route> { return await this.route(model, this.choiceOf(undefined), new Set(), null) }

  async manifest (model: string): Promise<Manifest> { return await (await this.base(model)).executor.manifest(model) }
  async tokenize (model: string, text: string): Promise<number[]> { return await (await this.base(model)).executor.tokenize(model, text) }
  async decode (model: string, ids: readonly number[]): Promise<string> { return await (await this.base(model)).executor.decode(model, ids) }
  async tokenizer (model: string): Promise<SyncTokenizer | null> {
    const { executor } = await this.base(model)
    return (await executor.tokenizer?.(model)) ?? null
  }

  async close (): Promise<void> {
    await Promise.allSettled([...this.selecting.values()])
    const connections = await Promise.allSettled([...this.connections.values()])
    this.connections.clear()
    this.preferred.clear()
    await Promise.allSettled(connections.map(c => c.status === 'fulfilled' ? c.value.close() : Promise.resolve()))
    await Promise.allSettled(this.closers.map(close => close()))
  }
}

/** `require` from discover and from the model: both must hold (provider lists intersect, the smaller queue wins). */
function merge (base: ProviderChoice | undefined, extra: ProviderChoice | undefined): ProviderChoice | undefined {
  if (base === undefined) return extra
  if (extra === undefined) return base
  const list = (p: ProviderChoice['provider']): string[] | undefined => p === undefined ? undefined : typeof p === 'string' ? [p] : [...p]
  const a = list(base.provider)
  const b = list(extra.provider)
  return {
    policy: extra.policy ?? base.policy,
    provider: a === undefined ? b : b === undefined ? a : a.filter(id => b.includes(id)),
    maxQueue: base.maxQueue === undefined ? extra.maxQueue : extra.maxQueue === undefined ? base.maxQueue : Math.min(base.maxQueue, extra.maxQueue),
  }
}
