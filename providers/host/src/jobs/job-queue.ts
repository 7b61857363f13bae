/**
 * The job queue: the queued jobs in memory, in submission order and per model, each with what the scheduler knows of
 * it besides its row (its admitted Program, whether it runs alone or trains, its cost). The store is the durable queue
 * (a restart reloads it); this mirrors it so a pump does not read every queued row (program blobs included), O(queue)
 * per batch. Claiming moves jobs to running in the store: with a shared store (several nodes) only the ones this node
 * won. `mirror` follows the shared queue that other nodes' admissions add to and their claims take from.
 */
import { decodeProgram, type Program } from '@weft/core'
import type { JobRow, Store } from '../store/store.js'
import { isSession, type RunnableProgram } from './admission.js'

/** What the scheduler knows of a job besides its row. */
export interface JobTraits {
  /** runs alone in its batch (sessions, params, training: see isSession) */
  solo: boolean
  /** trains: a cancel or time limit stops it after a step, and it ends with what it completed */
  training: boolean
  /** admission's cost estimate (engine speed is learned from it); unknown after a restart */
  cost?: number
}

/** The traits of a job's Program (none known when it no longer decodes: it fails when its batch runs). */
export function traitsOf (program: Program | undefined, cost?: number): JobTraits {
  return {
    solo: program !== undefined && isSession(program),
    training: program?.train !== undefined,
    ...(cost === undefined ? {} : { cost }),
  }
}

/** A job waiting to run (or about to). */
export interface QueuedJob {
  row: JobRow
  traits: JobTraits
  /**
   * the Program admission analysed (decoded, typed, edited), so its batch neither decodes the stored bytes nor
   * analyses or edits it again; absent for a job read back from the store
   */
  program?: RunnableProgram
}

/** Submission order: the store's queue order (submittedAt, then id). */
const bySubmission = (a: QueuedJob, b: QueuedJob): number =>
  a.row.submittedAt - b.row.submittedAt || (a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0)

export class JobQueue {
  private readonly jobs = new Map<string, QueuedJob>()
  /** a job went to the back of `jobs` but belongs by its submission time */
  private unsorted = false

  constructor (private readonly store: Store) {}

  /** Every job queued in the store (start-up), its traits read from its stored Program. */
  load (): void {
    for (const row of this.store.queuedJobs(Number.MAX_SAFE_INTEGER)) this.jobs.set(row.id, { row, traits: traitsOf(decoded(row)) })
  }

  /** A job admission just committed as queued (the newest). */
  add (job: QueuedJob): void { this.jobs.set(job.row.id, job) }

  /**
   * A running job of a batch that failed, to run once more: requeued in the store and here, where it belongs by its
   * submission time. Returns its row as stored now.
   */
  requeue (job: QueuedJob): JobRow {
    this.store.requeue(job.row.id)
    const row = this.store.getJob(job.row.id)!
    this.jobs.set(row.id, { row, traits: job.traits })
    this.unsorted = true
    return row
  }

  get (id: string): QueuedJob | undefined { return this.jobs.get(id) }

  remove (id: string): void { this.jobs.delete(id) }

  get size (): number { return this.jobs.size }

  /** whether a job of `model` waits */
  hasModel (model: string): boolean {
    for (const job of this.jobs.values()) if (job.row.model === model) return true
    return false
  }

  /** The queued jobs of each model, each list in submission order. */
  byModel (): Map<string, QueuedJob[]> {
    const byModel = new Map<string, QueuedJob[]>()
    for (const job of this.ordered()) {
      const jobs = byModel.get(job.row.model)
      if (jobs === undefined) byModel.set(job.row.model, [job])
      else jobs.push(job)
    }
    return byModel
  }

  /** The store's position of a queued job (undefined when it is not queued here). */
  position (id: string): number | undefined {
    const job = this.jobs.get(id) // mirrored here: no read of the row (program blob included)
    return job === undefined ? undefined : this.store.queuePosition(job.row)
  }

  /**
   * Takes `jobs` out of the queue and marks them running in the store, claimed by this node. Returns the ones it
   * claimed: with a shared store, another node may have claimed some first (they run there; dropped here). When the
   * store fails, the jobs (still queued there) go back to the head of the queue in the order they had, and the error
   * is thrown: the caller tries again shortly, or they would not run until the provider restarts.
   */
  claim (jobs: readonly QueuedJob[], now: number): QueuedJob[] {
    for (const job of jobs) this.jobs.delete(job.row.id)
    let claimed: Set<string>
    try {
      claimed = new Set(this.store.markRunning(jobs.map(job => job.row.id), now))
    } catch (error) {
      const rest = [...this.jobs]
      this.jobs.clear()
      for (const job of jobs) this.jobs.set(job.row.id, job)
      for (const [id, job] of rest) this.jobs.set(id, job)
      throw error
    }
    return claimed.size === jobs.length ? [...jobs] : jobs.filter(job => claimed.has(job.row.id))
  }

  /**
   * A shared store: follow its queue. Jobs no longer queued there (claimed by another node, ended) leave; jobs another
   * node admitted join (traits read from their stored Program), except those `runsHere` (running on this node).
   * Returns whether any joined.
   */
  mirror (runsHere: (id: string) => boolean): boolean {
    const ids = this.store.queuedIds(Number.MAX_SAFE_INTEGER)
    const present = new Set(ids)
    for (const id of this.jobs.keys()) if (!present.has(id)) this.jobs.delete(id)
    let added = false
    for (const id of ids) {
      if (this.jobs.has(id) || runsHere(id)) continue
      const row = this.store.getJob(id)
      if (row?.state !== 'queued') continue
      this.jobs.set(id, { row, traits: traitsOf(decoded(row)) })
      added = true
    }
    if (added) this.unsorted = true
    return added
  }

  /** The jobs in submission order (sorted again only after a requeue or a mirror added some). */
  private ordered (): QueuedJob[] {
    const jobs = [...this.jobs.values()]
    if (this.unsorted) {
      jobs.sort(bySubmission)
      this.jobs.clear()
      for (const job of jobs) this.jobs.set(job.row.id, job)
      this.unsorted = false
    }
    return jobs
  }
}

function decoded (row: JobRow): Program | undefined {
  try { return decodeProgram(row.program) } catch { return undefined } // a Program that no longer decodes fails when its batch runs
}
