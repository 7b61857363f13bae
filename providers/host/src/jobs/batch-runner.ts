/**
 * The batch runner: forms co-tenant batches (jobs of one model, from any keys, as rows of one forward pass), runs each
 * on its model's engine, and ends its jobs. It enforces the per-job time limit (counted from when the engine begins
 * the batch), cancellation (a co-tenant's result is discarded; a training run stops after its current step), relays
 * engine progress, tokens and train steps as job events, and completes the jobs of a run: receipts signed, results,
 * ledger, audit and kept adapters committed in one transaction, results handed to the result cache for held
 * submissions, engine speed learned. A failed run ends its time-limited or cancelled jobs and requeues the others once.
 * Training jobs store checkpoints at the limits' cadence and a job run again resumes from its checkpoint
 * (docs/decisions/2026-12-06-training-checkpoints.md).
 */
import { TRAIN_CHECKPOINT_STAGE, WeftError, decodeProgram, type BatchJob, type CheckpointCadence, type JobResult, type Program, type TrainingCheckpoint, type WireError } from '@weft/core'
import type { Adapters, PreparedAdapter, TrainingSummary } from '../adapters/adapters.js'
import type { RunnableProgram } from './admission.js'
import type { EngineSpeed } from './engine-speed.js'
import type { ModelRegistry, ServedModel } from '../models/model-registry.js'
import { applyEdits } from '../models/edits.js'
import type { JobRow, Store } from '../store/store.js'
import type { JobEvent, JobEvents } from './job-events.js'
import type { HostLimits } from './limits.js'
import { completeJob, wireErrorOf, type ResultExtras, type ReceiptSigner } from './complete-job.js'
import type { JobTraits, QueuedJob } from './job-queue.js'
import type { ResultCache } from './result-cache.js'
import { ENGINE_STARTED } from '../engine/worker-backend.js'
import { decodeCheckpoint, encodeCheckpoint } from './train-checkpoints.js'

/** engine progress stage of one completed optimizer step (detail: step, steps, epoch, loss) */
const TRAIN_STEP = 'train-step'
/** how long an engine may take to begin a batch (model load after a respawn) before the batch is aborted */
const ENGINE_START_GRACE_MS = 60_000
const TIMER_SLACK_MS = 5

/** How co-tenant batches are formed. */
export interface BatchPolicy {
  /** how long a batch waits for co-tenants after its youngest job arrived */
  batchWindowMs: number
  maxBatchJobs: number
  /**
   * 'any': a batch takes every queued job of the model (up to maxBatchJobs). 'powers-of-two': the largest power of
   * two of them, the rest run next (bounds the graphs an engine compiles per Program shape to log2(maxBatchJobs) + 1)
   */
  sizes: 'powers-of-two' | 'any'
}

/**
 * The batch to launch now from one model's queued jobs (in submission order), or how long to wait for co-tenants:
 * a model with no batch running waits while its youngest job is within the batch window, fewer than maxBatchJobs
 * wait and its oldest has waited less than four windows. A session runs alone; plain jobs go together up to the first
 * session.
 */
export function formBatch (jobs: readonly QueuedJob[], policy: BatchPolicy, now: number, modelRunning: boolean): { batch: QueuedJob[] } | { waitMs: number } {
  const windowLeft = jobs[jobs.length - 1]!.row.submittedAt + policy.batchWindowMs - now
  if (windowLeft > 0 && jobs.length < policy.maxBatchJobs && !modelRunning && jobs[0]!.row.submittedAt + 4 * policy.batchWindowMs > now) {
    return { waitMs: windowLeft }
  }
  if (jobs[0]!.traits.solo) return { batch: [jobs[0]!] }
  let plain = 1
  while (plain < jobs.length && !jobs[plain]!.traits.solo) plain++
  const take = Math.max(1, Math.min(plain, policy.maxBatchJobs))
  return { batch: jobs.slice(0, policy.sizes === 'powers-of-two' ? 2 ** Math.floor(Math.log2(take)) : take) }
}

