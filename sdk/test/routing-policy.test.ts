/**
 * Issue #9 items 9–11: routing by the record's policy summary, `require`/`prefer`, failover on a provider's policy
 * refusal, manifests checked against records (a liar's revision is refused), trust options (allow-list, endorsements).
 * Real hosts on 127.0.0.1 (onnx backend, demo-gpt2) and real libp2p nodes on loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, generateKeyPair, keyId, toHex } from '@weft/core'
import { closedModelPolicy } from '@weft/host'
import {
  createDirectoryNode, createEndorsement, describeProvider, signProviderRecord, verifyProviderRecord,
  type DirectoryNode, type VerifiedRecord,
} from '@weft/federation'
import { Weft } from '../src/index.js'
import type { RouteEvent, RoutingExecutor } from '../src/routing/index.js'
import { startProvider, testSeed, type TestProvider } from './fixtures/fabric.js'

const researcher = generateKeyPair()
const key = toHex(researcher.secretKey)
const endorser = generateKeyPair()
let hub: DirectoryNode
let open: TestProvider
let closed: TestProvider
let liar: TestProvider
let liarNode: DirectoryNode
let revision: string

beforeAll(async () => {
  hub = await createDirectoryNode()
  open = await startProvider({ seed: testSeed(20), bootstrap: hub.multiaddrs })
  const closedSeed = testSeed(21)
  closed = await startProvider({ seed: closedSeed, bootstrap: hub.multiaddrs, policies: [closedModelPolicy()], selfRegistration: false })
  closed.host.context.store.addKey({ kid: keyId(researcher.publicKey), publicKey: researcher.publicKey, role: 'researcher', now: Date.now() })
  // the closed provider re-announces carrying an endorsement of the endorser (a model owner, say)
  await closed.announced.stop({ withdraw: false })
  const { announceProvider } = await import('@weft/federation')
  closed.announced = await announceProvider({
    seed: closedSeed, endpoint: closed.url, bootstrap: hub.multiaddrs,
    endorsements: [createEndorsement({ provider: closed.provider, models: [{ name: 'demo-gpt2' }], secretKey: endorser.secretKey, days: 30 })],
  })
  revision = open.host.context.registry.get('demo-gpt2').manifest.revision
  // a liar: a real provider (its own key, serving the real demo-gpt2) whose record announces a revision it does not serve
  liar = await startProvider({ seed: testSeed(22), bootstrap: [] })
  await liar.announced.stop({ withdraw: false })
  liarNode = await createDirectoryNode({ seed: testSeed(22), bootstrap: hub.multiaddrs })
  const described = await describeProvider(liar.url)
  await liarNode.announce({ ...described, models: described.models.map(m => ({ ...m, revision: `sha256:${'0'.repeat(64)}` })) })
  await hub.find('demo-gpt2', { timeoutMs: 5000, min: 3 })
}, 60_000)

afterAll(async () => {
  await liarNode?.stop()
  await Promise.allSettled([open, closed, liar].map(p => p?.stop()))
  await hub?.stop()
})

const logitLens = (m: any) => { m.lm_head.call(m.transformer.h[1].output).save('lens') } // module_call
const plain = (m: any) => { m.transformer.h[1].output.save('h') }

async function discover (options: Partial<Parameters<typeof Weft.discover>[0]> = {}): Promise<{ weft: Weft; events: RouteEvent[]; routing: RoutingExecutor }> {
  const events: RouteEvent[] = []
  const client = await createDirectoryNode({ bootstrap: hub.multiaddrs })
  await client.find('demo-gpt2', { timeoutMs: 5000, min: 3 })
  const weft = await Weft.discover({ directory: client, key, onRoute: e => events.push(e), ...options })
  ;(weft.executor as RoutingExecutor).own(() => client.stop())
  return { weft, events, routing: weft.executor as RoutingExecutor }
}

describe('routing by policy', () => {
  test("the closed provider's record says what its policy refuses", async () => {
    const entry = (await hub.find('demo-gpt2')).find(e => e.record.provider === closed.provider)!
    expect(entry.record.policy).toMatchObject({ name: 'closed-model', closed: true, forbiddenOps: ['module_call', 'param'] })
    const openEntry = (await hub.find('demo-gpt2')).find(e => e.record.provider === open.provider)!
    expect(openEntry.record.policy).toMatchObject({ name: 'open', closed: false, forbiddenOps: [] })
  })

  test('a module_call trace preferring the closed provider goes to the open one; a plain one stays on the closed one', async () => {
    const { weft } = await discover({ trust: { providers: [open.provider, closed.provider] } })
    try {
      const model = await weft.model<any>('demo-gpt2', { prefer: { provider: closed.provider } })
      const lens = await model.run(model.record('Hello world', logitLens).program)
      expect(lens.provider).toBe(open.provider)
      expect(lens.saves.lens!.shape).toEqual([1, 3, 4096])
      const h = await model.run(model.record('Hello world', plain).program)
      expect(h.provider).toBe(closed.provider)
    } finally { await weft.close() }
  }, 30_000)

  test('require: closed refuses a module_call trace client-side (POLICY_DENIED naming the op); require: a provider id', async () => {
    const { weft } = await discover({ trust: { providers: [open.provider, closed.provider] } })
    try {
      const closedOnly = await weft.model<any>('demo-gpt2', { require: { policy: 'closed' } })
      const error = await closedOnly.run(closedOnly.record('Hello world', logitLens).program).catch((e: unknown) => e)
      expect(WeftError.is(error, 'POLICY_DENIED')).toBe(true)
      expect((error as Error).message).toContain('forbids module_call')
      expect((await closedOnly.run(closedOnly.record('Hello', plain).program)).provider).toBe(closed.provider)
      const openOnly = await weft.model<any>('demo-gpt2', { require: { provider: open.provider } })
      expect((await openOnly.run(openOnly.record('Hello', plain).program)).provider).toBe(open.provider)
      const busy = await weft.model<any>('demo-gpt2', { require: { maxQueue: 0, policy: 'open' } })
      expect((await busy.run(busy.record('Hello', plain).program)).provider).toBe(open.provider)
    } finally { await weft.close() }
  }, 30_000)

  test('a provider whose record does not publish what it forbids answers 403: the next provider runs it', async () => {
    // the closed provider's record as an older provider would sign it: no forbiddenOps in the summary
    const real = (await hub.find('demo-gpt2')).find(e => e.record.provider === closed.provider)!
    const silent: VerifiedRecord = verifyProviderRecord(signProviderRecord({ ...real.record, policy: { name: 'strict' }, seq: real.record.seq + 1 }, testSeed(21)))
    const openEntry = (await hub.find('demo-gpt2')).find(e => e.record.provider === open.provider)!
    const events: RouteEvent[] = []
    const weft = await Weft.discover({ directory: { find: async () => [silent, openEntry] }, key, onRoute: e => events.push(e) })
    try {
      const model = await weft.model<any>('demo-gpt2', { prefer: { provider: closed.provider } })
      const out = await model.run(model.record('Hello world', logitLens).program)
      expect(out.provider).toBe(open.provider)
      const refused = events.find(e => e.type === 'refused')!
      expect(refused.provider).toBe(closed.provider)
      expect(WeftError.is(refused.error, 'POLICY_DENIED')).toBe(true)
      expect((weft.executor as RoutingExecutor).selector.isBanned(closed.provider)).toBe(false) // refused, not broken
    } finally { await weft.close() }
  }, 30_000)
})

describe('trust', () => {
  test('a liar announcing a revision it does not serve is refused at connect and the honest provider serves', async () => {
    const { weft, events, routing } = await discover({ prefer: { provider: liar.provider } })
    try {
      const model = await weft.model<any>('demo-gpt2', { prefer: { provider: liar.provider } })
      const out = await model.run(model.record('Hello', plain).program)
      expect(out.provider).not.toBe(liar.provider)
      expect([open.provider, closed.provider]).toContain(out.provider)
      const failed = events.find(e => e.type === 'connect-failed')!
      expect(failed.provider).toBe(liar.provider)
      expect(WeftError.is(failed.error, 'SIGNATURE_INVALID')).toBe(true)
      expect((failed.error as Error).message).toContain(`announces demo-gpt2 at revision sha256:${'0'.repeat(64)}`)
      expect(routing.selector.isBanned(liar.provider)).toBe(true)
      expect(routing.revision('demo-gpt2')).toBe(revision) // pinned from a verified manifest, not the liar's record
      expect(model.manifest.revision).toBe(revision)
    } finally { await weft.close() }
  }, 30_000)

  test('trust.providers: only allow-listed providers are used', async () => {
    const { weft, events } = await discover({ trust: { providers: [closed.provider] } })
    try {
      const model = await weft.model<any>('demo-gpt2', { prefer: { provider: open.provider } })
      expect((await model.run(model.record('Hello', plain).program)).provider).toBe(closed.provider)
      expect(events.map(e => e.provider)).not.toContain(open.provider)
      expect(events.map(e => e.provider)).not.toContain(liar.provider)
    } finally { await weft.close() }
  }, 30_000)

  test('trust.endorsers: only providers a trusted key vouches for (in their record or held by the client)', async () => {
    const { weft, events } = await discover({ trust: { endorsers: [toHex(endorser.publicKey)] } })
    try {
      const model = await weft.model<any>('demo-gpt2')
      expect((await model.run(model.record('Hello', plain).program)).provider).toBe(closed.provider)
      expect(events.map(e => e.provider)).toEqual([closed.provider])
    } finally { await weft.close() }
    // an endorsement the client holds, for the open provider at the served revision
    const held = createEndorsement({ provider: open.provider, models: [{ name: 'demo-gpt2', revision }], secretKey: endorser.secretKey, days: 1 })
    const second = await discover({ trust: { endorsers: [endorser.publicKey], endorsements: [held] } })
    try {
      const model = await second.weft.model<any>('demo-gpt2', { require: { policy: 'open' } })
      expect((await model.run(model.record('Hello', plain).program)).provider).toBe(open.provider)
    } finally { await second.weft.close() }
    // endorsements by a key the client does not trust count for nothing
    const stranger = generateKeyPair()
    const third = await discover({ trust: { endorsers: [stranger.publicKey] }, findTimeoutMs: 200 })
    try {
      const error = await third.weft.model('demo-gpt2').catch((e: unknown) => e)
      expect(WeftError.is(error, 'PROVIDER_NOT_FOUND')).toBe(true)
      expect((error as Error).message).toContain('no trusted endorser vouches for it')
    } finally { await third.weft.close() }
  }, 30_000)
})
