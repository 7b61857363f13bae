/** In-process fan-out of job lifecycle events to SSE streams and waiting requests (the store holds the truth). */
export type JobEventName = 'job-received' | 'job-queued' | 'job-start' | 'job-progress' | 'job-token' | 'job-end' | 'job-error'

export interface JobEvent { event: JobEventName; data: Record<string, unknown> }

export const isTerminal = (event: JobEventName): boolean => event === 'job-end' || event === 'job-error'

type Listener = (event: JobEvent) => void

export class JobEvents {
  /** every event (SSE streams) */
  private readonly listeners = new Map<string, Set<Listener>>()
  /** terminal events only (held submissions): they need no queue-position updates */
  private readonly waiters = new Map<string, Set<Listener>>()

  /** every event of every job (a multi-node provider shares its running jobs' engine events through the store) */
  private readonly taps = new Set<(job: string, event: JobEvent) => void>()

  subscribe (job: string, listener: Listener): () => void { return add(this.listeners, job, listener) }

  tap (listener: (job: string, event: JobEvent) => void): () => void {
    this.taps.add(listener)
    return () => { this.taps.delete(listener) }
  }

  emit (job: string, event: JobEvent): void {
    for (const tap of this.taps) tap(job, event)
    for (const listener of [...this.listeners.get(job) ?? []]) listener(event)
    if (isTerminal(event.event)) for (const listener of [...this.waiters.get(job) ?? []]) listener(event)
  }

  /** whether a held submission waits for this job's end */
  waiting (job: string): boolean { return this.waiters.has(job) }

  /** job ids a held submission waits for */
  waitingIds (): string[] { return [...this.waiters.keys()] }

  /** job ids with a live event stream (the scheduler refreshes their queue positions) */
  watched (): string[] { return [...this.listeners.keys()] }

  /** Resolves with the terminal event, or null after `ms`. */
  async waitForEnd (job: string, ms: number): Promise<JobEvent | null> {
    return await new Promise(resolve => {
      const timer = setTimeout(() => { unsubscribe(); resolve(null) }, ms)
      const unsubscribe = add(this.waiters, job, event => { clearTimeout(timer); unsubscribe(); resolve(event) })
    })
  }
}

function add (map: Map<string, Set<Listener>>, job: string, listener: Listener): () => void {
  let set = map.get(job)
  if (set === undefined) { set = new Set(); map.set(job, set) }
  set.add(listener)
  return () => {
    set.delete(listener)
    if (set.size === 0) map.delete(job)
  }
}