export interface BatchRunnerDeps {
  store: Store
  registry: ModelRegistry
  events: JobEvents
  limits: HostLimits
  signer: ReceiptSigner
  now: () => number
  /** batches that may run at once on one model (match the backend's worker count) */
  batchesPerModel: number
  /** ends a job with an error (the scheduler's one path: queue, runner and store) */
  fail: (row: JobRow, error: WireError, state?: 'failed' | 'cancelled') => void
  /** where results committed for held submissions wait to be taken */
  results: ResultCache
  /** puts a job of a failed batch back in the queue (store and memory); returns its row as stored */
  requeue: (job: QueuedJob) => JobRow
  /** an engine finished a run: launch what waits now (before this run's results commit, so the engine computes) */
  engineFree: () => void
  /** a batch ended (its engine slot and model are released) */
  batchEnded: () => void
  onEgress?: (row: JobRow, bytes: number) => void
  /** kept adapters: resolves `init: {adapter}` of jobs read back from the store, persists `keep` */
  adapters?: Adapters
  /** learns each model's engine speed from completed jobs (admission refuses sessions that cannot fit) */
  speed?: EngineSpeed
}

interface RunningBatch {
  controller: AbortController
  /** the jobs whose results still count (a cancelled co-tenant leaves) */
  ids: Set<string>
  traits: Map<string, JobTraits>
  released?: boolean
  /** why the batch was asked to stop: a training run then ends with its last completed step */
  stopped?: 'cancelled' | 'time-limit'
}

export class BatchRunner {
  private readonly running = new Map<string, RunningBatch[]>()
  /** batches whose engine run has returned and whose completions are being committed */
  private completing = 0
  /** the train-step events of running training jobs, replayed to late event subscribers */
  private readonly trainLog = new Map<string, JobEvent[]>()

  constructor (private readonly deps: BatchRunnerDeps) {}

  private batchesOn (model: string): RunningBatch[] { return this.running.get(model) ?? [] }

  /** batches running on `model` */
  batchCount (model: string): number { return this.batchesOn(model).length }

  /** whether `model` may start another batch */
  hasRoom (model: string): boolean { return this.batchesOn(model).length < this.deps.batchesPerModel }

  /** whether every served model already runs all the batches it may (nothing could launch) */
  saturated (): boolean {
    return this.running.size > 0 && this.deps.registry.list().every(m => !this.hasRoom(m.name))
  }

  /** whether any batch runs */
  get busy (): boolean { return this.running.size > 0 }

  /** whether no batch runs and none is committing its results */
  get idle (): boolean { return this.running.size === 0 && this.completing === 0 }

  /** ids of the jobs this node's engines are running (their claims' leases are renewed) */
  runningIds (): string[] {
    const ids: string[] = []
    for (const batches of this.running.values()) for (const batch of batches) ids.push(...batch.ids)
    return ids
  }

  isRunning (id: string): boolean {
    for (const batches of this.running.values()) for (const batch of batches) if (batch.ids.has(id)) return true
    return false
  }

  /** The train-step events of a running training job so far (a late subscriber's catch-up). */
  trainingProgress (id: string): readonly JobEvent[] { return this.trainLog.get(id) ?? [] }

  /** Drops what the runner kept about a job that ended. */
  forget (id: string): void { this.trainLog.delete(id) }

  /** Starts a batch of claimed jobs on `model`'s engine (the caller checked `hasRoom`). */
  start (model: ServedModel, jobs: readonly QueuedJob[]): void {
    const rows = jobs.map(job => job.row)
    const batch: RunningBatch = { controller: new AbortController(), ids: new Set(rows.map(r => r.id)), traits: new Map(jobs.map(job => [job.row.id, job.traits])) }
    const name = model.name
    this.running.set(name, [...this.batchesOn(name), batch])
    model.inflight++
    for (const row of rows) this.deps.events.emit(row.id, { event: 'job-start', data: { job: row.id, batchSize: rows.length } })
    void this.runBatch(model, jobs, batch).catch(error => {
      // a bug here must not take the provider down (an unhandled rejection would): fail the batch's jobs instead
      console.error('[weft host] batch failed', error)
      for (const row of rows) this.fail(row, wireErrorOf(error))
    }).finally(() => {
      this.release(name, batch)
      void this.deps.registry.release(model)
      this.deps.batchEnded()
    })
  }

