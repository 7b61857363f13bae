/** SDK routing mode against an in-process provider announced on a loopback directory: routed traces, impostors, errors. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, generateKeyPair, toHex } from '@weft/core'
import { createHost, openPolicy, type Host } from '@weft/host'
import { announceProvider, createDirectoryNode, type AnnouncedProvider, type DirectoryNode } from '@weft/federation'
import { Weft } from '../src/index.js'
import { connectRemote } from '../src/remote/index.js'
import { isRefusal, shouldFailover, type RouteEvent, type RoutingExecutor } from '../src/routing/index.js'
import { DEMO, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'

const providerSeed = Uint8Array.from({ length: 32 }, (_, i) => 0x90 + i)
const researcher = generateKeyPair()
let host: Host
let url: string
let hub: DirectoryNode
let announced: AnnouncedProvider
const owned: DirectoryNode[] = []

beforeAll(async () => {
  host = await createHost({
    dbPath: tempDb('sdk-routing'), backends: { onnx: await onnxBackendInline() }, models: [{ name: 'demo-gpt2', path: DEMO }],
    policies: [openPolicy()], selfRegistration: true, identity: { secretKey: providerSeed }, limits: { batchWindowMs: 0 },
  })
  url = (await host.listen({ port: 0 })).url
  hub = await createDirectoryNode()
  announced = await announceProvider({ seed: providerSeed, endpoint: url, bootstrap: hub.multiaddrs })
})

afterAll(async () => {
  await announced?.stop()
  await Promise.allSettled(owned.map(node => node.stop()))
  await hub?.stop()
  await host?.close()
})

const hello = (m: any) => ({ h: m.transformer.h[0].output.save() })

describe('routing mode', () => {
  test('the record names the host: id, endpoint, models with revision and manifest digest, policy, capacity', async () => {
    const [entry] = await hub.find('demo-gpt2', { timeoutMs: 5000 })
    const model = host.context.registry.get('demo-gpt2')
    expect(entry.record).toMatchObject({ provider: host.providerId, peer: announced.node.peerId, endpoint: url, status: 'online', policy: { name: 'open' } })
    expect(entry.record.models).toEqual([{ name: 'demo-gpt2', revision: model.manifest.revision, manifestDigest: model.manifestDigest, family: model.manifest.family }])
    expect(entry.record.capacity.maxBatch).toBe(host.context.limits.maxBatchJobs)
  })

  test('Weft.discover traces on the provider the directory lists, with the same numbers as a direct connection', async () => {
    const events: RouteEvent[] = []
    const weft = await Weft.discover({ bootstrap: hub.multiaddrs, key: toHex(researcher.secretKey), onRoute: e => events.push(e) })
    const direct = new Weft(await connectRemote({ provider: url, key: toHex(researcher.secretKey) }))
    try {
      const routed = await (await weft.model<any>('demo-gpt2')).trace('Hello world', hello)
      const expected = await (await direct.model<any>('demo-gpt2')).trace('Hello world', hello)
      expect(Array.from(routed.h.data as Float32Array)).toEqual(Array.from(expected.h.data as Float32Array))
      expect(events).toEqual([{ type: 'select', model: 'demo-gpt2', provider: host.providerId, endpoint: url }])
      expect(await weft.listModels()).toEqual([{ name: 'demo-gpt2', revision: host.context.registry.get('demo-gpt2').manifest.revision, family: 'gpt2' }])
    } finally {
      await weft.close()
      await direct.close()
    }
  })

  test('an impostor announcing the real provider\'s URL as its own is never used', async () => {
    const impostor = await createDirectoryNode({ bootstrap: hub.multiaddrs })
    owned.push(impostor)
    const [real] = await hub.find('demo-gpt2', { timeoutMs: 5000 })
    await impostor.announce({ ...real.record, capacity: { queueDepth: 0, maxBatch: 1000 } }) // looks idler
    const client = await createDirectoryNode({ bootstrap: hub.multiaddrs })
    owned.push(client)
    expect(await client.find('demo-gpt2', { timeoutMs: 5000, min: 2 })).toHaveLength(2)
    const events: RouteEvent[] = []
    const weft = await Weft.discover({ directory: client, key: toHex(researcher.secretKey), onRoute: e => events.push(e) })
    try {
      await (await weft.model<any>('demo-gpt2')).trace('Hello world', hello)
      expect(events.map(e => [e.type, e.provider])).toEqual([['select', host.providerId]])
      expect((weft.executor as RoutingExecutor).selector.isBanned(impostor.provider)).toBe(true)
    } finally {
      await weft.close()
      await impostor.withdraw()
    }
  })

  test('no provider for a model: PROVIDER_NOT_FOUND after the find timeout', async () => {
    const weft = await Weft.discover({ directory: hub, key: toHex(researcher.secretKey), findTimeoutMs: 200 })
    const error = await weft.model('no-such-model').catch((e: unknown) => e)
    expect(WeftError.is(error, 'PROVIDER_NOT_FOUND')).toBe(true)
    await weft.close()
    await expect(Weft.discover({ key: toHex(researcher.secretKey) })).rejects.toMatchObject({ code: 'PROVIDER_NOT_FOUND' })
  })

  test('which errors move a job to another provider', () => {
    const aborted = new AbortController()
    aborted.abort()
    expect(shouldFailover(new TypeError('fetch failed'))).toBe(true)
    expect(shouldFailover(new WeftError('PROVIDER_UNAVAILABLE', 'down', { status: 503 }))).toBe(true)
    expect(shouldFailover(new WeftError('INTERNAL', 'bug', { status: 500 }))).toBe(true)
    expect(shouldFailover(new WeftError('SIGNATURE_INVALID', 'receipt does not verify'))).toBe(true)
    expect(shouldFailover(new WeftError('SIGNATURE_INVALID', 'your request', { status: 401 }))).toBe(false)
    expect(shouldFailover(new WeftError('PROGRAM_INVALID', 'bad', { status: 400 }))).toBe(false)
    expect(shouldFailover(new WeftError('POLICY_DENIED', 'no', { status: 403 }))).toBe(false)
    expect(shouldFailover(new TypeError('fetch failed'), aborted.signal)).toBe(false)
    // a provider's refusal is not a failure, but another provider may accept: the run moves on without a ban
    expect(isRefusal(new WeftError('POLICY_DENIED', 'no', { status: 403 }))).toBe(true)
    expect(isRefusal(new WeftError('EGRESS_BUDGET_EXCEEDED', 'no', { status: 403 }))).toBe(true)
    expect(isRefusal(new WeftError('KEY_UNKNOWN', 'who?', { status: 401 }))).toBe(true)
    expect(isRefusal(new WeftError('POLICY_DENIED', 'judged client-side'))).toBe(false)
    expect(isRefusal(new WeftError('PROGRAM_INVALID', 'bad', { status: 400 }))).toBe(false)
  })
})
