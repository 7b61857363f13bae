// Loopback fabrics of real libp2p directory nodes (TCP on 127.0.0.1): discovery over gossip and the exchange
// protocol, relays, impostors, expiry on a controllable clock, withdrawal, late joiners, refresh.
import { afterEach, describe, expect, test } from 'vitest'
import { keyId, keyPairFromSeed, signEnvelope } from '@weft/core'
import { createDirectoryNode, DIRECTORY_TOPIC, type DirectoryNode } from '../src/node.js'
import { buildProviderRecord, PROVIDER_RECORD_CONTENT_TYPE } from '../src/provider-record.js'
import { identityFromSeed } from '../src/identity.js'
import { fakeClock, modelInput, seed, startNodes, stopAll, topicPeers, waitForChange } from './fabric.js'

let running: DirectoryNode[] = []
const track = <T extends DirectoryNode | DirectoryNode[]>(nodes: T): T => { running.push(...(Array.isArray(nodes) ? nodes : [nodes])); return nodes }
afterEach(async () => { await stopAll(running); running = [] })

describe('directory over loopback', () => {
  test('three providers announce; a client joining later finds all of them within a bounded time', async () => {
    const hub = track(await createDirectoryNode({ seed: seed(100) }))
    const providers = track(await startNodes(3, { firstSeed: 101, bootstrap: hub.multiaddrs }))
    await Promise.all(providers.map((p, i) => p.announce(modelInput(7000 + i, { queueDepth: i }))))
    const started = performance.now()
    const client = track(await createDirectoryNode({ bootstrap: hub.multiaddrs }))
    const found = await client.find('demo-gpt2', { timeoutMs: 5000, min: 3 })
    const elapsed = performance.now() - started
    expect(found.map(r => r.record.provider).sort()).toEqual(providers.map(p => p.provider).sort())
    expect(found[0].record.endpoint).toBe('http://127.0.0.1:7000') // least loaded first
    expect(found.every(r => r.record.peer === providers.find(p => p.provider === r.record.provider)?.peerId)).toBe(true)
    expect(elapsed).toBeLessThan(3000)
    expect(await client.find('tiny-llama')).toEqual([])
  })

  test('an announcement made after everyone is connected arrives over gossip, relayed by the hub', async () => {
    const hub = track(await createDirectoryNode({ seed: seed(110) }))
    const provider = track(await createDirectoryNode({ seed: seed(111), bootstrap: hub.multiaddrs }))
    const client = track(await createDirectoryNode({ bootstrap: hub.multiaddrs }))
    await Promise.all([topicPeers(hub, 2), topicPeers(client, 1), topicPeers(provider, 1)])
    expect(client.libp2p.getConnections(provider.libp2p.peerId)).toEqual([]) // only via the hub
    const seen = waitForChange(client, change => change.provider === provider.provider && change.type === 'added', 5000)
    const started = performance.now()
    await provider.announce(modelInput(7100))
    const change = await seen
    expect(change.record.record.endpoint).toBe('http://127.0.0.1:7100')
    expect(performance.now() - started).toBeLessThan(4000)
  })

  test('impostor records are rejected: foreign peer id, foreign provider id, relayed as own', async () => {
    const hub = track(await createDirectoryNode({ seed: seed(120) }))
    const victim = track(await createDirectoryNode({ seed: seed(121), bootstrap: hub.multiaddrs }))
    const impostor = track(await createDirectoryNode({ seed: seed(122), bootstrap: hub.multiaddrs }))
    const client = track(await createDirectoryNode({ bootstrap: hub.multiaddrs }))
    await victim.announce(modelInput(7200))
    await client.find('demo-gpt2', { timeoutMs: 5000 })
    await Promise.all([topicPeers(hub, 3), topicPeers(impostor, 1), topicPeers(client, 1)])

    const victimId = await identityFromSeed(seed(121))
    const impostorKey = keyPairFromSeed(seed(122))
    const base = buildProviderRecord(victimId, modelInput(6666), { now: Math.floor(Date.now() / 1000), lifetimeSeconds: 120, seq: Date.now() + 10_000 })
    const forge = (over: object): Uint8Array => signEnvelope({ payload: { ...base, ...over }, secretKey: impostorKey.secretKey, kid: keyId(impostorKey.publicKey), contentType: PROVIDER_RECORD_CONTENT_TYPE })
    const victimBytes = victim.records().find(r => r.record.provider === victim.provider)!.bytes
    const pubsub = impostor.libp2p.services.pubsub
    await pubsub.publish(DIRECTORY_TOPIC, forge({})) // victim's peer id and provider id, impostor's signature
    await pubsub.publish(DIRECTORY_TOPIC, forge({ peer: impostor.peerId })) // own peer, victim's provider id
    await pubsub.publish(DIRECTORY_TOPIC, victimBytes) // a genuine record, published by the wrong peer (ignored: held)
    // then an honest record of its own: once it arrives, the forgeries before it were processed
    const honest = waitForChange(client, change => change.provider === impostor.provider, 5000)
    await impostor.announce(modelInput(7201))
    await honest
    const endpoints = (await client.find('demo-gpt2')).map(r => [r.record.provider, r.record.endpoint])
    expect(endpoints).toContainEqual([victim.provider, 'http://127.0.0.1:7200'])
    expect(endpoints).toContainEqual([impostor.provider, 'http://127.0.0.1:7201'])
    expect(endpoints.some(([, endpoint]) => endpoint === 'http://127.0.0.1:6666')).toBe(false)
    expect(hub.records().some(r => r.record.endpoint === 'http://127.0.0.1:6666')).toBe(false)
  })

  test('a provider that departs without a word leaves the directory when its record expires (controllable clock)', async () => {
    const clock = fakeClock()
    const [hub, provider, client] = track(await startNodes(3, { firstSeed: 130, clock: clock.now, recordLifetimeMs: 120_000 }))
    await provider.dial(hub.multiaddrs[0])
    await client.dial(hub.multiaddrs[0])
    await provider.announce(modelInput(7300))
    expect(await client.find('demo-gpt2', { timeoutMs: 5000 })).toHaveLength(1)
    await provider.stop() // a crash: no withdrawal
    clock.advance(120_000 + 60_000) // lifetime + skew: still listed
    expect(await client.find('demo-gpt2')).toHaveLength(1)
    const expired = waitForChange(client, change => change.type === 'expired', 1000)
    clock.advance(1000)
    expect(await client.find('demo-gpt2')).toEqual([])
    expect((await expired).provider).toBe(provider.provider)
    expect(await hub.find('demo-gpt2')).toEqual([])
  })

  test('a clean withdrawal is seen at once, and the old record cannot be replayed', async () => {
    const [hub, provider, other, client] = track(await startNodes(4, { firstSeed: 140 }))
    for (const node of [provider, other, client]) await node.dial(hub.multiaddrs[0])
    await provider.announce(modelInput(7400))
    await other.announce(modelInput(7401))
    expect(await client.find('demo-gpt2', { timeoutMs: 5000, min: 2 })).toHaveLength(2)
    const oldBytes = client.records().find(r => r.record.provider === provider.provider)!.bytes
    const withdrawn = waitForChange(client, change => change.type === 'withdrawn' && change.provider === provider.provider, 5000)
    await provider.withdraw()
    await provider.stop()
    await withdrawn
    expect((await client.find('demo-gpt2')).map(r => r.record.provider)).toEqual([other.provider])
    await other.libp2p.services.pubsub.publish(DIRECTORY_TOPIC, oldBytes).catch(() => {})
    await client.sync()
    expect((await client.find('demo-gpt2')).map(r => r.record.provider)).toEqual([other.provider])
  })

  test('a late joiner learns records announced long before it came, from any directory node', async () => {
    const clock = fakeClock()
    const [hub, a, b] = track(await startNodes(3, { firstSeed: 150, clock: clock.now }))
    await a.dial(hub.multiaddrs[0])
    await b.dial(hub.multiaddrs[0])
    await a.announce(modelInput(7500, { models: ['demo-gpt2', 'tiny-llama'] }))
    await b.announce(modelInput(7501, { models: ['tiny-llama'] }))
    await hub.find('tiny-llama', { timeoutMs: 5000, min: 2 })
    clock.advance(50_000)
    const late = track(await createDirectoryNode({ clock: clock.now, bootstrap: hub.multiaddrs }))
    expect((await late.find('tiny-llama', { timeoutMs: 5000, min: 2 })).map(r => r.record.endpoint).sort()).toEqual(['http://127.0.0.1:7500', 'http://127.0.0.1:7501'])
    expect(await late.find('demo-gpt2')).toHaveLength(1)
  })

  test('providers re-announce before expiry with a higher seq', async () => {
    const hub = track(await createDirectoryNode({ seed: seed(160) }))
    const provider = track(await createDirectoryNode({ seed: seed(161), bootstrap: hub.multiaddrs, recordLifetimeMs: 4000, refreshMs: 300 }))
    const first = await provider.announce(modelInput(7600))
    await hub.find('demo-gpt2', { timeoutMs: 5000 })
    const updated = await waitForChange(hub, change => change.type === 'updated' && change.provider === provider.provider, 5000)
    expect(updated.record.record.seq).toBeGreaterThan(first.record.seq)
    expect(updated.record.record.expiresAt).toBeGreaterThanOrEqual(first.record.expiresAt)
  })

  test('a node announces only its own record', async () => {
    const node = track(await createDirectoryNode({ seed: seed(170) }))
    const other = await identityFromSeed(seed(171))
    const foreign = buildProviderRecord(other, modelInput(7700), { now: Math.floor(Date.now() / 1000), lifetimeSeconds: 120, seq: 1 })
    const { signProviderRecord } = await import('../src/provider-record.js')
    await expect(node.announce(signProviderRecord(foreign, other.secretKey))).rejects.toMatchObject({ code: 'RECORD_INVALID' })
  })
})