  /** Takes a job out of the running batches on `model` (its result will be discarded); a batch left empty is stopped. */
  leave (id: string, model: string): void { this.leaveBatches(id, this.batchesOn(model)) }

  /** Takes a job out of every running batch (a job started before its admission committed, which then failed). */
  abandon (id: string): void {
    for (const batches of this.running.values()) this.leaveBatches(id, batches)
  }

  private leaveBatches (id: string, batches: readonly RunningBatch[]): void {
    for (const batch of batches) if (batch.ids.delete(id) && batch.ids.size === 0) batch.controller.abort()
  }

  /**
   * Asks the batch running a training job to stop after its current step (the job then ends completed, with the
   * losses so far and the adapter of its last completed step). False when `row` is no training job running here.
   */
  stopTraining (row: JobRow): boolean {
    const batch = this.batchesOn(row.model).find(b => b.ids.has(row.id))
    if (batch === undefined || batch.traits.get(row.id)?.training !== true) return false
    batch.stopped ??= 'cancelled'
    batch.controller.abort()
    this.deps.events.emit(row.id, { event: 'job-progress', data: { job: row.id, stage: 'stopping', reason: batch.stopped } })
    return true
  }

  /** Stops every running batch (shutdown). */
  close (): void {
    for (const batches of this.running.values()) for (const batch of batches) batch.controller.abort()
  }

  /** Frees the batch's engine slot (once). */
  private release (name: string, batch: RunningBatch): void {
    if (batch.released === true) return
    batch.released = true
    const left = this.batchesOn(name).filter(b => b !== batch)
    if (left.length === 0) this.running.delete(name)
    else this.running.set(name, left)
  }

