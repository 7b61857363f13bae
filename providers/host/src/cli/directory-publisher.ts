/**
 * The provider's directory record when several nodes serve it (docs/decisions/2026-12-05-multi-node.md, "Identity
 * and directory"): every node started with `--directory` registers its public URL in the shared store and renews it
 * every heartbeat; the node holding the `directory-publisher` lease runs the libp2p directory node (the provider's
 * peer id: one at a time) and publishes one record whose `endpoints` are the nodes seen within three heartbeats,
 * itself first. It re-publishes when that set changes. When the publisher dies its lease expires (three heartbeats)
 * and another node takes over publishing; a publisher that leaves cleanly re-publishes without itself first, or
 * withdraws the record when it was the last node. With one node (SQLite) it is the same loop with one row.
 */
import { WeftError } from '@weft/core'
import type { Store } from '../store/store.js'

const PUBLISHER_LEASE = 'directory-publisher'
const DEFAULT_NODE_HEARTBEAT_MS = 2000
/** a node unseen for this many heartbeats is no longer listed, and a publisher that did not renew its lease for as long loses it */
const MISSED_HEARTBEATS = 3
/** the most nodes one record lists (spec/provider-record.md: endpoints) */
const MAX_ENDPOINTS = 16

export interface DirectoryPublisherOptions {
  store: Store
  /** the provider's identity seed: its signing key and libp2p peer id */
  seed: Uint8Array
  /** this node's id in the store */
  node: string
  /** this node's base URL as clients reach it (`--public-url`, default its listen URL) */
  publicUrl: string
  /** where this node's own routes answer (its listen URL), read to describe the provider */
  localUrl: string
  bootstrap: string[]
  listen: string[]
  endorsements?: Uint8Array[]
  heartbeatMs?: number
  clock?: () => number
  log?: (line: string) => void
}

export interface DirectoryPublisher {
  /** true while this node publishes the record */
  readonly publishing: boolean
  /** the base URLs the record lists now (this node's view) */
  endpoints (): string[]
  /** one heartbeat now (what the timer does) */
  tick (): Promise<void>
  /** leaves: re-publishes without this node (others live) or withdraws the record (none), then stops */
  stop (): Promise<void>
}

interface Announced { node: { refresh (): Promise<void>; sync (): Promise<void>; peerId: string }; stop (options?: { withdraw?: boolean }): Promise<void> }

