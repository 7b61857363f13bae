/**
 * Scheduler: takes queued jobs (the store's, mirrored in memory), groups jobs on the same model (from any keys) that arrived within
 * the batch window into one backend `run` (co-tenant rows of one forward pass), enforces per-job time limits and
 * cancellation, and hands each job's outcome to `finishJob`. The store is the queue, so a restart loses nothing.
 */
import { WeftError, decodeProgram, type BatchJob, type JobResult, type Program, type WireError } from '@weft/core'
import type { Adapters, PreparedAdapter, TrainingSummary } from '../adapters/adapters.js'
import type { AdapterRow } from '../store/store.js'
import { isSession, type AdmittedProgram, type RunnableProgram } from './admission.js'
import type { EngineSpeed } from './engine-speed.js'
import type { ModelRegistry, ServedModel } from '../models/model-registry.js'
import { applyEdits } from '../models/edits.js'
import type { JobRow, Store } from '../store/store.js'
import type { JobEvent, JobEvents } from './job-events.js'
import type { HostLimits } from './limits.js'
import { completeJob, type ResultExtras, type ReceiptSigner, type StoredResult } from './complete-job.js'
import { ENGINE_STARTED } from '../engine/worker-backend.js'

export interface SchedulerDeps {
  store: Store
  registry: ModelRegistry
  events: JobEvents
  limits: HostLimits
  signer: ReceiptSigner
  now: () => number
  /** batches that may run at once on one model (match the backend's worker count) */
  batchesPerModel: number
  /**
   * 'any' (default): a batch takes every queued job of the model (up to maxBatchJobs). 'powers-of-two': the largest
   * power of two of them, the rest run next: an engine compiles one graph per batch composition, so this bounds the
   * graphs to log2(maxBatchJobs) + 1 per Program shape when the compiled-session cache is small.
   */
  batchSizes?: 'powers-of-two' | 'any'
  onEgress?: (row: JobRow, bytes: number) => void
  /** kept adapters: resolves `init: {adapter}` of jobs read back from the store, persists `keep` */
  adapters?: Adapters
  /** learns each model's engine speed from completed jobs (admission refuses sessions that cannot fit) */
  speed?: EngineSpeed
}

/** engine progress stage of one completed optimizer step (detail: step, steps, epoch, loss) */
export const TRAIN_STEP = 'train-step'


/** how long an engine may take to begin a batch (model load after a respawn) before the batch is aborted */
const ENGINE_START_GRACE_MS = 60_000
const TIMER_SLACK_MS = 5
/** after the store failed to mark a batch running, its jobs (back in the queue) are tried again this much later */
const LAUNCH_RETRY_MS = 250
/** results kept in memory for held submissions, at most (beyond it the oldest not yet taken are dropped) */
const FRESH_MAX_BYTES = 256 * 2 ** 20

interface RunningBatch {
  controller: AbortController
  ids: Set<string>
  released?: boolean
  /** why the batch was asked to stop: a training run then ends with its last completed step */
  stopped?: 'cancelled' | 'time-limit'
}

export class Scheduler {
  private readonly running = new Map<string, RunningBatch[]>()
  private pumpQueued = false
  private windowTimer: NodeJS.Timeout | null = null
  private retryTimer: NodeJS.Timeout | null = null
  private closed = false
  private readonly idle = new Set<() => void>()
  /**
   * Programs admission already analysed (decoded, typed, edited), by job id, until the job launches or ends (a
   * restart decodes from the store)
   */
  private readonly admitted = new Map<string, RunnableProgram>()
  /**
   * The queued jobs, in memory: the store is the durable queue (a restart reloads it), this process its only writer.
   * Reading every queued row (program blobs included) on every pump cost O(queue) per batch.
   */
  private readonly queue = new Map<string, JobRow>()
  /** a requeued job went to the back of `queue` but belongs by its submission time */
  private unsorted = false
  /** results just committed for held submissions, taken by the waiting request (no read back from the store) */
  private readonly fresh = new Map<string, StoredResult>()
  private freshBytes = 0
  /** batches whose engine run has returned and whose completions are being committed */
  private completing = 0
  /** queued or running jobs that run alone in their batch (sessions, params, training: see isSession) */
  private readonly solo = new Set<string>()
  /** running or queued jobs that train: a cancel or time limit stops them after a step and keeps the result */
  private readonly training = new Set<string>()
  /** cost estimates from admission (engine speed is learned from them; unknown after a restart) */
  private readonly costs = new Map<string, number>()
  /** the train-step events of running training jobs, replayed to late event subscribers */
  private readonly trainLog = new Map<string, JobEvent[]>()

