/**
 * The one LRU of onnxruntime sessions (or anything releasable): compiled Programs keyed by structure, plain
 * forwards keyed by output set. Bounded by count and by memory: each entry is charged the larger of what the value
 * says it holds (`bytes`: graph, initializers it owns, prepacked copies) and the process RSS growth measured from
 * before its creation to the end of its first run (which includes the activation arena that run grew). An evicted
 * entry is released (`InferenceSession.release()`) only once no run holds it (`use`). See
 * docs/decisions/2026-12-05-session-memory.md.
 */
export interface Releasable { release?: () => Promise<void> | void; bytes?: number }

export interface SessionCacheLimits {
  /** entries kept at most; default 16 */
  capacity?: number
  /** bytes the entries may be charged together (the newest entry is kept even when it alone exceeds it); default unbounded */
  maxBytes?: number
  /** charge the RSS growth of creation + first run (default true; false: only the value's own `bytes`) */
  measure?: boolean
}

interface Entry<T> { value: Promise<T>; users: number; evicted: boolean; bytes: number }

export class SessionCache<T extends Releasable> {
  private readonly entries = new Map<string, Entry<T>>()
  readonly capacity: number
  readonly maxBytes: number
  private readonly measure: boolean
  hits = 0
  misses = 0
  /** entries evicted (count or memory) since creation */
  evictions = 0

  constructor (limits: number | SessionCacheLimits = {}) {
    const options = typeof limits === 'number' ? { capacity: limits } : limits
    this.capacity = options.capacity ?? 16
    this.maxBytes = options.maxBytes ?? Infinity
    this.measure = options.measure ?? true
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RangeError(`session cache capacity must be a positive integer, got ${this.capacity}`)
    if (!(this.maxBytes > 0)) throw new RangeError(`session cache memory budget must be a positive number of bytes, got ${this.maxBytes}`)
  }

  get size (): number { return this.entries.size }
  /** bytes charged to the cached entries */
  get bytes (): number {
    let total = 0
    for (const entry of this.entries.values()) total += entry.bytes
    return total
  }

  has (key: string): boolean { return this.entries.has(key) }

  /** The cached value for `key` (marked most recently used), or `make()`'s, evicting the least recently used. */
  async get (key: string, make: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    const { entry, hit } = this.entry(key, make)
    const value = await entry.value
    if (!hit) this.charge(key, entry, value, 0)
    return { value, hit }
  }

  /** Like `get`, but the entry is not released by an eviction until `fn` has finished with it. */
  async use<R> (key: string, make: () => Promise<T>, fn: (value: T, hit: boolean) => Promise<R>): Promise<R> {
    const before = this.measure ? process.memoryUsage.rss() : 0
    const { entry, hit } = this.entry(key, make)
    entry.users++
    let value: T | undefined
    try {
      value = await entry.value
      return await fn(value, hit)
    } finally {
      entry.users--
      // the first run grew the session's arena: charge creation + that run, then trim to the budget
      if (!hit && value !== undefined) this.charge(key, entry, value, this.measure ? process.memoryUsage.rss() - before : 0)
      if (entry.evicted && entry.users === 0) release(entry)
    }
  }

  private charge (key: string, entry: Entry<T>, value: T, measured: number): void {
    entry.bytes = Math.max(value.bytes ?? 0, measured, 0)
    this.trim(key)
  }

  /** Evicts least recently used entries (never `keep`) until the charged bytes fit the budget. */
  private trim (keep: string): void {
    let total = this.bytes
    for (const [key, entry] of [...this.entries]) {
      if (total <= this.maxBytes) return
      if (key === keep) continue
      total -= entry.bytes
      this.evict(key, entry)
    }
  }

  private evict (key: string, entry: Entry<T>): void {
    this.entries.delete(key)
    this.evictions++
    entry.evicted = true
    if (entry.users === 0) release(entry)
  }

  private entry (key: string, make: () => Promise<T>): { entry: Entry<T>; hit: boolean } {
    const known = this.entries.get(key)
    if (known !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, known)
      this.hits++
      return { entry: known, hit: true }
    }
    this.misses++
    const entry: Entry<T> = { value: make(), users: 0, evicted: false, bytes: 0 }
    this.entries.set(key, entry)
    entry.value.catch(() => { if (this.entries.get(key) === entry) this.entries.delete(key) })
    while (this.entries.size > this.capacity) {
      const [oldest, victim] = this.entries.entries().next().value as [string, Entry<T>]
      this.evict(oldest, victim)
    }
    return { entry, hit: false }
  }

  /** Drops every entry; entries in use are released when their last run finishes. */
  async clear (): Promise<void> {
    const all = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(all.map(async entry => {
      entry.evicted = true
      if (entry.users === 0) await releaseNow(entry)
    }))
  }
}

function release<T extends Releasable> (entry: Entry<T>): void { void releaseNow(entry) }

async function releaseNow<T extends Releasable> (entry: Entry<T>): Promise<void> {
  try { await (await entry.value).release?.() } catch { /* a failed make or release has nothing left to free */ }
}
