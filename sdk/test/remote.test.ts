/** SDK remote mode against an in-process provider on 127.0.0.1: tracing, receipt checks that catch tampering, typed errors. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, decodeCbor, encodeCbor, toHex, type Tensor } from '@weft/core'
import { Weft } from '../src/index.js'
import { connectRemote, type RemoteExecutor } from '../src/remote/index.js'
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
})
