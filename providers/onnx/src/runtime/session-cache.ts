/**
 * The one LRU of onnxruntime sessions (or anything releasable): compiled Programs keyed by structure, plain
 * forwards keyed by output set. An evicted entry is released only once no run holds it (`use`).
 */
export interface Releasable { release?: () => Promise<void> | void }

interface Entry<T> { value: Promise<T>; users: number; evicted: boolean }

export class SessionCache<T extends Releasable> {
  private readonly entries = new Map<string, Entry<T>>()
  hits = 0
  misses = 0

  constructor (readonly capacity = 16) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`session cache capacity must be a positive integer, got ${capacity}`)
  }

  get size (): number { return this.entries.size }
  has (key: string): boolean { return this.entries.has(key) }

  /** The cached value for `key` (marked most recently used), or `make()`'s, evicting the least recently used. */
  async get (key: string, make: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    const { entry, hit } = this.entry(key, make)
    return { value: await entry.value, hit }
  }

  /** Like `get`, but the entry is not released by an eviction until `fn` has finished with it. */
  async use<R> (key: string, make: () => Promise<T>, fn: (value: T, hit: boolean) => Promise<R>): Promise<R> {
    const { entry, hit } = this.entry(key, make)
    entry.users++
    try {
      return await fn(await entry.value, hit)
    } finally {
      entry.users--
      if (entry.evicted && entry.users === 0) release(entry)
    }
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
    const entry: Entry<T> = { value: make(), users: 0, evicted: false }
    this.entries.set(key, entry)
    entry.value.catch(() => { if (this.entries.get(key) === entry) this.entries.delete(key) })
    while (this.entries.size > this.capacity) {
      const [oldest, victim] = this.entries.entries().next().value as [string, Entry<T>]
      this.entries.delete(oldest)
      victim.evicted = true
      if (victim.users === 0) release(victim)
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