export async function startDirectoryPublisher (options: DirectoryPublisherOptions): Promise<DirectoryPublisher> {
  const { store, node } = options
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_NODE_HEARTBEAT_MS
  const clock = options.clock ?? Date.now
  const log = options.log ?? (line => console.log(line))
  const window = MISSED_HEARTBEATS * heartbeatMs
  let announced: Announced | null = null
  /** the lease as this node last renewed it: past it, this node must not publish (another may) */
  let heldUntil = 0
  let published = ''
  let leaving = false
  let timer: NodeJS.Timeout | null = null
  let lastError = ''

  /** live nodes' URLs, this node first (unless it is leaving), then first started first */
  const endpoints = (): string[] => {
    const live = store.liveNodes(clock() - window).filter(n => n.id !== node).map(n => n.url)
    return [...new Set([...(leaving ? [] : [options.publicUrl]), ...live])].slice(0, MAX_ENDPOINTS)
  }

  const startPublishing = async (): Promise<void> => {
    log(leaving ? 'directory: this node leaves last; starting the directory node to withdraw the record' : 'directory: this node holds the publisher lease; starting the directory node')
    const { announceProvider } = await import('@weft/federation')
    announced = await announceProvider({
      seed: options.seed, endpoint: options.publicUrl, describeFrom: options.localUrl, bootstrap: options.bootstrap, listen: options.listen,
      endorsements: options.endorsements ?? [], endpoints,
    })
    published = endpoints().join(' ')
    log(`directory: publishing the provider's record as ${announced.node.peerId} via ${options.bootstrap.join(', ')}; endpoints: ${published}`)
  }

  const stopPublishing = async (withdraw: boolean): Promise<void> => {
    const current = announced
    announced = null
    published = ''
    await current?.stop({ withdraw })
  }

  /**
   * The heartbeat: synchronous store calls only, on a timer of its own, so a slow publishing step (starting the
   * libp2p node, describing the provider) never delays renewing the node's row or the lease.
   */
  const beat = (): void => {
    const now = clock()
    try {
      store.heartbeatNode(node, options.publicUrl, now)
      if (store.acquireLease(PUBLISHER_LEASE, node, now, now + window)) heldUntil = now + window
      else heldUntil = 0 // another node holds it
      if (announced !== null) store.forgetNodes(now - Math.max(60_000, 10 * window)) // rows of nodes long gone
      lastError = ''
    } catch (error) {
      // the store is unreachable: keep publishing only while the lease taken before still holds
      const message = (error as Error).message
      if (message !== lastError) log(`directory: heartbeat failed: ${message}`)
      lastError = message
    }
  }

  /** Brings publishing in line with the lease and the live nodes (one step at a time). */
  const reconcileOnce = async (): Promise<void> => {
    if (clock() >= heldUntil) {
      if (announced !== null) {
        log('directory: this node no longer holds the publisher lease; another node publishes the record')
        await stopPublishing(false)
      }
      return
    }
    if (announced === null) {
      await startPublishing()
      return
    }
    const next = endpoints().join(' ')
    if (next !== published) {
      published = next
      await announced.node.refresh()
      // also hand the record over by the directory exchange (a fresh stream): after a publisher change, gossip from
      // the provider's peer id may not reach a hub that still tracks the previous publisher's connection
      await announced.node.sync()
      log(`directory: nodes changed; re-published endpoints: ${next}`)
    }
  }

  let reconciling: Promise<void> | null = null
  let again = false
  const reconcile = async (): Promise<void> => {
    if (reconciling !== null) { again = true; return await reconciling }
    reconciling = (async () => {
      do {
        again = false
        try { await reconcileOnce() } catch (error) { log(`directory: ${(error as Error).message}`) }
      } while (again && !leaving)
    })().finally(() => { reconciling = null })
    await reconciling
  }

  const tick = async (): Promise<void> => {
    beat()
    await reconcile()
  }

  await tick()
  if (announced === null && heldUntil > clock()) throw new WeftError('PROVIDER_UNAVAILABLE', 'the directory record could not be published (see the log above)')
  if (announced === null) log(`directory: another node publishes the provider's record; this node (${options.publicUrl}) is listed in it`)
  timer = setInterval(() => { if (!leaving) void tick() }, heartbeatMs)
  timer.unref()

  return {
    get publishing () { return announced !== null },
    endpoints,
    tick,
    async stop () {
      leaving = true
      if (timer !== null) clearInterval(timer)
      await reconciling
      try { store.removeNode(node) } catch { /* the store is gone: the row ages out */ }
      if (announced === null) {
        let last: boolean
        try { last = endpoints().length === 0 } catch { return } // the store is gone: nothing known of the others
        if (!last) return // the others go on, and one of them publishes
        // the last node leaves without having published (the publisher left just before, and this node's takeover
        // had not started): the record out there still lists nodes that are gone, so publish once and withdraw it
        try {
          await startPublishing()
          await stopPublishing(true)
          log('directory: the last node withdrew the provider\'s record')
        } catch (error) { log(`directory: withdrawing the record failed (it expires on its own): ${(error as Error).message}`) }
        return
      }
      const others = endpoints()
      if (others.length === 0) {
        await stopPublishing(true) // the last node: the provider goes offline
        return
      }
      // the record goes on without this node until another node takes over publishing
      await announced.node.refresh().catch(() => {})
      await stopPublishing(false)
      try { store.releaseLease(PUBLISHER_LEASE, node) } catch { /* it expires */ }
    },
  }
}
