/** SDK remote mode: a key's kept adapters on a provider on 127.0.0.1 — list, read, download (digest-checked), delete; other keys get typed 404s. */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { decodeCbor, encodeCbor, toHex, type Tensor } from '@weft/core'
import { connectRemote, type RemoteExecutor } from '../src/remote/index.js'
import { createHost, type Host } from '@weft/host'
import { newUser, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'

let host: Host
let url: string
const alice = newUser()
const bob = newUser()

beforeAll(async () => {
  // no model is needed to manage adapters: the provider keeps them by owner
  host = await createHost({ dbPath: tempDb('sdk-adapters'), backends: { onnx: await onnxBackendInline() }, models: [], selfRegistration: true })
  url = (await host.listen({ port: 0 })).url
})
afterAll(async () => { await host.close() })

async function connect (user: typeof alice, fetchImpl?: typeof fetch): Promise<RemoteExecutor> {
  const executor = await connectRemote({ provider: url, key: toHex(user.secretKey), providerId: host.providerId, ...(fetchImpl === undefined ? {} : { fetch: fetchImpl }) })
  await executor.register()
  return executor
}

function keepFor (kid: string, name: string, values: Record<string, Tensor>): void {
  const adapters = host.context.adapters
  adapters.replaced(adapters.commit(adapters.prepare({ kid, name, model: 'demo-gpt2', revision: 'r1', values, jobId: 'job_t', programDigest: 'sha256:00', training: { steps: 30, completed: 30, cancelled: false, finalLoss: 0.003 }, now: 5 })))
}

test('the owner lists, reads, downloads and deletes its adapter; another key is told it does not exist', async () => {
  const mine = await connect(alice)
  const theirs = await connect(bob)
  keepFor(alice.kid, 'rome', { v: { dtype: 'float32', shape: [3], data: Float32Array.from([0.5, -1, 2]) } })
  expect((await mine.adapters()).map(a => a.name)).toEqual(['rome'])
  expect(await mine.adapter('rome')).toMatchObject({ name: 'rome', model: 'demo-gpt2', revision: 'r1', bytes: 12, params: { v: { shape: [3], dtype: 'float32' } }, training: { completed: 30 } })
  expect(await theirs.adapters()).toEqual([])
  await expect(theirs.adapter('rome')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND', details: { adapter: 'rome', status: 404 } })
  await expect(theirs.downloadAdapter('rome')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
  await expect(theirs.deleteAdapter('rome')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })

  const download = await mine.downloadAdapter('rome')
  expect([...download.values.v!.data]).toEqual([0.5, -1, 2])
  expect(download.egress.bytes).toBe(12)
  expect(download.digest).toBe((await mine.adapter('rome')).digest)
  expect((await mine.egress()).usedToday).toBe(12)

  await mine.deleteAdapter('rome')
  await expect(mine.adapter('rome')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
})

test('values altered in transit are rejected', async () => {
  keepFor(alice.kid, 'probe', { w: { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) } })
  const tampering: typeof fetch = async (input, init) => {
    const response = await fetch(input, init)
    if (!String(input).endsWith('/values')) return response
    const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as Record<string, unknown>
    const values = decodeCbor(body.values as Uint8Array) as Record<string, Tensor>
    ;(values.w!.data as Float32Array)[0] = 9
    return new Response(encodeCbor({ ...body, values: encodeCbor(values) }) as Uint8Array<ArrayBuffer>, { status: 200, headers: response.headers })
  }
  const executor = await connect(alice, tampering)
  await expect(executor.downloadAdapter('probe')).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
})
