/**
 * Scheduler: the host's one entry to running jobs, made of three parts — the job queue (./job-queue.ts: queued jobs
 * per model, claims, mirroring a shared store's queue), the batch runner (./batch-runner.ts: co-tenant batches on the
 * engines, time limits, cancellation, completion) and the result cache (./result-cache.ts: results for held
 * submissions). It pumps the queue into the runner: jobs on the same model (from any keys) that arrived within the
 * batch window run as one backend `run` (co-tenant rows of one forward pass). The store is the queue, so a restart
 * loses nothing.
 */
import { type WireError } from '@weft/core'
import type { AdmittedProgram } from './admission.js'
import type { ServedModel } from '../models/model-registry.js'
import type { JobRow } from '../store/store.js'
import type { JobEvent } from './job-events.js'
import { wireErrorOf, type StoredResult } from './complete-job.js'
import { JobQueue, traitsOf, type QueuedJob } from './job-queue.js'
import { BatchRunner, formBatch, type BatchPolicy, type BatchRunnerDeps } from './batch-runner.js'
import { ResultCache } from './result-cache.js'

/** What the scheduler needs: its batch runner's dependencies (those it wires itself aside) and the batch sizes. */
export interface SchedulerDeps extends Omit<BatchRunnerDeps, 'fail' | 'results' | 'requeue' | 'engineFree' | 'batchEnded'> {
  /**
   * 'any' (default): a batch takes every queued job of the model (up to maxBatchJobs). 'powers-of-two': the largest
   * power of two of them, the rest run next: an engine compiles one graph per batch composition, so this bounds the
   * graphs to log2(maxBatchJobs) + 1 per Program shape when the compiled-session cache is small.
   */
  batchSizes?: 'powers-of-two' | 'any'
}

/** after the store failed to mark a batch running, its jobs (back in the queue) are tried again this much later */
const LAUNCH_RETRY_MS = 250

export class Scheduler {
  private readonly queue: JobQueue
  private readonly runner: BatchRunner
  private readonly results = new ResultCache()
  private readonly policy: BatchPolicy
  private pumpQueued = false
  private windowTimer: NodeJS.Timeout | null = null
  private retryTimer: NodeJS.Timeout | null = null
  private closed = false
  private readonly idle = new Set<() => void>()

  constructor (private readonly deps: SchedulerDeps) {
    this.queue = new JobQueue(deps.store)
    this.policy = { batchWindowMs: deps.limits.batchWindowMs, maxBatchJobs: deps.limits.maxBatchJobs, sizes: deps.batchSizes ?? 'any' }
    this.runner = new BatchRunner({
      ...deps,
      results: this.results,
      fail: (row, error, state) => this.fail(row, error, state),
      requeue: job => this.queue.requeue(job),
      engineFree: () => this.pump(),
      batchEnded: () => this.kick(),
    })
  }

  /** Crash recovery, then start running the queue. */
  start (): { requeued: string[]; failed: string[] } {
    const recovered = this.deps.store.recover(this.deps.limits.maxAttempts, this.deps.now())
    this.queue.load()
    for (const id of recovered.failed) {
      const row = this.deps.store.getJob(id)!
      this.deps.events.emit(id, { event: 'job-error', data: { job: id, error: JSON.parse(row.error ?? 'null') } })
    }
    this.kick()
    return recovered
  }

  /**
   * A job admission just committed (its row as stored): queue it, with its admitted Program (decoded, typed, edited)
   * so the batch neither decodes the stored bytes nor analyses or edits the Program again.
   */
  queued (row: JobRow, program: AdmittedProgram): void {
    this.queue.add({ row, program, traits: traitsOf(program.program, program.cost) })
    this.kick()
  }

  /** The train-step events of a running training job so far (a late subscriber's catch-up). */
  trainingProgress (id: string): readonly JobEvent[] { return this.runner.trainingProgress(id) }

  kick (): void {
    if (this.pumpQueued || this.closed) return
    this.pumpQueued = true
    setImmediate(() => {
      this.pumpQueued = false
      try { this.pump() } catch (error) { console.error('[weft host] scheduler error', error) }
    })
  }

  private pump (): void {
    if (this.closed) return
    // every admission kicks the pump; while each served model already runs its batches there is nothing to launch,
    // so do not read the queue (under load that was one full read of every queued row per submission)
    if (this.runner.saturated()) return
    const empty = this.queue.size === 0
    const now = this.deps.now()
    let wait = Infinity
    let launched = false
    for (const [name, jobs] of this.queue.byModel()) {
      if (!this.runner.hasRoom(name)) continue
      const next = formBatch(jobs, this.policy, now, this.runner.batchCount(name) > 0)
      if ('waitMs' in next) { wait = Math.min(wait, next.waitMs); continue }
      this.launch(name, next.batch)
      launched = true
    }
    if (wait !== Infinity && this.windowTimer === null) {
      this.windowTimer = setTimeout(() => { this.windowTimer = null; this.kick() }, Math.max(1, Math.ceil(wait)))
    }
    if (launched) this.refreshPositions() // positions only move when jobs leave the queue
    if (this.runner.idle && empty) for (const resolve of this.idle) resolve()
  }

