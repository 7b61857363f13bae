/**
 * The directory publisher of a provider's nodes (docs/decisions/2026-12-05-multi-node.md), driven step by step: two
 * nodes on one store and one real libp2p hub on loopback, heartbeats far apart so nothing happens unless a step asks
 * for it. The node holding the lease publishes one record listing both; leaving, it re-publishes without itself; the
 * other node, leaving last before it ever took the lease over, still withdraws the record (a provider stopped node
 * after node must not leave a record that lists nodes that are gone).
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createDirectoryNode, type DirectoryNode, type VerifiedRecord } from '@weft/federation'
import { startDirectoryPublisher } from '../src/cli/directory-publisher.js'
import { startTestHost, type TestHost } from './helpers.js'

let t: TestHost
let url: string
let hub: DirectoryNode
beforeAll(async () => {
  t = await startTestHost()
  url = (await t.host.listen({ port: 0 })).url
  hub = await createDirectoryNode({})
})
afterAll(async () => {
  await hub?.stop()
  await t?.host.close()
})

async function recordWhere (accept: (entry: VerifiedRecord) => boolean, timeoutMs = 15_000): Promise<VerifiedRecord> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = (await hub.find('demo-gpt2')).find(accept)
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`no such record within ${timeoutMs} ms; the hub holds ${JSON.stringify(hub.records().map(r => r.record))}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

test('the last node to leave withdraws the record even though it never published it', async () => {
  const store = t.host.context.store
  const seed = new Uint8Array(store.getSetting('identity.secretKey')!)
  const second = 'http://127.0.0.1:9' // the second node's public URL (its own routes: the same host here)
  const logs: string[] = []
  const start = async (node: string, publicUrl: string) => await startDirectoryPublisher({
    store, seed, node, publicUrl, localUrl: url, bootstrap: hub.multiaddrs, listen: ['/ip4/127.0.0.1/tcp/0'],
    heartbeatMs: 600_000, log: line => logs.push(`${node}: ${line}`),
  })
  const a = await start('node-a', url)
  const b = await start('node-b', second)
  expect([a.publishing, b.publishing]).toEqual([true, false]) // one lease, one publisher
  await a.tick() // a's next heartbeat sees b
  const both = await recordWhere(entry => entry.record.endpoints?.length === 2)
  expect(both.record.endpoints).toEqual([url, second])

  await a.stop() // leaving cleanly: the record goes on without it
  const without = await recordWhere(entry => entry.record.seq > both.record.seq && entry.record.endpoint === second)
  expect(without.record.endpoints).toBeUndefined()
  expect(b.publishing).toBe(false) // b has not taken the lease over (its heartbeat is minutes away)

  const withdrawn = new Promise<void>(resolve => { const off = hub.onChange(change => { if (change.type === 'withdrawn') { off(); resolve() } }) })
  await b.stop()
  await withdrawn
  expect(await hub.find('demo-gpt2')).toEqual([])
  expect(logs).toContain('node-b: directory: the last node withdrew the provider\'s record')
}, 60_000)
