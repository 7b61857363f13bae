/** LRU cache of compiled sessions keyed by Program structure: a hit skips compiling and session creation. */
export class SessionCache<T extends { release?: () => Promise<void> | void }> {
  private readonly entries = new Map<string, Promise<T>>()
  hits = 0
  misses = 0

  constructor (readonly capacity = 16) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`session cache capacity must be a positive integer, got ${capacity}`)
  }

  get size (): number { return this.entries.size }
  has (key: string): boolean { return this.entries.has(key) }

  /** The cached value for `key` (marked most recently used), or `make()`'s, evicting the least recently used. */
  async get (key: string, make: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    const known = this.entries.get(key)
    if (known !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, known)
      this.hits++
      return { value: await known, hit: true }
    }
    this.misses++
    const made = make()
    this.entries.set(key, made)
    made.catch(() => { if (this.entries.get(key) === made) this.entries.delete(key) })
    while (this.entries.size > this.capacity) {
      const [oldest, value] = this.entries.entries().next().value as [string, Promise<T>]
      this.entries.delete(oldest)
      void value.then(v => v.release?.(), () => undefined)
    }
    return { value: await made, hit: false }
  }

  async clear (): Promise<void> {
    const all = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(all.map(async p => { try { await (await p).release?.() } catch { /* already failed */ } }))
  }
}
