/**
 * workerBackend: a BackendV1 whose `run` happens off the HTTP event loop, in worker threads or child processes,
 * so onnxruntime's blocking `run()` never stalls the provider. Manifest, tokenize, decode and scan come from a
 * control instance of the same backend in the main thread (cheap, and they must answer while a batch runs).
 * Aborting a run (cancel, time limit): a process is killed and respawned; a thread cannot be stopped safely
 * mid-run, so its run is abandoned (the caller gets JOB_CANCELLED at once, the late result is dropped). A run that
 * trains is first asked to stop (its loop ends after the current step and returns the params and losses so far);
 * only if it has not answered within `trainStopGraceMs` is it killed or abandoned like any other.
 */
import { WeftError, type BackendV1, type BatchJob, type JobResult, type ModelHandleV1, type ModelSource, type RunOptions } from '@weft/core'
import { loadBackend } from './load-backend.js'
import type { BackendSpec, FromWorker } from './protocol.js'
import { spawnTransport, type EngineTransport, type Isolation } from './transport.js'

export interface WorkerBackendInit extends BackendSpec {
  /** engine workers per model (default 1); each holds its own sessions */
  workers?: number
  /** 'thread' (default: cheapest hand-off) or 'process' (hard kill on cancel and time limits) */
  isolation?: Isolation
  /** an engine that fails to load when it is restarted is retried after `initialMs`, doubling up to `maxMs`
   *  (defaults 500 ms and 30 s); meanwhile its runs fail PROVIDER_UNAVAILABLE (retryable) */
  restartBackoff?: { initialMs?: number; maxMs?: number }
  /** how long a training run asked to stop may take to finish its current step before it is stopped hard (default 10 s) */
  trainStopGraceMs?: number
}

/** What `/v1/health` reads from a model handle whose engines run in workers. */
export interface EngineHealth {
  engineHealth (): { workers: number; unavailable: number; reason: string | null; retryInMs: number | null }
}

export function engineHealthOf (handle: ModelHandleV1): ReturnType<EngineHealth['engineHealth']> | null {
  const probe = (handle as Partial<EngineHealth>).engineHealth
  return typeof probe === 'function' ? probe.call(handle) : null
}

interface Backoff { initialMs: number; maxMs: number }

/** the progress stage an engine worker reports for a run it starts at once (the scheduler starts time limits on it) */
export const ENGINE_STARTED = 'started'

export function workerBackend (init: WorkerBackendInit): BackendV1 {
  let control: BackendV1 | null = null
  const spec: BackendSpec = { module: init.module, factory: init.factory, init: init.init }
  return {
    specificationVersion: 'v1',
    name: `worker:${init.factory}`,
    get capabilities () { return control?.capabilities ?? new Set<string>() },
    async loadModel (source: ModelSource): Promise<ModelHandleV1> {
      control ??= await loadBackend(spec)
      const local = await control.loadModel(source)
      const count = Math.max(1, init.workers ?? 1)
      const backoff: Backoff = { initialMs: init.restartBackoff?.initialMs ?? 500, maxMs: init.restartBackoff?.maxMs ?? 30_000 }
      const grace = init.trainStopGraceMs ?? 10_000
      const pool = await Promise.all(Array.from({ length: count }, async () => await EngineWorker.start(spec, source, init.isolation ?? 'thread', backoff, grace)))
      return new WorkerModelHandle(local, pool)
    },
    async close () { await control?.close?.() },
  }
}

class WorkerModelHandle implements ModelHandleV1, EngineHealth {
  constructor (private readonly local: ModelHandleV1, private readonly pool: EngineWorker[]) {}
  get manifest () { return this.local.manifest }
  tokenize (text: string): number[] { return this.local.tokenize(text) }
  decode (ids: readonly number[]): string { return this.local.decode(ids) }
  scan (program: BatchJob['program'], types?: BatchJob['types']) { return this.local.scan(program, types) }

