/** SDK remote mode against an in-process provider on 127.0.0.1: tracing, receipt checks that catch tampering, typed errors. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { WeftError, decodeCbor, encodeCbor, generateKeyPair, keyId, signRequest, toHex, type Tensor } from '@weft/core'
import { Weft } from '../src/index.js'
import { connectRemote, type RemoteExecutor } from '../src/remote/index.js'
import { EndpointPool } from '../src/remote/endpoints.js'
import { breakingProxy } from './fixtures/breaking-proxy.js'
import { closedModelPolicy, createHost, type Host } from '@weft/host'
import { DEMO, newUser, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'

let host: Host
let url: string
const user = newUser()

beforeAll(async () => {
  host = await createHost({
    dbPath: tempDb('sdk-remote'), backends: { onnx: await onnxBackendInline() }, models: [{ name: 'demo-gpt2', path: DEMO }],
    policies: [closedModelPolicy({ egressPerKeyPerDay: '1MB' })], selfRegistration: true, limits: { batchWindowMs: 0 },
  })
  url = (await host.listen({ port: 0 })).url
})
afterAll(async () => { await host.close() })

/** A fetch that changes one value of every saved tensor in result bodies (the receipt itself is left intact). */
function tamperingFetch (): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init)
    if (response.headers.get('content-type') !== 'application/cbor' || !String(input).includes('/v1/jobs')) return response
    const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as Record<string, unknown>
    const saves = decodeCbor(body.saves as Uint8Array) as Record<string, Tensor>
    for (const tensor of Object.values(saves)) (tensor.data as Float32Array)[0]! += 1
    return new Response(encodeCbor({ ...body, saves: encodeCbor(saves) }) as Uint8Array<ArrayBuffer>, { status: response.status, headers: response.headers })
  }
}