  constructor (private readonly deps: SchedulerDeps) {}

  /** Crash recovery, then start running the queue. */
  start (): { requeued: string[]; failed: string[] } {
    const recovered = this.deps.store.recover(this.deps.limits.maxAttempts, this.deps.now())
    for (const row of this.deps.store.queuedJobs(Number.MAX_SAFE_INTEGER)) {
      this.queue.set(row.id, row)
      try { this.classify(row.id, decodeProgram(row.program)) } catch { /* a Program that no longer decodes fails when its batch runs */ }
    }
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
    this.queue.set(row.id, row)
    this.admitted.set(row.id, program)
    this.classify(row.id, program.program, program.cost)
    this.kick()
  }

  private classify (id: string, program: Program, cost?: number): void {
    if (isSession(program)) this.solo.add(id)
    if (program.train !== undefined) this.training.add(id)
    if (cost !== undefined) this.costs.set(id, cost)
  }

  /** The train-step events of a running training job so far (a late subscriber's catch-up). */
  trainingProgress (id: string): readonly JobEvent[] { return this.trainLog.get(id) ?? [] }

  private queuedRows (): JobRow[] {
    const rows = [...this.queue.values()]
    if (this.unsorted) {
      rows.sort((a, b) => a.submittedAt - b.submittedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      this.queue.clear()
      for (const row of rows) this.queue.set(row.id, row)
      this.unsorted = false
    }
    return rows
  }

  kick (): void {
    if (this.pumpQueued || this.closed) return
    this.pumpQueued = true
    setImmediate(() => {
      this.pumpQueued = false
      try { this.pump() } catch (error) { console.error('[weft host] scheduler error', error) }
    })
  }

  private batchesOn (model: string): RunningBatch[] { return this.running.get(model) ?? [] }

  private pump (): void {
    if (this.closed) return
    // every admission kicks the pump; while each served model already runs its batches there is nothing to launch,
    // so do not read the queue (under load that was one full read of every queued row per submission)
    if (this.running.size > 0 && this.deps.registry.list().every(m => this.batchesOn(m.name).length >= this.deps.batchesPerModel)) return
    const queued = this.queuedRows()
    const byModel = new Map<string, JobRow[]>()
    for (const row of queued) {
      const rows = byModel.get(row.model)
      if (rows === undefined) byModel.set(row.model, [row])
      else rows.push(row)
    }
    const now = this.deps.now()
    let wait = Infinity
    let launched = false
    for (const [name, rows] of byModel) {
      if (this.batchesOn(name).length >= this.deps.batchesPerModel) continue
      const youngest = rows[rows.length - 1]!.submittedAt
      const windowLeft = youngest + this.deps.limits.batchWindowMs - now
      if (windowLeft > 0 && rows.length < this.deps.limits.maxBatchJobs && this.batchesOn(name).length === 0 && rows[0]!.submittedAt + 4 * this.deps.limits.batchWindowMs > now) {
        wait = Math.min(wait, windowLeft)
        continue
      }
      this.launch(name, this.takeBatch(rows))
      launched = true
    }
    if (wait !== Infinity && this.windowTimer === null) {
      this.windowTimer = setTimeout(() => { this.windowTimer = null; this.kick() }, Math.max(1, Math.ceil(wait)))
    }
    if (launched) this.refreshPositions() // positions only move when jobs leave the queue
    if (this.running.size === 0 && queued.length === 0 && this.completing === 0) for (const resolve of this.idle) resolve()
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
    if (this.batchesOn(row.model).length >= this.deps.batchesPerModel) return false
    for (const queued of this.queue.values()) if (queued.model === row.model) return false
    let model: ServedModel
    try { model = this.deps.registry.get(row.model) } catch { return false }
    this.admitted.set(row.id, program)
    this.classify(row.id, program.program, program.cost)
    this.startBatch(model, row.model, [row])
    return true
  }

  /** A job `startNow` started whose admission then failed to commit: it never existed; drop it from its batch. */
  abandon (id: string): void {
    this.admitted.delete(id)
    for (const batches of this.running.values()) this.leaveBatches(id, batches)
  }

  /** Takes a job out of the running batches holding it (its result will be discarded); a batch left empty is stopped. */
  private leaveBatches (id: string, batches: readonly RunningBatch[]): void {
    for (const batch of batches) if (batch.ids.delete(id) && batch.ids.size === 0) batch.controller.abort()
  }

  private launch (name: string, rows: JobRow[]): void {
    let model: ServedModel
    try { model = this.deps.registry.get(name) } catch (error) {
      for (const row of rows) this.fail(row, WeftError.is(error) ? error.toWire() : internal(error))
      return
    }
    for (const row of rows) this.queue.delete(row.id)
    try {
      // a shared store (several nodes): only the jobs this node claimed run here; another node runs the others
      const claimed = new Set(this.deps.store.markRunning(rows.map(r => r.id), this.deps.now()))
      if (claimed.size < rows.length) {
        for (const row of rows) if (!claimed.has(row.id)) { this.admitted.delete(row.id); this.forget(row.id) }
        rows = rows.filter(row => claimed.has(row.id))
        if (rows.length === 0) { this.kick(); return }
      }
    } catch (error) {
      // the jobs are still queued in the store: put them back at the head of the in-memory queue, in the order they
      // had, and try again shortly, or they would not run until the provider restarts
      console.error('[weft host] could not mark a batch running; its jobs stay queued and are retried', error)
      const rest = [...this.queue]
      this.queue.clear()
      for (const row of rows) this.queue.set(row.id, row)
      for (const [id, row] of rest) this.queue.set(id, row)
      if (this.retryTimer === null && !this.closed) {
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.kick() }, LAUNCH_RETRY_MS)
        this.retryTimer.unref()
      }
      return
    }
    this.startBatch(model, name, rows)
  }

  private startBatch (model: ServedModel, name: string, rows: JobRow[]): void {
    const batch: RunningBatch = { controller: new AbortController(), ids: new Set(rows.map(r => r.id)) }
    this.running.set(name, [...this.batchesOn(name), batch])
    model.inflight++
    for (const row of rows) this.deps.events.emit(row.id, { event: 'job-start', data: { job: row.id, batchSize: rows.length } })
    void this.runBatch(model, rows, batch).catch(error => {
      // a bug here must not take the provider down (an unhandled rejection would): fail the batch's jobs instead
      console.error('[weft host] batch failed', error)
      for (const row of rows) this.fail(row, internal(error))
    }).finally(() => {
      this.release(name, batch)
      void this.deps.registry.release(model)
      this.kick()
    })
  }

  /** The next batch from a model's queued rows (in order): a session alone, else plain jobs up to the first session. */
  private takeBatch (rows: JobRow[]): JobRow[] {
    if (this.solo.has(rows[0]!.id)) return [rows[0]!]
    let plain = 1
    while (plain < rows.length && !this.solo.has(rows[plain]!.id)) plain++
    return rows.slice(0, this.batchSize(plain))
  }

  private batchSize (queued: number): number {
    const take = Math.max(1, Math.min(queued, this.deps.limits.maxBatchJobs))
    return this.deps.batchSizes === 'powers-of-two' ? 2 ** Math.floor(Math.log2(take)) : take
  }

  /** Frees the batch's engine slot (once). */
  private release (name: string, batch: RunningBatch): void {
    if (batch.released === true) return
    batch.released = true
    const left = this.batchesOn(name).filter(b => b !== batch)
    if (left.length === 0) this.running.delete(name)
    else this.running.set(name, left)
  }

  private async runBatch (model: ServedModel, rows: JobRow[], batch: RunningBatch): Promise<void> {
    const edits = this.deps.registry.edits(model.name)
    const labels = edits.map(e => `${e.name}@${e.digest}`)
    const programs = new Map<string, Program>()
    const jobs: BatchJob[] = []
    for (const row of rows) {
      let runnable: RunnableProgram
      try {
        // a job admitted before a restart is read back as signed: its adapter inits are resolved again (owner-checked)
        runnable = this.admitted.get(row.id) ?? this.resolved(row, model)
      } catch (error) {
        this.admitted.delete(row.id)
        batch.ids.delete(row.id)
        this.fail(row, WeftError.is(error) ? error.toWire() : internal(error))
        continue
      }
      this.admitted.delete(row.id)
      programs.set(row.id, runnable.program)
      // the edits admission applied, unless the operator changed them since (then the current ones, typed by the engine)
      const current = runnable.edits.length === labels.length && runnable.edits.every((label, i) => label === labels[i])
      jobs.push(current
        ? { id: row.id, program: runnable.edited, ...(runnable.editedTypes === undefined ? {} : { types: runnable.editedTypes }) }
        : { id: row.id, program: applyEdits(runnable.program, edits) })
    }
    if (jobs.length === 0) return
    const running = rows.filter(row => programs.has(row.id))
    let started = this.deps.now()
    const limit = Math.min(...running.map(r => r.timeoutMs))
    const overTime = (): void => { batch.stopped ??= 'time-limit'; batch.controller.abort() }
    // the time limit counts engine time: it starts when the engine reports it began this batch (a respawning or
    // still-busy engine does not eat into it); a generous fallback catches an engine that never starts
    let timer = setTimeout(overTime, limit + ENGINE_START_GRACE_MS)
    let engineStarted = false
    const onEngineStart = (): void => {
      if (engineStarted) return
      engineStarted = true
      started = this.deps.now()
      clearTimeout(timer)
      timer = setTimeout(overTime, limit)
    }
    let results: JobResult[]
    try {
      results = await model.handle.run(jobs, {
        signal: batch.controller.signal,
        onProgress: event => {
          onEngineStart()
          if (event.stage === ENGINE_STARTED) return // the worker's start signal, not an engine stage
          if (event.stage === TRAIN_STEP) { this.trainStep(running, event.detail ?? {}); return }
          if (event.stage === 'token') {
            // a generated token belongs to one job: never fan it out to the batch's co-tenants
            const owner = running.find(row => row.id === event.detail?.job)
            if (owner !== undefined) this.deps.events.emit(owner.id, { event: 'job-token', data: { ...event.detail, job: owner.id } })
            return
          }
          for (const row of running) this.deps.events.emit(row.id, { event: 'job-progress', data: { job: row.id, ...event } })
        },
      })
    } catch (error) {
      clearTimeout(timer)
      this.batchFailed(running, error, started, batch)
      return
    }
    clearTimeout(timer)
    // the engine is free: launch the next batch before committing this one's results, so the engine computes it
    // while this thread signs receipts, commits and answers (one job per forward benefits as much as batches do)
    this.completing++
    try {
      this.release(model.name, batch)
      try { this.pump() } catch (error) { console.error('[weft host] scheduler error', error) }
      this.complete(model, running, results, batch, labels, programs)
    } finally {
      this.completing--
    }
  }

  /** A job read back from the store (after a restart): decoded, its adapter inits resolved for its owner (edits: none yet). */
  private resolved (row: JobRow, model: ServedModel): RunnableProgram {
    const decoded = decodeProgram(row.program)
    const program = this.deps.adapters?.resolve(row.kid, decoded, { name: model.name, revision: model.manifest.revision }) ?? decoded
    return { program, edited: program, edits: [] }
  }

  /** One completed optimizer step: a `job-progress` event (stage train-step) to the job's streams, kept for late ones. */
  private trainStep (rows: JobRow[], detail: Record<string, unknown>): void {
    for (const row of rows) {
      const event: JobEvent = { event: 'job-progress', data: { job: row.id, stage: TRAIN_STEP, step: detail.step, steps: detail.steps, epoch: detail.epoch, loss: detail.loss } }
      let log = this.trainLog.get(row.id)
      if (log === undefined) { log = []; this.trainLog.set(row.id, log) }
      log.push(event)
      this.deps.events.emit(row.id, event)
    }
  }

  private complete (model: ServedModel, rows: JobRow[], results: JobResult[], batch: RunningBatch, labels: string[], programs: ReadonlyMap<string, Program>): void {
    const byId = new Map(results.map(r => [r.id, r]))
    const live = rows.filter(row => batch.ids.has(row.id))
    const adapters = this.deps.adapters
    // adapters to keep are written (fsynced, renamed) before the commit that names them; one not committed is deleted
    const prepared = new Map<string, PreparedAdapter>()
    const summaries = new Map<string, TrainingSummary>()
    const now = this.deps.now()
    const discardAll = (): void => { for (const p of prepared.values()) adapters!.discard(p) }
    let outcomes
    try {
      for (const row of live) {
        const result = byId.get(row.id)
        if (result?.ok !== true) continue
        if (result.training !== undefined) {
          const losses = result.training.losses
          summaries.set(row.id, { steps: result.training.steps, completed: result.training.completed, cancelled: result.training.cancelled, finalLoss: losses.length > 0 ? losses[losses.length - 1]! : null })
        }
        const keep = programs.get(row.id)?.keep
        if (keep === undefined || result.params === undefined || adapters === undefined) continue
        prepared.set(row.id, adapters.prepare({
          kid: row.kid, name: keep.adapter, model: model.name, revision: model.manifest.revision, values: result.params,
          jobId: row.id, programDigest: row.programDigest, training: summaries.get(row.id) ?? null, ...(keep.attach === undefined ? {} : { attach: keep.attach }), now,
        }))
      }
      // one transaction (one WAL commit) for the whole batch; events go out only after it is durable. A job cancelled
      // while running has left `batch.ids`: nothing of it is signed, stored or charged.
      outcomes = this.deps.store.transaction(() => live.map(row => {
        const result = byId.get(row.id) ?? { id: row.id, ok: false as const, error: { code: 'INTERNAL' as const, message: 'the backend returned no result for this job', details: {} } }
        if (!result.ok) return { row, result, outcome: null, replaced: undefined }
        const adapter = prepared.get(row.id)
        const summary = summaries.get(row.id)
        const extras: ResultExtras = {}
        const used = adapters?.usedBy(programs.get(row.id)!) ?? []
        if (used.length > 0) extras.adaptersUsed = used
        if (summary !== undefined) extras.training = summary.cancelled ? { ...summary, stopped: batch.stopped ?? 'cancelled' } : summary
        if (adapter !== undefined) {
          extras.adapter = { name: adapter.row.name, id: adapter.row.id, digest: adapter.row.digest, bytes: adapter.row.bytes, replaced: this.deps.store.getAdapter(row.kid, adapter.row.name) !== undefined }
        }
        const outcome = completeJob(this.deps, row, result, model, labels, extras)
        const stored = outcome.ok && adapter !== undefined
        const replaced = stored ? adapters!.commit(adapter) : undefined
        if (stored) prepared.delete(row.id) // committed: no longer to discard
        return { row, result, outcome, replaced }
      }))
    } catch (error) {
      discardAll()
      throw error
    }
    discardAll() // prepared adapters of jobs that did not complete
    for (const { row, result, outcome, replaced } of outcomes) {
      adapters?.replaced(replaced)
      // a training run stopped early did only part of the work its cost estimate counts
      const summary = summaries.get(row.id)
      const cost = (this.costs.get(row.id) ?? NaN) * (summary === undefined ? 1 : summary.completed / Math.max(1, summary.steps))
      this.forget(row.id)
      if (!result.ok) { this.fail(row, result.error); continue }
      if (outcome!.ok) {
        if (Number.isFinite(cost)) this.deps.speed?.observe(model.name, programs.get(row.id)?.train === undefined ? 'plain' : 'train', cost, result.stats.runMs)
        this.deps.onEgress?.(row, outcome!.egressBytes)
        if (this.deps.events.waiting(row.id)) {
          this.fresh.set(row.id, outcome!.stored)
          this.freshBytes += outcome!.stored.saves.byteLength
          // a waiter that never took its own (it timed out as the job ended): drop the oldest, by count and by bytes,
          // so big results are not held (the result stays in the store)
          while (this.fresh.size > 1024 || (this.fresh.size > 1 && this.freshBytes > FRESH_MAX_BYTES)) this.takeFresh(this.fresh.keys().next().value!)
        }
        this.deps.events.emit(row.id, { event: 'job-end', data: { job: row.id, egressBytes: outcome!.egressBytes, resultDigest: outcome!.resultDigest, runMs: result.stats.runMs, ...outcome!.extras } })
      } else if (outcome!.error !== null) this.fail(row, outcome!.error)
    }
  }

  /** Drops what the scheduler kept about a job that ended. */
  private forget (id: string): void {
    this.solo.delete(id)
    this.training.delete(id)
    this.costs.delete(id)
    this.trainLog.delete(id)
  }

  /** The whole run failed or was aborted: time-limited/cancelled jobs end, co-runners are requeued once more. */
  private batchFailed (rows: JobRow[], error: unknown, started: number, batch: RunningBatch): void {
    const now = this.deps.now()
    for (const row of rows) {
      const current = this.deps.store.getJob(row.id)
      if (current?.state !== 'running') continue
      if (WeftError.is(error, 'PROVIDER_UNAVAILABLE')) {
        // the engine is down (failing to restart) and never ran the batch: the job fails with the retryable error,
        // however long the wait for the engine's restart attempt took (that is not engine time)
        this.fail(row, error.toWire())
      } else if (now >= started + row.timeoutMs - TIMER_SLACK_MS) {
        this.fail(row, { code: 'JOB_CANCELLED', message: `job exceeded its time limit of ${row.timeoutMs} ms and was stopped`, details: { timeoutMs: row.timeoutMs } }, 'cancelled')
      } else if (batch.stopped === 'cancelled' && this.training.has(row.id)) {
        // a training run cancelled by its submitter that the engine stopped before its first step completed
        this.fail(row, { code: 'JOB_CANCELLED', message: 'job cancelled by its submitter before its first training step completed', details: {} }, 'cancelled')
      } else if (WeftError.is(error, 'JOB_CANCELLED') && current.attempts < this.deps.limits.maxAttempts + 1) {
        this.deps.store.requeue(row.id)
        const requeued = this.deps.store.getJob(row.id)!
        this.queue.set(row.id, requeued)
        this.unsorted = true
        this.deps.events.emit(row.id, { event: 'job-queued', data: { job: row.id, position: this.deps.store.queuePosition(requeued), requeued: true } })
      } else {
        this.fail(row, WeftError.is(error) ? error.toWire() : internal(error))
      }
    }
  }

  fail (row: JobRow, error: WireError, state: 'failed' | 'cancelled' = 'failed'): void {
    this.admitted.delete(row.id)
    this.queue.delete(row.id)
    this.forget(row.id)
    const now = this.deps.now()
    if (!this.deps.store.endJob(row.id, state, error, now)) return
    this.deps.store.log({ at: now, actor: row.kid, action: 'job-error', jobId: row.id, programDigest: row.programDigest, model: row.model, revision: row.revision, egressBytes: 0, detail: JSON.stringify(error) })
    this.deps.events.emit(row.id, { event: 'job-error', data: { job: row.id, state, error } })
  }

  /** The committed result of a job that just ended, once, for the held submission that waited for it. */
  takeFresh (id: string): StoredResult | undefined {
    const stored = this.fresh.get(id)
    if (stored === undefined) return undefined
    this.fresh.delete(id)
    this.freshBytes -= stored.saves.byteLength
    return stored
  }

  /**
   * DELETE /v1/jobs/:id. A queued job ends at once; a running job alone in its batch is stopped; a co-tenant's result
   * is discarded. A running training job is asked to stop after its current step: it then ends completed, with the
   * losses so far and (if it keeps one) the adapter of its last completed step.
   */
  cancel (row: JobRow): boolean {
    if (row.state !== 'queued' && row.state !== 'running') return false
    // a shared store: a job another node runs is cancelled by that node (it polls for requests), as it would be here
    if (row.state === 'running' && this.deps.store.shared && row.node !== this.deps.store.node) { this.deps.store.requestCancel(row.id, this.deps.now()); return true }
    if (row.state === 'running' && this.training.has(row.id)) {
      const batch = this.batchesOn(row.model).find(b => b.ids.has(row.id))
      if (batch !== undefined) {
        batch.stopped ??= 'cancelled'
        batch.controller.abort()
        this.deps.events.emit(row.id, { event: 'job-progress', data: { job: row.id, stage: 'stopping', reason: batch.stopped } })
        return true
      }
    }
    this.fail(row, { code: 'JOB_CANCELLED', message: 'job cancelled by its submitter', details: {} }, 'cancelled')
    this.leaveBatches(row.id, this.batchesOn(row.model))
    return true
  }

  private refreshPositions (): void {
    for (const id of this.deps.events.watched()) {
      const row = this.queue.get(id) // the queued jobs are mirrored here: no read of the row (program blob included)
      if (row !== undefined) this.deps.events.emit(id, { event: 'job-queued', data: { job: id, position: this.deps.store.queuePosition(row) } })
    }
  }

  /**
   * A shared store (several nodes): mirror the queue other nodes' admissions added to and their claims took from,
   * then launch what can run here. Called on a timer by the host; a no-op read-wise on SQLite (not called).
   */
  sync (): void {
    if (this.closed) return
    const ids = this.deps.store.queuedIds(Number.MAX_SAFE_INTEGER)
    const present = new Set(ids)
    for (const id of this.queue.keys()) {
      if (!present.has(id)) { this.queue.delete(id); this.admitted.delete(id); if (!this.isRunningHere(id)) this.forget(id) }
    }
    let added = false
    for (const id of ids) {
      if (this.queue.has(id) || this.isRunningHere(id)) continue
      const row = this.deps.store.getJob(id)
      if (row?.state !== 'queued') continue
      this.queue.set(id, row)
      try { this.classify(id, decodeProgram(row.program)) } catch { /* fails when its batch runs */ }
      added = true
    }
    if (added) { this.unsorted = true; this.kick() }
  }

  /** ids of the jobs this node's engines are running (their claims' leases are renewed) */
  runningIds (): string[] {
    const ids: string[] = []
    for (const batches of this.running.values()) for (const batch of batches) ids.push(...batch.ids)
    return ids
  }

  /** whether this node's engines run the job now */
  isRunningHere (id: string): boolean {
    for (const batches of this.running.values()) for (const batch of batches) if (batch.ids.has(id)) return true
    return false
  }

  /** Resolves when nothing is queued or running (tests, graceful shutdown). */
  async whenIdle (): Promise<void> {
    if (this.running.size === 0 && this.deps.store.counts().queued === 0) return
    await new Promise<void>(resolve => {
      const done = (): void => { this.idle.delete(done); resolve() }
      this.idle.add(done)
    })
  }

  close (): void {
    this.closed = true
    if (this.windowTimer !== null) clearTimeout(this.windowTimer)
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    for (const batches of this.running.values()) for (const batch of batches) batch.controller.abort()
  }
}

function internal (error: unknown): WireError {
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), details: {} }
}
