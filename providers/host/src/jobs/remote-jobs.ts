/**
 * What a provider node does when it shares its store with other nodes (PostgreSQL): mirrors the queue (jobs any node
 * admitted; claims any node made), renews the leases of the jobs its engines run, takes over running jobs whose
 * node's lease expired (a node that died: requeued, or failed with a reason after maxAttempts), and relays the state
 * changes of jobs that run on other nodes to this node's event streams and held submissions (polling the store),
 * so status, events and results can be fetched from any node. Engine events (progress, generated tokens, training
 * steps) of the jobs this node runs are appended to the store's job_events, and relayed from there by the nodes that
 * stream those jobs; a cancel for a job another node runs reaches that node as a request in the same table.
 * See docs/decisions/2026-12-05-multi-node.md.
 */
import type { Store } from '../store/store.js'
import type { Scheduler } from './scheduler.js'
import { isTerminal, type JobEvent, type JobEvents } from './job-events.js'
import type { HostLimits } from './limits.js'
import { splitStats } from './complete-job.js'
import { DEFAULT_LEASE_MS } from '../store/pg-store.js'

export interface RemoteJobsDeps {
  store: Store
  scheduler: Scheduler
  events: JobEvents
  limits: HostLimits
  now: () => number
  /** how often the queue is mirrored and other nodes' job changes are relayed (default 25 ms) */
  pollMs?: number
}

/** engine events stored per job, at most (a longer generation's later tokens reach only the running node's streams) */
const MAX_SHARED_EVENTS_PER_JOB = 10_000
/** a job's stored events are deleted this long after it ends (nodes relaying it read the last ones first) */
const EVENTS_GRACE_MS = 10_000

export class RemoteJobs {
  private readonly timers: NodeJS.Timeout[] = []
  /** last state relayed per watched job */
  private readonly seen = new Map<string, string>()
  /** id of the last stored event relayed, per watched job that runs on another node */
  private readonly cursors = new Map<string, number>()
  /** events stored so far per job this node runs */
  private readonly stored = new Map<string, number>()
  /** jobs that ran here and ended, with when their stored events may be deleted */
  private readonly ended = new Map<string, number>()
  /** cancel requests already acted on (a training job keeps running until its step ends) */
  private readonly cancelling = new Set<string>()
  private readonly untap: () => void

  constructor (private readonly deps: RemoteJobsDeps) {
    const leaseMs = (deps.store as { leaseMs?: number }).leaseMs ?? DEFAULT_LEASE_MS
    const pollMs = deps.pollMs ?? 25
    this.untap = deps.events.tap((job, event) => this.share(job, event))
    this.every(pollMs, () => { deps.scheduler.sync(); this.relay(); this.upkeep() })
    this.every(Math.max(10, Math.floor(leaseMs / 3)), () => deps.store.renewLeases(deps.scheduler.runningIds(), deps.now()))
    this.every(Math.max(10, Math.floor(leaseMs / 2)), () => this.takeOver())
  }

  private every (ms: number, fn: () => void): void {
    const timer = setInterval(() => {
      try { fn() } catch (error) { console.error('[weft host] multi-node upkeep failed:', (error as Error).message) }
    }, ms)
    timer.unref()
    this.timers.push(timer)
  }

  private takeOver (): void {
    const { requeued, failed } = this.deps.store.takeOver(this.deps.limits.maxAttempts, this.deps.now())
    if (requeued.length > 0) console.error(`[weft host] took over ${requeued.length} job(s) of a node whose lease expired`)
    for (const id of failed) {
      const row = this.deps.store.getJob(id)
      this.deps.events.emit(id, { event: 'job-error', data: { job: id, state: row?.state ?? 'failed', error: JSON.parse(row?.error ?? 'null') } })
    }
    if (requeued.length > 0) this.deps.scheduler.sync()
  }

