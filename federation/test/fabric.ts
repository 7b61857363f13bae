/** Test helpers: loopback fabrics of real directory nodes, record inputs, a controllable clock, change waiters. */
import { createDirectoryNode, type DirectoryNode, type DirectoryNodeOptions } from '../src/node.js'
import type { DirectoryChange } from '../src/directory.js'
import type { RecordInput } from '../src/provider-record.js'

export const T0 = Date.UTC(2026, 0, 1) // a fixed start for controllable clocks

/** A deterministic 32-byte seed per test identity. */
export function seed (n: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (n * 31 + i) & 0xff)
}

export function modelInput (port: number, options: { models?: string[]; queueDepth?: number } = {}): RecordInput {
  return {
    endpoint: `http://127.0.0.1:${port}`,
    models: (options.models ?? ['demo-gpt2']).map(name => ({ name, revision: `sha256:${'ab'.repeat(32)}`, manifestDigest: `sha256:${'cd'.repeat(32)}`, family: 'gpt2' })),
    policy: { name: 'open' },
    capacity: { queueDepth: options.queueDepth ?? 0, maxBatch: 8 },
  }
}

export interface FakeClock { now: () => number; advance: (ms: number) => void }

export function fakeClock (start = T0): FakeClock {
  let now = start
  return { now: () => now, advance: ms => { now += ms } }
}

/** Starts nodes one by one; each bootstraps from `bootstrap` (e.g. a hub's multiaddrs). */
export async function startNodes (count: number, options: DirectoryNodeOptions & { firstSeed?: number } = {}): Promise<DirectoryNode[]> {
  const nodes: DirectoryNode[] = []
  for (let i = 0; i < count; i++) nodes.push(await createDirectoryNode({ ...options, seed: options.firstSeed === undefined ? undefined : seed(options.firstSeed + i) }))
  return nodes
}

export async function stopAll (nodes: DirectoryNode[]): Promise<void> {
  await Promise.allSettled(nodes.map(node => node.stop()))
}

/** Resolves with the first change matching `predicate` (rejects after timeoutMs). */
export function waitForChange (node: DirectoryNode, predicate: (change: DirectoryChange) => boolean, timeoutMs = 5000): Promise<DirectoryChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { unsubscribe(); reject(new Error(`no matching directory change within ${timeoutMs} ms`)) }, timeoutMs)
    const unsubscribe = node.onChange(change => {
      if (!predicate(change)) return
      clearTimeout(timer)
      unsubscribe()
      resolve(change)
    })
  })
}

/** Resolves once `node` sees `count` peers subscribed to the directory topic (the gossip mesh can carry records). */
export async function topicPeers (node: DirectoryNode, count: number, timeoutMs = 5000): Promise<void> {
  const pubsub = node.libp2p.services.pubsub
  const ready = (): boolean => pubsub.getSubscribers('weft/providers/1').length >= count
  if (ready()) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { pubsub.removeEventListener('subscription-change', check); reject(new Error(`fewer than ${count} topic peers after ${timeoutMs} ms`)) }, timeoutMs)
    const check = (): void => { if (ready()) { clearTimeout(timer); pubsub.removeEventListener('subscription-change', check); resolve() } }
    pubsub.addEventListener('subscription-change', check)
  })
}
