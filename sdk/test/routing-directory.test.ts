/**
 * Issue #9 item 8: a client started after a provider died (its record still listed) must find and use a healthy
 * provider. Three real providers (in-process hosts on 127.0.0.1, real libp2p nodes on loopback), one killed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { generateKeyPair, toHex } from '@weft/core'
import { createDirectoryNode, type DirectoryNode } from '@weft/federation'
import { Weft } from '../src/index.js'
import type { RouteEvent } from '../src/routing/index.js'
import { startProvider, testSeed, type TestProvider } from './fixtures/fabric.js'

let hub: DirectoryNode
const providers: TestProvider[] = []
const owned: DirectoryNode[] = []

beforeAll(async () => {
  hub = await createDirectoryNode()
  // one after another, so the hub holds (and hands out) the first provider's record first
  for (let i = 0; i < 3; i++) {
    providers.push(await startProvider({ seed: testSeed(10 + i), bootstrap: hub.multiaddrs }))
    await hub.find('demo-gpt2', { timeoutMs: 5000, min: i + 1 })
  }
}, 60_000)

afterAll(async () => {
  await Promise.allSettled(providers.map(p => p.stop()))
  await Promise.allSettled(owned.map(node => node.stop()))
  await hub?.stop()
})

describe('a new client after a provider died', () => {
  test('the directory hands the whole record set to find(): the dead provider is skipped, a healthy one serves', async () => {
    const [dead, ...alive] = providers
    expect(hub.records().map(r => r.record.provider)).toEqual(providers.map(p => p.provider))
    await dead!.kill()
    // the dead provider's record is still held and listed
    expect((await hub.find('demo-gpt2')).map(r => r.record.provider)).toContain(dead!.provider)

    const client = await createDirectoryNode({ bootstrap: hub.multiaddrs })
    owned.push(client)
    const listed = await client.find('demo-gpt2', { timeoutMs: 5000 })
    expect(listed.map(r => r.record.provider).sort()).toEqual(providers.map(p => p.provider).sort())

    const events: RouteEvent[] = []
    const weft = await Weft.discover({ bootstrap: hub.multiaddrs, key: toHex(generateKeyPair().secretKey), onRoute: e => events.push(e) })
    try {
      const model = await weft.model<any>('demo-gpt2')
      const out = await model.run(model.record('Hello world', (m: any) => { m.transformer.h[0].output.save('h') }).program)
      expect(alive.map(p => p.provider)).toContain(out.provider)
      expect(out.saves.h!.shape).toEqual([1, 3, 256])
      expect(events.filter(e => e.type === 'select').map(e => e.provider)).not.toContain(dead!.provider)
    } finally {
      await weft.close()
    }
  }, 30_000)
})