  /** An engine event of a job this node runs: stored for the nodes that stream it (bounded per job). */
  private share (job: string, event: JobEvent): void {
    if (event.event === 'job-progress' || event.event === 'job-token') {
      if (!this.deps.scheduler.isRunningHere(job)) return // a relayed event, or a job that already left its batch
      if (event.data.resumed === true) return // a step of an earlier run, replayed from a checkpoint: stored by that run's node
      const count = this.stored.get(job) ?? 0
      if (count >= MAX_SHARED_EVENTS_PER_JOB) return
      this.stored.set(job, count + 1)
      this.deps.store.appendJobEvents([{ jobId: job, event: event.event, data: JSON.stringify(event.data), at: this.deps.now() }])
    } else if (isTerminal(event.event) && (this.stored.has(job) || this.cancelling.has(job))) {
      this.stored.delete(job)
      this.cancelling.delete(job)
      this.ended.set(job, this.deps.now() + EVENTS_GRACE_MS)
    }
  }

  /** Writes buffered events, acts on cancel requests for jobs running here, deletes ended jobs' events. */
  private upkeep (): void {
    const { store, scheduler } = this.deps
    store.flushJobEvents()
    const running = scheduler.runningIds().filter(id => !this.cancelling.has(id))
    for (const id of store.cancelRequested(running)) {
      const row = store.getJob(id)
      if (row === undefined || !scheduler.isRunningHere(id)) continue
      this.cancelling.add(id)
      scheduler.cancel(row) // as if the DELETE had reached this node
    }
    if (this.ended.size > 0) {
      const now = this.deps.now()
      const due = [...this.ended].filter(([, at]) => at <= now).map(([id]) => id)
      if (due.length > 0) { store.deleteJobEvents(due); for (const id of due) this.ended.delete(id) }
    }
  }

  /**
   * State changes and engine events of watched jobs that this node does not run: relayed as the events their node
   * emitted there (a job's stored engine events before its end: the running node stores them before the end commit).
   */
  private relay (): void {
    const { store, events } = this.deps
    const watched = new Set([...events.watched(), ...events.waitingIds()])
    for (const id of this.seen.keys()) if (!watched.has(id)) { this.seen.delete(id); this.cursors.delete(id) }
    if (watched.size === 0) return
    const ids = [...watched].filter(id => !this.deps.scheduler.isRunningHere(id))
    const changed: { id: string; state: string; node: string | null; error: string | null }[] = []
    const streams = new Set(events.watched())
    const streaming: string[] = []
    for (const job of store.jobStates(ids)) {
      if (job.node === store.node && job.state !== 'queued') continue // ran here: this node emitted its events
      const before = this.seen.get(job.id)
      if (before !== job.state) changed.push(job)
      // engine events exist while it runs; the last ones are read as it ends (only streams need them)
      if (streams.has(job.id) && (job.state === 'running' || (before !== job.state && job.state !== 'queued'))) streaming.push(job.id)
    }
    const relayed = new Map<string, JobEvent[]>()
    if (streaming.length > 0) {
      const after = Math.min(...streaming.map(id => this.cursors.get(id) ?? 0))
      for (const stored of store.jobEventsAfter(streaming, after)) {
        if (stored.id <= (this.cursors.get(stored.jobId) ?? 0)) continue
        this.cursors.set(stored.jobId, stored.id)
        if (stored.event !== 'job-progress' && stored.event !== 'job-token') continue // cancel requests
        const list = relayed.get(stored.jobId) ?? []
        list.push({ event: stored.event, data: JSON.parse(stored.data) as Record<string, unknown> })
        relayed.set(stored.jobId, list)
      }
    }
    const terminal = new Map<string, () => void>()
    for (const job of changed) {
      this.seen.set(job.id, job.state)
      if (job.state === 'running') events.emit(job.id, { event: 'job-start', data: { job: job.id, node: job.node } })
      else if (job.state === 'completed') {
        terminal.set(job.id, () => {
          const result = store.getResult(job.id, this.deps.now())
          const { extras } = splitStats(JSON.parse(result?.stats ?? 'null'))
          events.emit(job.id, { event: 'job-end', data: { job: job.id, egressBytes: result?.egressBytes ?? null, node: job.node, ...extras } })
        })
      } else if (job.state === 'failed' || job.state === 'cancelled') {
        terminal.set(job.id, () => events.emit(job.id, { event: 'job-error', data: { job: job.id, state: job.state, error: JSON.parse(job.error ?? 'null') } }))
      }
    }
    for (const [id, list] of relayed) for (const event of list) events.emit(id, event)
    for (const end of terminal.values()) end()
  }

  stop (): void {
    for (const timer of this.timers) clearInterval(timer)
    this.untap()
  }
}