describe('remote executor', () => {
  test('traces through Weft, self-registers, verifies the receipt and reports the egress left', async () => {
    const weft = await Weft.connect({ provider: url, key: toHex(user.secretKey), providerId: host.providerId })
    const model = await weft.model<any>('demo-gpt2')
    const out = await model.trace('Hello world', (m: any) => ({ h: m.transformer.h[0].output.save() }))
    const tokens = host.context.registry.get('demo-gpt2').handle.tokenize('Hello world').length
    expect(out.h.shape).toEqual([1, tokens, 256])
    const executor = weft.executor as RemoteExecutor
    const bytes = tokens * 256 * 4
    expect(executor.lastEgress).toEqual({ bytes, remainingToday: 1_000_000 - bytes })
    expect(await executor.egress()).toMatchObject({ kid: user.kid, usedToday: bytes, remainingToday: 1_000_000 - bytes })
    expect(await executor.tokenize('demo-gpt2', 'Hello world')).toEqual(host.context.registry.get('demo-gpt2').handle.tokenize('Hello world'))
    await weft.close()
  })

  test('a result whose tensors were altered in transit is rejected', async () => {
    const executor = await connectRemote({ provider: url, key: toHex(user.secretKey), fetch: tamperingFetch() })
    const weft = new Weft(executor)
    const model = await weft.model<any>('demo-gpt2')
    const error = await model.trace('Hello world', (m: any) => ({ h: m.transformer.h[0].output.save() })).catch((e: unknown) => e)
    expect(WeftError.is(error)).toBe(true)
    expect(error).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/result rejected: receipt binds result/) })
  })

  test('pinning: a provider with another id is refused before anything is sent', async () => {
    await expect(connectRemote({ provider: url, key: toHex(user.secretKey), providerId: 'ed25519:00000000000000000000000000000000' }))
      .rejects.toMatchObject({ code: 'AUDIENCE_MISMATCH' })
  })

  test('provider errors come back as typed WeftErrors', async () => {
    const executor = await connectRemote({ provider: url, key: toHex(user.secretKey) })
    const program = { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace' as const, invokes: [{ ids: [1, 2] }], nodes: [['read', { site: 'transformer.h.77', port: 'output', invoke: 0 }, []], ['save', { name: 'x' }, [0]]] as never }
    await expect(executor.run(program)).rejects.toMatchObject({ code: 'PROGRAM_INVALID' })
    const big = { ...program, nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'x' }, [0]]] as never, invokes: [{ ids: Array.from({ length: 200 }, (_, i) => i) }] }
    await expect(executor.run(big)).rejects.toMatchObject({ code: 'EGRESS_BUDGET_EXCEEDED', details: { remainingBytes: expect.any(Number) } })
  })

  test('several endpoints: a dead node and one answering as another provider are set aside; every run lands on the live node', async () => {
    // a server that answers /v1/version as another provider and counts what else it is asked
    const other = generateKeyPair()
    let askedOther = 0
    const impostor = http.createServer((request, response) => {
      if (request.url === '/v1/version') response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ provider: keyId(other.publicKey), publicKey: toHex(other.publicKey), protocol: [1] }))
      else { askedOther++; response.writeHead(500).end() }
    })
    await new Promise<void>(resolve => impostor.listen(0, '127.0.0.1', resolve))
    const impostorUrl = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`
    try {
      const dead = 'http://127.0.0.1:1' // nothing listens on port 1
      const executor = await connectRemote({ provider: dead, endpoints: [impostorUrl, url], key: toHex(user.secretKey), providerId: host.providerId }) as RemoteExecutor
      expect(executor.providerId).toBe(host.providerId)
      const program = { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace' as const, invokes: [{ ids: [464, 3139] }], nodes: [['read', { site: 'transformer.h.0', port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]] as never }
      const runs = await Promise.all([0, 1, 2].map(async () => await executor.run(program)))
      for (const run of runs) {
        expect(run.endpoint).toBe(url)
        expect(Array.from(run.saves.h!.data as Float32Array)).toEqual(Array.from(runs[0]!.saves.h!.data as Float32Array))
      }
      expect(askedOther).toBe(0)
      const status = executor.http.pool.status()
      expect(status.find(e => e.url === impostorUrl)?.excluded).toBe(true)
      expect(status.find(e => e.url === dead)?.failures).toBeGreaterThan(0)
    } finally {
      impostor.close()
    }
  })
})

describe('a connection broken after the node accepted the job', () => {
  const program = { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace' as const, invokes: [{ ids: [464, 3139, 286] }], nodes: [['read', { site: 'transformer.h.0', port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]] as never }

  /** a new researcher's executor over two endpoints of the one host: through a breaking proxy first, then direct */
  async function throughProxy (test: (executor: RemoteExecutor, proxy: Awaited<ReturnType<typeof breakingProxy>>) => Promise<void>): Promise<void> {
    const proxy = await breakingProxy(url)
    try {
      const executor = await connectRemote({ provider: proxy.url, endpoints: [url], key: toHex(newUser().secretKey), providerId: host.providerId }) as RemoteExecutor
      await executor.register()
      await test(executor, proxy)
    } finally { proxy.close() }
  }

  test('the SDK asks the next node which job the envelope created and follows it: one job, charged once', async () => {
    await throughProxy(async (executor, proxy) => {
      const stages: string[] = []
      const run = await executor.run(program, { onProgress: event => { stages.push(event.stage) } })
      expect(proxy.cut()).toBe(1) // the first node took the envelope and its answer was lost
      expect(run.endpoint).toBe(url)
      const alone = await executor.run(program) // the same Program on the node directly (rotation: not via the proxy)
      expect(alone.endpoint).toBe(url)
      expect(Array.from(run.saves.h!.data as Float32Array)).toEqual(Array.from(alone.saves.h!.data as Float32Array))
      // one job ran for the first run: the key was charged two results' bytes for the two runs, not three
      const bytes = 3 * 256 * 4
      expect(run.egress!.bytes).toBe(bytes)
      expect((await executor.egress()).usedToday).toBe(2 * bytes)
      expect(stages).toContain('received')
      // (the receipt binds the envelope first sent: the job followed is the one that envelope created)
    })
  })

  test('an envelope the first node refused (its answer lost): the next node says the nonce is spent and knows no job; the SDK signs afresh and the real refusal comes back', async () => {
    await throughProxy(async (executor, proxy) => {
      const big = { ...program, nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'x' }, [0]]] as never, invokes: [{ ids: Array.from({ length: 200 }, (_, i) => i) }] }
      await expect(executor.run(big)).rejects.toMatchObject({ code: 'EGRESS_BUDGET_EXCEEDED' })
      expect(proxy.cut()).toBe(1)
      expect((await executor.egress()).usedToday).toBe(0)
    })
  })

  test('GET /v1/requests/{digest}: only the signing key learns the job; anyone else, or a malformed digest, gets JOB_NOT_FOUND', async () => {
    const researcher = newUser()
    const executor = await connectRemote({ provider: url, key: toHex(researcher.secretKey), providerId: host.providerId }) as RemoteExecutor
    await executor.register()
    const run = await executor.run(program)
    const digest = run.receipt!.fields.requestDigest
    const ask = async (who: typeof researcher, path: string): Promise<Response> => await fetch(new URL(path, url), {
      headers: { 'Weft-Key': signRequest('weft-key-v1', { secretKey: who.secretKey, providerId: host.providerId, method: 'GET', path }) },
    })
    const mine = await ask(researcher, `/v1/requests/${digest}`)
    expect(mine.status).toBe(200)
    expect(await mine.json()).toMatchObject({ state: 'completed', requestDigest: digest, model: 'demo-gpt2' })
    const other = newUser()
    await (await connectRemote({ provider: url, key: toHex(other.secretKey), providerId: host.providerId }) as RemoteExecutor).register()
    const theirs = await ask(other, `/v1/requests/${digest}`)
    expect(theirs.status).toBe(404)
    expect(await theirs.json()).toMatchObject({ code: 'JOB_NOT_FOUND', details: { request: digest } })
    const malformed = await ask(researcher, '/v1/requests/sha256:xyz')
    expect(await malformed.json()).toMatchObject({ code: 'JOB_NOT_FOUND' })
    const unsigned = await fetch(new URL(`/v1/requests/${digest}`, url))
    expect(unsigned.status).toBe(401)
  })
})

describe('EndpointPool', () => {
  test('live nodes first in rotation, failed ones set aside with doubling backoff, excluded ones never', () => {
    let now = 0
    const pool = new EndpointPool(['a', 'b', 'c', 'a'], { clock: () => now, downMs: 100, maxDownMs: 250 })
    expect(pool.urls).toEqual(['a', 'b', 'c'])
    expect([pool.rotate(), pool.rotate(), pool.rotate(), pool.rotate()]).toEqual(['a', 'b', 'c', 'a'])
    pool.markDown('b', new Error('refused'))
    expect(pool.order()).toEqual(['a', 'c', 'b'])
    expect(pool.order('b')).toEqual(['c', 'a', 'b']) // b asked first unless it is down: then last
    expect([pool.rotate(), pool.rotate(), pool.rotate()]).toEqual(['c', 'a', 'c'])
    pool.markDown('b')
    now = 150
    expect(pool.isDown('b')).toBe(true) // second failure: 200 ms
    now = 201
    expect(pool.isDown('b')).toBe(false)
    pool.markDown('b'); pool.markDown('b')
    expect(pool.status().find(e => e.url === 'b')).toMatchObject({ failures: 4, downUntil: 201 + 250 })
    pool.markUp('b')
    expect(pool.isDown('b')).toBe(false)
    pool.exclude('a')
    expect(pool.order()).toEqual(['b', 'c'])
    expect(pool.preferred()).toBe('b')
  })
})