  async run (jobs: BatchJob[], options: RunOptions = {}): Promise<JobResult[]> {
    // an engine that is down (failing to restart) takes runs only when every engine is down (they fail at once)
    const live = this.pool.filter(w => w.down === null)
    const worker = (live.length > 0 ? live : this.pool).reduce((best, w) => w.pending < best.pending ? w : best)
    return await worker.run(jobs, options)
  }

  engineHealth (): ReturnType<EngineHealth['engineHealth']> {
    const down = this.pool.map(w => w.down).filter(d => d !== null)
    return {
      workers: this.pool.length, unavailable: down.length,
      reason: down[0]?.reason ?? null, retryInMs: down.length === 0 ? null : Math.min(...down.map(d => d.retryInMs)),
    }
  }

  async dispose (): Promise<void> {
    await Promise.all(this.pool.map(async w => await w.stop()))
    await this.local.dispose()
  }
}

interface Call { resolve: (results: JobResult[]) => void; reject: (error: unknown) => void; onProgress?: RunOptions['onProgress'] }

/**
 * One engine worker holding one loaded model; respawned after a kill or a crash. A respawn that fails to load is
 * retried with bounded exponential backoff; until one succeeds the worker is down and its runs fail at once with
 * PROVIDER_UNAVAILABLE (retryable), not a permanent error.
 */
class EngineWorker {
  private transport: EngineTransport | null = null
  private nextId = 1
  private readonly calls = new Map<number, Call>()
  /** runs abandoned on a thread that keep it busy until their (ignored) result arrives */
  private readonly abandoned = new Set<number>()
  private stopped = false
  private ready: Promise<void> = Promise.resolve()
  /** why the last respawn failed (null while the engine is up or (re)spawning for the first time after a loss) */
  private failure: { reason: string; retryAt: number } | null = null
  private failures = 0
  private retryTimer: NodeJS.Timeout | null = null

  private constructor (private readonly spec: BackendSpec, private readonly source: ModelSource, private readonly isolation: Isolation, private readonly backoff: Backoff, private readonly stopGraceMs: number) {}

  static async start (spec: BackendSpec, source: ModelSource, isolation: Isolation, backoff: Backoff, stopGraceMs: number): Promise<EngineWorker> {
    const engine = new EngineWorker(spec, source, isolation, backoff, stopGraceMs)
    engine.ready = engine.spawn()
    await engine.ready
    return engine
  }

  get pending (): number { return this.calls.size + this.abandoned.size }

  /** null while the engine is up or restarting; else why its last restart failed and when it is retried */
  get down (): { reason: string; retryInMs: number } | null {
    if (this.failure === null || this.transport !== null) return null
    return { reason: this.failure.reason, retryInMs: Math.max(0, this.failure.retryAt - Date.now()) }
  }

