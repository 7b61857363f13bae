/**
 * createDirectoryNode: a libp2p node that keeps the provider directory. Providers announce signed records on the
 * gossip topic and re-announce before expiry; every node exchanges record sets with each peer that joins the topic
 * (late joiners), filters expired records on read and sees clean withdrawals.
 */
import './polyfill.js'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { WeftError, generateKeyPair } from '@weft/core'
import { identityFromSeed } from './identity.js'
import { RecordSet, type ChangeListener, type DirectoryChange } from './directory.js'
import { buildProviderRecord, signProviderRecord, verifyProviderRecord, type RecordInput, type VerifiedRecord } from './provider-record.js'
import { createDirectoryLibp2p, type DirectoryLibp2p } from './libp2p-node.js'
import { exchangeRecords, handleDirectoryProtocol } from './sync-protocol.js'

export const DIRECTORY_TOPIC = 'weft/providers/1'
export const DEFAULT_RECORD_LIFETIME_MS = 120_000

export interface DirectoryNodeOptions {
  /** 32-byte Ed25519 seed: the provider's signing key and libp2p identity (default: a fresh key) */
  seed?: Uint8Array
  /** default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** multiaddrs (with /p2p/<peer id>) dialled at start and whenever the node has no connection */
  bootstrap?: string[]
  /** milliseconds since the epoch; records and expiry follow it (default Date.now) */
  clock?: () => number
  /** lifetime of our announcements (default 120 s) */
  recordLifetimeMs?: number
  /** re-announce period (default half the lifetime) */
  refreshMs?: number
  /** clock skew tolerated on others' records (default 60 s) */
  skewSeconds?: number
  /** gossipsub heartbeat (default 700 ms) */
  heartbeatMs?: number
}

/** Supplies the current record input (e.g. read from the provider's own HTTP API) */
export type RecordSource = () => RecordInput | Promise<RecordInput>

export interface FindOptions {
  /** wait up to this long for providers to appear (default 0: answer from what is known) */
  timeoutMs?: number
  /** wait until at least this many providers are known (default 1) */
  min?: number
}

export interface DirectoryNode {
  /** libp2p peer id string */
  readonly peerId: string
  /** Weft provider id (key id) of this node's key */
  readonly provider: string
  /** listen addresses, each with /p2p/<peer id> */
  readonly multiaddrs: string[]
  /**
   * Signs (with this node's key) and publishes a record, then re-announces before it expires. A function source
   * is asked afresh at every refresh (current queue depth); when it fails, that refresh is skipped.
   */
  announce (input: RecordInput | Uint8Array | RecordSource): Promise<VerifiedRecord>
  /** announces 'offline' (signed, newer seq), pushes it to connected peers and stops re-announcing */
  withdraw (): Promise<void>
  /** live providers of `model`, least loaded first */
  find (model: string, options?: FindOptions): Promise<VerifiedRecord[]>
  /** every live record held (withdrawals included) */
  records (): VerifiedRecord[]
  onChange (listener: ChangeListener): () => void
  dial (address: string): Promise<void>
  /** forget records the clock says have expired (also runs periodically) */
  sweep (): DirectoryChange[]
  /** exchange record sets with every connected directory peer now */
  sync (): Promise<void>
  /** re-announce now (what the refresh timer does) */
  refresh (): Promise<void>
  stop (): Promise<void>
  readonly libp2p: DirectoryLibp2p
}