  /**
   * Admission's fast path, for a job whose admission has not committed yet: when its model's engine has room and no
   * job of that model is queued (and no batch window asks to wait for co-tenants), the job starts now and admission
   * then commits it as already running — one commit on the way in instead of two, and the engine computes while
   * it is written. Until that commit nothing about the job has been acknowledged (no 202, no result), so a crash in
   * between loses no accepted job. Returns false (nothing done) otherwise: admission commits the job as queued.
   */
  startNow (row: JobRow, program: AdmittedProgram): boolean {
    if (this.closed || (this.deps.limits.batchWindowMs > 0 && this.deps.limits.maxBatchJobs > 1)) return false
    if (!this.runner.hasRoom(row.model)) return false
    if (this.queue.hasModel(row.model)) return false
    let model: ServedModel
    try { model = this.deps.registry.get(row.model) } catch { return false }
    this.runner.start(model, [{ row, program, traits: traitsOf(program.program, program.cost) }])
    return true
  }

  /** A job `startNow` started whose admission then failed to commit: it never existed; drop it from its batch. */
  abandon (id: string): void { this.runner.abandon(id) }

  /** Claims a batch formed from the queue and starts it (with a shared store, the jobs this node claimed). */
  private launch (name: string, jobs: QueuedJob[]): void {
    let model: ServedModel
    try { model = this.deps.registry.get(name) } catch (error) {
      for (const job of jobs) this.fail(job.row, wireErrorOf(error))
      return
    }
    let claimed: QueuedJob[]
    try {
      claimed = this.queue.claim(jobs, this.deps.now())
    } catch (error) {
      // the jobs are still queued (the queue put them back at its head): try again shortly, or they would not run
      // until the provider restarts
      console.error('[weft host] could not mark a batch running; its jobs stay queued and are retried', error)
      if (this.retryTimer === null && !this.closed) {
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.kick() }, LAUNCH_RETRY_MS)
        this.retryTimer.unref()
      }
      return
    }
    // a shared store (several nodes): only the jobs this node claimed run here; another node runs the others
    if (claimed.length === 0) { this.kick(); return }
    this.runner.start(model, claimed)
  }

  /** Ends a job (queued or running) with an error. */
  fail (row: JobRow, error: WireError, state: 'failed' | 'cancelled' = 'failed'): void {
    this.queue.remove(row.id)
    this.runner.forget(row.id)
    const now = this.deps.now()
    if (!this.deps.store.endJob(row.id, state, error, now)) return
    this.deps.store.log({ at: now, actor: row.kid, action: 'job-error', jobId: row.id, programDigest: row.programDigest, model: row.model, revision: row.revision, egressBytes: 0, detail: JSON.stringify(error) })
    this.deps.events.emit(row.id, { event: 'job-error', data: { job: row.id, state, error } })
  }

  /** The committed result of a job that just ended, once, for the held submission that waited for it. */
  takeFresh (id: string): StoredResult | undefined { return this.results.take(id) }

  /**
   * DELETE /v1/jobs/:id. A queued job ends at once; a running job alone in its batch is stopped; a co-tenant's result
   * is discarded. A running training job is asked to stop after its current step: it then ends completed, with the
   * losses so far and (if it keeps one) the adapter of its last completed step.
   */
  cancel (row: JobRow): boolean {
    if (row.state !== 'queued' && row.state !== 'running') return false
    // a shared store: a job another node runs is cancelled by that node (it polls for requests), as it would be here
    if (row.state === 'running' && this.deps.store.shared && row.node !== this.deps.store.node) { this.deps.store.requestCancel(row.id, this.deps.now()); return true }
    if (row.state === 'running' && this.runner.stopTraining(row)) return true
    this.fail(row, { code: 'JOB_CANCELLED', message: 'job cancelled by its submitter', details: {} }, 'cancelled')
    this.runner.leave(row.id, row.model)
    return true
  }

  private refreshPositions (): void {
    for (const id of this.deps.events.watched()) {
      const position = this.queue.position(id)
      if (position !== undefined) this.deps.events.emit(id, { event: 'job-queued', data: { job: id, position } })
    }
  }

  /**
   * A shared store (several nodes): mirror the queue other nodes' admissions added to and their claims took from,
   * then launch what can run here. Called on a timer by the host; a no-op read-wise on SQLite (not called).
   */
  sync (): void {
    if (this.closed) return
    if (this.queue.mirror(id => this.isRunningHere(id))) this.kick()
  }

  /** ids of the jobs this node's engines are running (their claims' leases are renewed) */
  runningIds (): string[] { return this.runner.runningIds() }

  /** whether this node's engines run the job now */
  isRunningHere (id: string): boolean { return this.runner.isRunning(id) }

  /** Resolves when nothing is queued or running (tests, graceful shutdown). */
  async whenIdle (): Promise<void> {
    if (!this.runner.busy && this.deps.store.counts().queued === 0) return
    await new Promise<void>(resolve => {
      const done = (): void => { this.idle.delete(done); resolve() }
      this.idle.add(done)
    })
  }

  close (): void {
    this.closed = true
    if (this.windowTimer !== null) clearTimeout(this.windowTimer)
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    this.runner.close()
  }
}
