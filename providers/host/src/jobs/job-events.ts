/** In-process fan-out of job lifecycle events to SSE streams and waiting requests (the store holds the truth). */
export type JobEventName = 'job-received' | 'job-queued' | 'job-start' | 'job-progress' | 'job-end' | 'job-error'

export interface JobEvent { event: JobEventName; data: Record<string, unknown> }

export const isTerminal = (event: JobEventName): boolean => event === 'job-end' || event === 'job-error'

type Listener = (event: JobEvent) => void

export class JobEvents {
  private readonly listeners = new Map<string, Set<Listener>>()

  subscribe (job: string, listener: Listener): () => void {
    let set = this.listeners.get(job)
    if (set === undefined) { set = new Set(); this.listeners.set(job, set) }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0) this.listeners.delete(job)
    }
  }

  emit (job: string, event: JobEvent): void {
    const set = this.listeners.get(job)
    if (set === undefined) return
    for (const listener of [...set]) listener(event)
  }

  /** job ids somebody is listening to (the scheduler refreshes their queue positions) */
  watched (): string[] { return [...this.listeners.keys()] }

  /** Resolves with the terminal event, or null after `ms`. */
  async waitForEnd (job: string, ms: number): Promise<JobEvent | null> {
    return await new Promise(resolve => {
      const timer = setTimeout(() => { unsubscribe(); resolve(null) }, ms)
      const unsubscribe = this.subscribe(job, event => {
        if (!isTerminal(event.event)) return
        clearTimeout(timer); unsubscribe(); resolve(event)
      })
    })
  }
}
