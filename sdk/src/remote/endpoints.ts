/**
 * The base URLs of one provider served by several nodes (its record's `endpoints`, spec/provider-record.md "Several
 * nodes, one record"): which node to ask next. Nodes that failed (connection refused, timeout, 5xx) are set aside
 * for a backoff that doubles per consecutive failure; they are still tried, last, when every other node failed too.
 * Submissions rotate over the live nodes (round-robin), everything else asks the first live node.
 */
export interface EndpointPoolOptions {
  /** milliseconds since the epoch (default Date.now) */
  clock?: () => number
  /** first backoff after a failure (default 1 s), doubling up to maxDownMs (default 60 s) */
  downMs?: number
  maxDownMs?: number
}

interface Health { failures: number; downUntil: number; lastError?: string }

export class EndpointPool {
  private list: string[]
  private readonly health = new Map<string, Health>()
  /** endpoints that answered as another provider: never asked again */
  private readonly excluded = new Set<string>()
  private cursor = 0
  private readonly clock: () => number
  private readonly downMs: number
  private readonly maxDownMs: number

  constructor (urls: readonly string[], options: EndpointPoolOptions = {}) {
    this.list = [...new Set(urls)]
    if (this.list.length === 0) throw new TypeError('EndpointPool needs at least one endpoint')
    this.clock = options.clock ?? Date.now
    this.downMs = options.downMs ?? 1000
    this.maxDownMs = options.maxDownMs ?? 60_000
  }

  /** the provider's nodes, preferred first */
  get urls (): readonly string[] { return this.list }

  get size (): number { return this.list.length }

  /**
   * The provider's nodes changed (a newer directory record): asks these from now on, in this order. Nodes already
   * known keep their health; nodes no longer listed are forgotten.
   */
  update (urls: readonly string[]): void {
    const next = [...new Set(urls)]
    if (next.length === 0) return
    for (const url of this.health.keys()) if (!next.includes(url)) this.health.delete(url)
    this.list = next
    this.cursor %= next.length
  }

  isDown (url: string): boolean { return this.excluded.has(url) || (this.health.get(url)?.downUntil ?? 0) > this.clock() }

  /**
   * Every usable endpoint in the order to try: live ones first, starting at `first` (a URL) or at the preferred
   * (first listed) node, then the ones set aside, soonest back first.
   */
  order (first?: string): string[] {
    const usable = this.list.filter(url => !this.excluded.has(url))
    const start = first === undefined ? 0 : Math.max(0, usable.indexOf(first))
    const rotated = [...usable.slice(start), ...usable.slice(0, start)]
    const live = rotated.filter(url => !this.isDown(url))
    const down = rotated.filter(url => this.isDown(url)).sort((a, b) => this.health.get(a)!.downUntil - this.health.get(b)!.downUntil)
    return [...live, ...down]
  }

  /** the first live endpoint (what requests that are not submissions ask first) */
  preferred (): string { return this.order()[0] ?? this.list[0]! }

  /** the next live endpoint in rotation: where the next submission goes first */
  rotate (): string {
    const usable = this.list.filter(url => !this.excluded.has(url))
    for (let i = 0; i < usable.length; i++) {
      const url = usable[(this.cursor + i) % usable.length]!
      if (!this.isDown(url)) {
        this.cursor = (this.cursor + i + 1) % usable.length
        return url
      }
    }
    return this.preferred()
  }

  isExcluded (url: string): boolean { return this.excluded.has(url) }

  markDown (url: string, error?: unknown): void {
    const failures = (this.health.get(url)?.failures ?? 0) + 1
    const backoff = Math.min(this.downMs * 2 ** (failures - 1), this.maxDownMs)
    this.health.set(url, { failures, downUntil: this.clock() + backoff, lastError: error === undefined ? undefined : String((error as Error).message ?? error) })
  }

  markUp (url: string): void { if (this.health.has(url)) this.health.delete(url) }

  /** an endpoint that is not this provider's: left out for good */
  exclude (url: string): void { this.excluded.add(url) }

  /** per endpoint: set aside until (0 = live), consecutive failures, last error; excluded ones flagged */
  status (): { url: string; downUntil: number; failures: number; lastError?: string; excluded: boolean }[] {
    return this.list.map(url => ({ url, downUntil: this.health.get(url)?.downUntil ?? 0, failures: this.health.get(url)?.failures ?? 0, lastError: this.health.get(url)?.lastError, excluded: this.excluded.has(url) }))
  }
}