export async function createDirectoryNode (options: DirectoryNodeOptions = {}): Promise<DirectoryNode> {
  const identity = await identityFromSeed(options.seed ?? generateKeyPair().secretKey)
  const clock = options.clock ?? Date.now
  const lifetimeMs = options.recordLifetimeMs ?? DEFAULT_RECORD_LIFETIME_MS
  const refreshMs = options.refreshMs ?? Math.floor(lifetimeMs / 2)
  if (refreshMs >= lifetimeMs) throw new WeftError('RECORD_INVALID', `refreshMs (${refreshMs}) must be shorter than recordLifetimeMs (${lifetimeMs})`)
  const set = new RecordSet({ clock, skewSeconds: options.skewSeconds })
  const libp2p = await createDirectoryLibp2p({ privateKey: identity.privateKey, listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0'], heartbeatMs: options.heartbeatMs })
  const pubsub = libp2p.services.pubsub
  const bootstrap = options.bootstrap ?? []
  let current: RecordInput | null = null
  let source: RecordSource | null = null
  let lastSeq = 0
  let refreshTimer: NodeJS.Timeout | null = null
  let stopped = false

  pubsub.topicValidators.set(DIRECTORY_TOPIC, (_peer, message) => {
    if (message.type !== 'signed') return TopicValidatorResult.Reject
    if (set.holds(message.data)) return TopicValidatorResult.Ignore
    const result = set.offer(message.data, { publisher: message.from.toString() })
    if (result.accepted) return TopicValidatorResult.Accept
    // stale or expired records are old news (a slow relay), not an attack; anything else is
    return result.error.code === 'RECORD_STALE' || result.error.code === 'RECORD_EXPIRED' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject
  })
  pubsub.subscribe(DIRECTORY_TOPIC)
  await handleDirectoryProtocol(libp2p, set)

  const exchange = async (peer: PeerId): Promise<void> => {
    if (stopped) return
    try { await exchangeRecords(libp2p, set, peer) } catch { /* the peer left or is no directory node: gossip still works */ }
  }
  pubsub.addEventListener('subscription-change', event => {
    if (event.detail.subscriptions.some(s => s.topic === DIRECTORY_TOPIC && s.subscribe)) void exchange(event.detail.peerId)
  })

  const dial = async (address: string): Promise<void> => {
    const target = multiaddr(address)
    const connection = await libp2p.dial(target, { signal: AbortSignal.timeout(10_000) })
    await libp2p.peerStore.merge(connection.remotePeer, { multiaddrs: [target], tags: { 'keep-alive': { value: 1 } } })
  }
  const dialBootstrap = async (): Promise<void> => {
    await Promise.allSettled(bootstrap.map(dial))
  }
  await dialBootstrap()
  const sweepTimer = setInterval(() => {
    set.sweep()
    if (bootstrap.length > 0 && libp2p.getConnections().length === 0 && !stopped) void dialBootstrap()
  }, Math.min(refreshMs, 5000))
  sweepTimer.unref()

  const publish = async (bytes: Uint8Array): Promise<void> => {
    try { await pubsub.publish(DIRECTORY_TOPIC, bytes) } catch { /* no peers yet: exchanges on join deliver it */ }
  }

  const sign = (input: RecordInput): VerifiedRecord => {
    // newer than our own record as held (another node of this provider may have published it under the same key)
    lastSeq = Math.max(lastSeq + 1, clock(), (set.get(identity.provider)?.record.seq ?? 0) + 1)
    const record = buildProviderRecord(identity, input, { now: Math.floor(clock() / 1000), lifetimeSeconds: Math.ceil(lifetimeMs / 1000), seq: lastSeq })
    const result = set.offer(signProviderRecord(record, identity.secretKey))
    if (!result.accepted) throw result.error
    return result.change.record
  }

  const schedule = (): void => {
    if (refreshTimer !== null) clearTimeout(refreshTimer)
    refreshTimer = setTimeout(() => { void refresh().catch(() => {}) }, refreshMs)
    refreshTimer.unref()
  }

  const refresh = async (): Promise<void> => {
    if (current === null || stopped) return
    schedule()
    if (source !== null) {
      let next: RecordInput
      try { next = await source() } catch { return /* the provider cannot describe itself: let the record lapse */ }
      if (stopped || current === null) return // withdrawn meanwhile
      current = next
    }
    const verified = sign(current)
    await publish(verified.bytes)
  }

  /**
   * Peers to hand records to directly: the topic's subscribers and every connected peer (a node that just started
   * is connected to its bootstrap peers before gossip knows their subscriptions; one that is no directory node
   * refuses the exchange, which is ignored)
   */
  const directoryPeers = (): PeerId[] => {
    const peers = new Map<string, PeerId>()
    for (const peer of [...pubsub.getSubscribers(DIRECTORY_TOPIC), ...libp2p.getConnections().map(c => c.remotePeer)]) peers.set(peer.toString(), peer)
    return [...peers.values()]
  }

  const node: DirectoryNode = {
    peerId: identity.peer,
    provider: identity.provider,
    get multiaddrs () { return libp2p.getMultiaddrs().map(String) },
    libp2p,

    async announce (input) {
      source = typeof input === 'function' ? input : null
      const resolved = typeof input === 'function' ? await input() : input instanceof Uint8Array ? recordInputOf(input, identity.peer, clock) : input
      current = resolved
      const verified = sign(resolved)
      await publish(verified.bytes)
      schedule()
      return verified
    },

    async withdraw () {
      if (current === null) return
      if (refreshTimer !== null) clearTimeout(refreshTimer)
      const verified = sign({ ...current, status: 'offline' })
      current = null
      source = null
      await publish(verified.bytes)
      await Promise.allSettled(directoryPeers().map(exchange))
    },

    async find (model, findOptions = {}) {
      set.sweep()
      const min = findOptions.min ?? 1
      const timeoutMs = findOptions.timeoutMs ?? 0
      if (set.find(model).length >= min || timeoutMs <= 0) return set.find(model)
      return await new Promise<VerifiedRecord[]>(resolve => {
        const done = (): void => { clearTimeout(timer); unsubscribe(); resolve(set.find(model)) }
        const timer = setTimeout(done, timeoutMs)
        const unsubscribe = set.onChange(() => { if (set.find(model).length >= min) done() })
        void node.sync()
      })
    },

    records: () => set.all(),
    onChange: listener => set.onChange(listener),
    dial,
    sweep: () => set.sweep(),
    async sync () { await Promise.allSettled(directoryPeers().map(exchange)) },
    refresh,

    async stop () {
      stopped = true
      if (refreshTimer !== null) clearTimeout(refreshTimer)
      clearInterval(sweepTimer)
      await libp2p.stop()
    },
  }
  return node
}

/** A pre-signed record handed to announce: must be ours; its fields become the input we keep re-signing. */
function recordInputOf (bytes: Uint8Array, peer: string, clock: () => number): RecordInput {
  const { record } = verifyProviderRecord(bytes, { now: Math.floor(clock() / 1000) })
  if (record.peer !== peer) throw new WeftError('RECORD_INVALID', `this node (${peer}) can announce only its own record, not one of ${record.peer}`, { peer: record.peer })
  return { endpoint: record.endpoint, ...(record.endpoints === undefined ? {} : { endpoints: record.endpoints }), models: record.models, policy: record.policy, capacity: record.capacity, status: record.status, endorsements: record.endorsements }
}
