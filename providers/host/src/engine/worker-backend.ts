/**
 * workerBackend: a BackendV1 whose `run` happens in worker threads, so onnxruntime's blocking `run()` never stalls
 * the HTTP event loop. Manifest, tokenize, decode and scan come from a control instance of the same backend in the
 * main thread (they are cheap and must answer while a batch runs). Aborting a run terminates and respawns its worker.
 */
import { Worker } from 'node:worker_threads'
import { WeftError, type BackendV1, type BatchJob, type JobResult, type ModelHandleV1, type ModelSource, type RunOptions } from '@weft/core'
import { loadBackend } from './load-backend.js'
import type { BackendSpec, FromWorker } from './protocol.js'

export interface WorkerBackendInit extends BackendSpec {
  /** engine worker threads per model (default 1); each holds its own sessions */
  workers?: number
}

const BOOT = new URL('./engine-worker-boot.mjs', import.meta.url)

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
      const pool = await Promise.all(Array.from({ length: Math.max(1, init.workers ?? 1) }, async () => await EngineWorker.start(spec, source)))
      return new WorkerModelHandle(local, pool)
    },
    async close () { await control?.close?.() },
  }
}

class WorkerModelHandle implements ModelHandleV1 {
  constructor (private readonly local: ModelHandleV1, private readonly pool: EngineWorker[]) {}
  get manifest () { return this.local.manifest }
  tokenize (text: string): number[] { return this.local.tokenize(text) }
  decode (ids: readonly number[]): string { return this.local.decode(ids) }
  scan (program: BatchJob['program']) { return this.local.scan(program) }

  async run (jobs: BatchJob[], options: RunOptions = {}): Promise<JobResult[]> {
    const worker = this.pool.reduce((best, w) => w.pending < best.pending ? w : best)
    return await worker.run(jobs, options)
  }

  async dispose (): Promise<void> {
    await Promise.all(this.pool.map(async w => await w.stop()))
    await this.local.dispose()
  }
}

interface Pending { resolve: (results: JobResult[]) => void; reject: (error: unknown) => void; onProgress?: RunOptions['onProgress'] }

/** One worker thread holding one loaded model; respawned after an abort or a crash. */
class EngineWorker {
  private worker: Worker | null = null
  private nextId = 1
  private readonly calls = new Map<number, Pending>()
  private stopped = false
  private ready: Promise<void> = Promise.resolve()

  private constructor (private readonly spec: BackendSpec, private readonly source: ModelSource) {}

  static async start (spec: BackendSpec, source: ModelSource): Promise<EngineWorker> {
    const engine = new EngineWorker(spec, source)
    engine.ready = engine.spawn()
    await engine.ready
    return engine
  }

  get pending (): number { return this.calls.size }

  private async spawn (): Promise<void> {
    const worker = new Worker(BOOT)
    this.worker = worker
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromWorker): void => {
        if (message.type === 'loaded') { worker.off('message', onMessage); resolve() }
        if (message.type === 'load-error') { worker.off('message', onMessage); void worker.terminate(); reject(WeftError.fromWire(message.error)) }
      }
      worker.on('message', onMessage)
      worker.once('error', reject)
      worker.postMessage({ type: 'load', spec: this.spec, source: this.source })
    })
    worker.on('message', (message: FromWorker) => this.onMessage(message))
    worker.on('error', error => this.failAll(new WeftError('INTERNAL', `engine worker crashed: ${error.message}`)))
    worker.on('exit', () => {
      if (this.worker !== worker || this.stopped) return
      this.failAll(new WeftError('INTERNAL', 'engine worker exited unexpectedly; it is being restarted'))
      this.worker = null
      this.ready = this.spawn()
    })
  }

  private onMessage (message: FromWorker): void {
    if (message.type !== 'result' && message.type !== 'run-error' && message.type !== 'progress') return
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
  }

  async run (jobs: BatchJob[], options: RunOptions): Promise<JobResult[]> {
    await this.ready
    if (options.signal?.aborted === true) throw new WeftError('JOB_CANCELLED', 'run aborted before it started')
    const id = this.nextId++
    const done = new Promise<JobResult[]>((resolve, reject) => this.calls.set(id, { resolve, reject, onProgress: options.onProgress }))
    const onAbort = (): void => { void this.restart(id) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.worker!.postMessage({ type: 'run', id, jobs })
    try { return await done } finally { options.signal?.removeEventListener('abort', onAbort) }
  }

  /** onnxruntime cannot interrupt a run: stop the thread, fail what it held, and load a fresh one. */
  private async restart (abortedId: number): Promise<void> {
    const old = this.worker
    const calls = [...this.calls.entries()]
    this.calls.clear()
    for (const [id, call] of calls) call.reject(new WeftError('JOB_CANCELLED', id === abortedId ? 'run aborted (cancelled or over its time limit)' : 'run interrupted by an aborted co-running batch', { interrupted: id !== abortedId }))
    let respawned!: () => void
    this.ready = new Promise<void>(resolve => { respawned = resolve })
    this.worker = null
    await old?.terminate()
    if (!this.stopped) await this.spawn().catch(() => {})
    respawned()
  }

  async stop (): Promise<void> {
    this.stopped = true
    await this.worker?.terminate()
  }
}