  /** Spawns a replacement engine; on failure schedules the next attempt (never rejects). */
  private async respawn (): Promise<void> {
    if (this.stopped) return
    try {
      await this.spawn()
      this.failure = null
      this.failures = 0
    } catch (error) {
      if (this.stopped) return
      const delay = Math.min(this.backoff.initialMs * 2 ** this.failures, this.backoff.maxMs)
      this.failures++
      const reason = error instanceof Error ? error.message : String(error)
      this.failure = { reason, retryAt: Date.now() + delay }
      console.error(`[weft host] engine for model '${this.source.name}' failed to restart (attempt ${this.failures}, retry in ${delay} ms): ${reason}`)
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.ready = this.respawn() }, delay)
      this.retryTimer.unref()
    }
  }

  private async spawn (): Promise<void> {
    const transport = spawnTransport(this.isolation)
    await new Promise<void>((resolve, reject) => {
      let loading = true
      transport.onMessage(message => {
        if (loading && message.type === 'loaded') { loading = false; resolve(); return }
        if (loading && message.type === 'load-error') { loading = false; void transport.kill(); reject(WeftError.fromWire(message.error)); return }
        if (!loading) this.onMessage(message)
      })
      transport.onExit(reason => {
        if (loading) { loading = false; reject(new WeftError('MODEL_LOAD_FAILED', reason)); return }
        if (this.transport !== transport || this.stopped) return
        this.failAll(new WeftError('INTERNAL', `${reason}; it is being restarted`))
        this.transport = null
        this.ready = this.respawn()
      })
      transport.send({ type: 'load', spec: this.spec, source: this.source })
    })
    this.transport = transport
  }

  private onMessage (message: FromWorker): void {
    if (message.type !== 'result' && message.type !== 'run-error' && message.type !== 'progress') return
    if (message.type !== 'progress' && this.abandoned.delete(message.id)) return
    const call = this.calls.get(message.id)
    if (call === undefined) return
    if (message.type === 'progress') { call.onProgress?.(message.event); return }
    this.calls.delete(message.id)
    if (message.type === 'result') call.resolve(message.results)
    else call.reject(WeftError.fromWire(message.error))
  }

  private failAll (error: WeftError): void {
    for (const call of this.calls.values()) call.reject(error)
    this.calls.clear()
    this.abandoned.clear()
  }

  async run (jobs: BatchJob[], options: RunOptions): Promise<JobResult[]> {
    // a live transport takes the message now, synchronously with the caller (the host posts a job and then commits
    // its admission while the engine computes); only a (re)spawning engine is waited for
    if (this.transport === null) await this.ready
    if (options.signal?.aborted === true) throw new WeftError('JOB_CANCELLED', 'run aborted before it started')
    if (this.transport === null) {
      const down = this.down
      throw new WeftError('PROVIDER_UNAVAILABLE', `the engine for model '${this.source.name}' is down (it failed to restart${down === null ? '' : `: ${down.reason}`}); retry later`, { model: this.source.name, retryInMs: down?.retryInMs ?? this.backoff.initialMs })
    }
    const id = this.nextId++
    // an engine with nothing in flight starts this run as soon as it reads the message: say so now (the host starts
    // the time limit on the first progress event) and let the engine hold its progress until the result
    const idle = this.calls.size === 0 && this.abandoned.size === 0
    const done = new Promise<JobResult[]>((resolve, reject) => this.calls.set(id, { resolve, reject, onProgress: options.onProgress }))
    const trains = jobs.some(job => job.program.train !== undefined)
    let hardStop: NodeJS.Timeout | null = null
    const onAbort = (): void => {
      if (!trains) { void this.abort(id); return }
      // a training loop stops after its current step and answers with what it has; a stuck one is stopped hard
      this.transport?.send({ type: 'stop', id })
      hardStop = setTimeout(() => { void this.abort(id) }, this.stopGraceMs)
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.transport!.send({ type: 'run', id, jobs, reportStart: !idle })
    if (idle) options.onProgress?.({ stage: ENGINE_STARTED })
    try { return await done } finally {
      options.signal?.removeEventListener('abort', onAbort)
      if (hardStop !== null) clearTimeout(hardStop)
    }
  }

  private async abort (id: number): Promise<void> {
    const call = this.calls.get(id)
    if (call === undefined) return
    const aborted = new WeftError('JOB_CANCELLED', 'run aborted (cancelled or over its time limit)')
    if (!this.transport!.killable) {
      this.calls.delete(id)
      this.abandoned.add(id)
      call.reject(aborted)
      return
    }
    const old = this.transport!
    const calls = [...this.calls.entries()]
    this.calls.clear()
    for (const [other, pending] of calls) pending.reject(other === id ? aborted : new WeftError('JOB_CANCELLED', 'run interrupted when the engine process was restarted', { interrupted: true }))
    let respawned!: () => void
    this.ready = new Promise<void>(resolve => { respawned = resolve })
    this.transport = null
    await old.kill()
    await this.respawn()
    respawned()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    await this.ready.catch(() => {})
    await this.transport?.kill()
  }
}
