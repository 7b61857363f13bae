/**
 * The result cache: results just committed for held submissions (a POST that waits for its job's end takes the result
 * from here, not back from the store), each taken once. Bounded by count and by bytes: a waiter that never took its
 * own (it timed out as the job ended) would otherwise pin it, so beyond either bound the oldest are dropped (the result
 * stays in the store). The newest result is always kept, however large.
 */
import type { StoredResult } from './complete-job.js'

/** results kept at most (count) */
const RESULT_CACHE_MAX_ENTRIES = 1024
/** bytes of saves kept at most, summed over the cached results */
const RESULT_CACHE_MAX_BYTES = 256 * 2 ** 20

export class ResultCache {
  private readonly results = new Map<string, StoredResult>()
  private held = 0

  constructor (
    private readonly maxEntries = RESULT_CACHE_MAX_ENTRIES,
    private readonly maxBytes = RESULT_CACHE_MAX_BYTES,
  ) {}

  /** Keeps a job's committed result for its waiter; drops the oldest beyond the bounds. */
  put (id: string, stored: StoredResult): void {
    this.take(id) // a result put twice counts its bytes once
    this.results.set(id, stored)
    this.held += stored.saves.byteLength
    while (this.results.size > this.maxEntries || (this.results.size > 1 && this.held > this.maxBytes)) this.take(this.results.keys().next().value!)
  }

  /** The result of a job that just ended, once. */
  take (id: string): StoredResult | undefined {
    const stored = this.results.get(id)
    if (stored === undefined) return undefined
    this.results.delete(id)
    this.held -= stored.saves.byteLength
    return stored
  }

  /** results held */
  get size (): number { return this.results.size }

  /** bytes of saves held */
  get bytes (): number { return this.held }
}
