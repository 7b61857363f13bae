/**
 * What a provider node does when it shares its store with other nodes (PostgreSQL): mirrors the queue (jobs any node
 * admitted; claims any node made), renews the leases of the jobs its engines run, takes over running jobs whose
 * node's lease expired (a node that died: requeued, or failed with a reason after maxAttempts), and relays the state
 * changes of jobs that run on other nodes to this node's event streams and held submissions (polling the store),
 * so status, events and results can be fetched from any node. See docs/decisions/2026-12-05-multi-node.md.
 */
import type { Store } from '../store/store.js'
import type { Scheduler } from './scheduler.js'
import type { JobEvents } from './job-events.js'
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

export class RemoteJobs {
  private readonly timers: NodeJS.Timeout[] = []
  /** last state relayed per watched job */
  private readonly seen = new Map<string, string>()

  constructor (private readonly deps: RemoteJobsDeps) {
    const leaseMs = (deps.store as { leaseMs?: number }).leaseMs ?? DEFAULT_LEASE_MS
    const pollMs = deps.pollMs ?? 25
    this.every(pollMs, () => { deps.scheduler.sync(); this.relay() })
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
      this.deps.events.emit(id, { event: 'job-error', data: { job: id, state: 'failed', error: JSON.parse(row?.error ?? 'null') } })
    }
    if (requeued.length > 0) this.deps.scheduler.sync()
  }

  /** State changes of watched jobs that this node does not run: relayed as the events their node emitted there. */
  private relay (): void {
    const { store, events } = this.deps
    const watched = new Set([...events.watched(), ...events.waitingIds()])
    for (const id of this.seen.keys()) if (!watched.has(id)) this.seen.delete(id)
    if (watched.size === 0) return
    const here = new Set(this.deps.scheduler.runningIds())
    const ids = [...watched].filter(id => !here.has(id))
    for (const job of store.jobStates(ids)) {
      if (job.node === store.node || this.seen.get(job.id) === job.state) continue
      this.seen.set(job.id, job.state)
      if (job.state === 'running') events.emit(job.id, { event: 'job-start', data: { job: job.id, node: job.node } })
      else if (job.state === 'completed') {
        const result = store.getResult(job.id, this.deps.now())
        const { extras } = splitStats(JSON.parse(result?.stats ?? 'null'))
        events.emit(job.id, { event: 'job-end', data: { job: job.id, egressBytes: result?.egressBytes ?? null, node: job.node, ...extras } })
      } else if (job.state === 'failed' || job.state === 'cancelled') {
        events.emit(job.id, { event: 'job-error', data: { job: job.id, state: job.state, error: JSON.parse(job.error ?? 'null') } })
      }
    }
  }

  stop (): void { for (const timer of this.timers) clearInterval(timer) }
}