  private async runBatch (model: ServedModel, queued: readonly QueuedJob[], batch: RunningBatch): Promise<void> {
    const edits = this.deps.registry.edits(model.name)
    const labels = edits.map(e => `${e.name}@${e.digest}`)
    const programs = new Map<string, Program>()
    const jobs: BatchJob[] = []
    for (const { row, program } of queued) {
      let runnable: RunnableProgram
      try {
        // a job admitted before a restart is read back as signed: its adapter inits are resolved again (owner-checked)
        runnable = program ?? this.resolved(row, model)
      } catch (error) {
        batch.ids.delete(row.id)
        this.fail(row, wireErrorOf(error))
        continue
      }
      programs.set(row.id, runnable.program)
      // the edits admission applied, unless the operator changed them since (then the current ones, typed by the engine)
      const current = runnable.edits.length === labels.length && runnable.edits.every((label, i) => label === labels[i])
      jobs.push(current
        ? { id: row.id, program: runnable.edited, ...(runnable.editedTypes === undefined ? {} : { types: runnable.editedTypes }) }
        : { id: row.id, program: applyEdits(runnable.program, edits) })
    }
    if (jobs.length === 0) return
    const running = queued.map(job => job.row).filter(row => programs.has(row.id))
    const cadence = this.cadence()
    for (const job of jobs) {
      if (job.program.train === undefined) continue
      if (cadence !== undefined) job.checkpoint = cadence
      const resume = this.resumeFrom(job.id)
      this.trainLog.delete(job.id) // a run again starts its log afresh: replayed steps, then its own
      if (resume === undefined) continue
      job.resume = resume
      const row = running.find(r => r.id === job.id)!
      const perEpoch = job.program.train.batches?.length ?? 1
      resume.losses.forEach((loss, k) => this.trainStep([row], { step: k + 1, steps: resume.steps, epoch: Math.floor(k / perEpoch) + 1, loss }, true))
    }
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
          if (event.stage === TRAIN_CHECKPOINT_STAGE) { this.checkpoint(event.detail ?? {}); return }
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
      try { this.deps.engineFree() } catch (error) { console.error('[weft host] scheduler error', error) }
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

  /** The checkpoint cadence of the limits (undefined: checkpoints are off). */
  private cadence (): CheckpointCadence | undefined {
    const { checkpointEverySteps, checkpointEveryMs } = this.deps.limits
    return checkpointEverySteps > 0 ? { everySteps: checkpointEverySteps, everyMs: checkpointEveryMs } : undefined
  }

  /** The stored checkpoint of a job about to run, if any (one that cannot be read is ignored: the run starts at step 0). */
  private resumeFrom (id: string): TrainingCheckpoint | undefined {
    const row = this.deps.store.getTrainCheckpoint(id)
    if (row === undefined) return undefined
    try {
      return decodeCheckpoint(row.state)
    } catch (error) {
      console.error(`[weft host] the training checkpoint of job ${id} cannot be read; it runs from step 0`, error)
      return undefined
    }
  }

  /**
   * A training checkpoint the engine reported: stored over the job's last one (only while the job runs here — a job
   * that ended or was taken over by another node writes nothing). A failed write is logged, never fails the job.
   */
  private checkpoint (detail: Record<string, unknown>): void {
    const job = detail.job as string
    const checkpoint = detail.checkpoint as TrainingCheckpoint
    try {
      this.deps.store.putTrainCheckpoint({ jobId: job, step: checkpoint.step, state: encodeCheckpoint(checkpoint), now: this.deps.now() })
    } catch (error) {
      console.error(`[weft host] could not store the training checkpoint of job ${job} (step ${checkpoint.step})`, error)
    }
  }

  /**
   * One completed optimizer step: a `job-progress` event (stage train-step) to the job's streams, kept for late ones.
   * `resumed`: a step of an earlier run replayed from the checkpoint this run resumes from (`resumed: true`).
   */
  private trainStep (rows: JobRow[], detail: Record<string, unknown>, resumed = false): void {
    for (const row of rows) {
      const event: JobEvent = { event: 'job-progress', data: { job: row.id, stage: TRAIN_STEP, step: detail.step, steps: detail.steps, epoch: detail.epoch, loss: detail.loss, ...(resumed ? { resumed: true } : {}) } }
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
        if (summary !== undefined) {
          const resumedFrom = result.training?.resumedFrom
          extras.training = { ...summary, ...(summary.cancelled ? { stopped: batch.stopped ?? 'cancelled' } : {}), ...(resumedFrom === undefined ? {} : { resumedFrom }) }
        }
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
      // a training run stopped early (or resumed from a checkpoint) did only part of the work its cost estimate counts
      const summary = summaries.get(row.id)
      const resumedFrom = result.ok ? result.training?.resumedFrom ?? 0 : 0
      const cost = (batch.traits.get(row.id)?.cost ?? NaN) * (summary === undefined ? 1 : (summary.completed - resumedFrom) / Math.max(1, summary.steps))
      this.forget(row.id)
      if (!result.ok) { this.fail(row, result.error); continue }
      if (outcome!.ok) {
        if (Number.isFinite(cost)) this.deps.speed?.observe(model.name, programs.get(row.id)?.train === undefined ? 'plain' : 'train', cost, result.stats.runMs)
        this.deps.onEgress?.(row, outcome!.egressBytes)
        if (this.deps.events.waiting(row.id)) this.deps.results.put(row.id, outcome!.stored)
        this.deps.events.emit(row.id, { event: 'job-end', data: { job: row.id, egressBytes: outcome!.egressBytes, resultDigest: outcome!.resultDigest, runMs: result.stats.runMs, ...outcome!.extras } })
      } else if (outcome!.error !== null) this.fail(row, outcome!.error)
    }
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
      } else if (batch.stopped === 'cancelled' && batch.traits.get(row.id)?.training === true) {
        // a training run cancelled by its submitter that the engine stopped before its first step completed
        this.fail(row, { code: 'JOB_CANCELLED', message: 'job cancelled by its submitter before its first training step completed', details: {} }, 'cancelled')
      } else if (WeftError.is(error, 'JOB_CANCELLED') && current.attempts < this.deps.limits.maxAttempts + 1) {
        const requeued = this.deps.requeue({ row, traits: batch.traits.get(row.id) ?? { solo: false, training: false } })
        this.deps.events.emit(row.id, { event: 'job-queued', data: { job: row.id, position: this.deps.store.queuePosition(requeued), requeued: true } })
      } else {
        this.fail(row, wireErrorOf(error))
      }
    }
  }

  private fail (row: JobRow, error: WireError, state?: 'failed' | 'cancelled'): void { this.deps.fail(row, error, state) }
}
