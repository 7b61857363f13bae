// Kept adapters on the provider: durable files + rows (atomic write, sweep of what a crash left), owner-only
// visibility (another key gets the same 404 as a missing name), resolution of `init: {adapter}` params, the signed
// `Weft-Key` routes, and the download policy (closed-model: host-only by default, or counted against egress budgets).
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { WeftError, decodeCbor, generateKeyPair, keyId, type Program, type Tensor } from '@weft/core'
import { SqliteStore as Store } from '../src/store/store.js'
import { Adapters } from '../src/adapters/adapters.js'
import { closedModelPolicy, createHost, type Host } from '../src/index.js'
import { applyEdits } from '../src/models/edits.js'
import { keyRequest, newUser, onnxBackendInline, registerKey, tempDb } from './helpers.js'

const f32 = (shape: number[], values: number[]): Tensor => ({ dtype: 'float32', shape, data: Float32Array.from(values) })
const steering = (seed: number): Record<string, Tensor> => ({ v: f32([4], [seed, seed + 1, seed + 2, seed + 3]), w: f32([2, 2], [1, 2, 3, 4]) })

const opened: Store[] = []
afterEach(() => { for (const s of opened.splice(0)) s.close() })

function storeAt (dbPath: string): { store: Store; adapters: Adapters; dir: string } {
  const store = new Store(dbPath)
  opened.push(store)
  const dir = `${dbPath}.adapters`
  return { store, adapters: new Adapters(store, dir), dir }
}

function keep (adapters: Adapters, kid: string, name: string, values: Record<string, Tensor>, revision = 'rev-a') {
  const prepared = adapters.prepare({ kid, name, model: 'demo-gpt2', revision, values, jobId: 'job_x', programDigest: 'sha256:00', training: { steps: 3, completed: 3, cancelled: false, finalLoss: 0.5 }, now: 1000 })
  const old = adapters.commit(prepared)
  adapters.replaced(old)
  return prepared.row
}

const code = (fn: () => unknown): string => {
  try { fn() } catch (error) { if (WeftError.is(error)) return error.code; throw error }
  throw new Error('expected a WeftError')
}

describe('adapter store', () => {
  test('kept values survive a reopen byte for byte; another key sees the same 404 as a missing name', () => {
    const db = tempDb('adapters')
    const { adapters } = storeAt(db)
    const row = keep(adapters, 'alice', 'steer', steering(1))
    expect(row.bytes).toBe(4 * 4 + 4 * 4)
    opened.pop()!.close()
    const reopened = storeAt(db).adapters
    expect(reopened.sweep()).toEqual([])
    const got = reopened.get('alice', 'steer')
    expect(got.digest).toBe(row.digest)
    const values = reopened.files.read(got.file, got.digest)
    expect([...values.v!.data]).toEqual([1, 2, 3, 4])
    expect(values.w!.shape).toEqual([2, 2])
    expect(reopened.list('alice').map(a => a.name)).toEqual(['steer'])
    expect(reopened.list('alice')[0]).toMatchObject({ model: 'demo-gpt2', revision: 'rev-a', params: { v: { shape: [4], dtype: 'float32' } }, training: { completed: 3, finalLoss: 0.5 } })
    expect(reopened.list('bob')).toEqual([])
    expect(code(() => reopened.get('bob', 'steer'))).toBe('ADAPTER_NOT_FOUND')
    expect(code(() => reopened.get('alice', 'nope'))).toBe('ADAPTER_NOT_FOUND')
    expect(code(() => reopened.delete('bob', 'steer'))).toBe('ADAPTER_NOT_FOUND')
    expect(reopened.get('alice', 'steer').id).toBe(row.id) // bob's attempt changed nothing
  })

  test('keeping a name again replaces the adapter in one commit and deletes the old file', () => {
    const { adapters, dir } = storeAt(tempDb('replace'))
    const first = keep(adapters, 'alice', 'steer', steering(1))
    const second = keep(adapters, 'alice', 'steer', steering(10))
    expect(second.id).not.toBe(first.id)
    expect(existsSync(path.join(dir, first.file))).toBe(false)
    expect(readdirSync(dir)).toEqual([second.file])
    expect([...adapters.files.read(second.file, second.digest).v!.data]).toEqual([10, 11, 12, 13])
    const other = keep(adapters, 'bob', 'steer', steering(5)) // same name, another owner: a separate adapter
    expect(adapters.get('alice', 'steer').id).toBe(second.id)
    expect(adapters.get('bob', 'steer').id).toBe(other.id)
    adapters.delete('alice', 'steer')
    expect(existsSync(path.join(dir, second.file))).toBe(false)
    expect(code(() => adapters.get('alice', 'steer'))).toBe('ADAPTER_NOT_FOUND')
  })

  test('a crash between the file and its row leaves nothing visible; start-up removes the file and temp files', () => {
    const db = tempDb('crash')
    const { adapters, dir } = storeAt(db)
    const kept = keep(adapters, 'alice', 'kept', steering(1))
    // what a process killed after writing (renaming) the file but before committing the row leaves on disk
    const orphan = adapters.prepare({ kid: 'alice', name: 'lost', model: 'demo-gpt2', revision: 'rev-a', values: steering(2), jobId: 'job_y', programDigest: 'sha256:01', training: null, now: 2 })
    // and one killed halfway through writing the temporary file
    writeFileSync(path.join(dir, 'adp_0123456789abcdef0123456789abcdef.cbor.tmp'), new Uint8Array([0xa1, 0x61]))
    opened.pop()!.close()
    const restarted = storeAt(db).adapters
    expect(code(() => restarted.get('alice', 'lost'))).toBe('ADAPTER_NOT_FOUND')
    expect(restarted.sweep().sort()).toEqual([orphan.file.file, 'adp_0123456789abcdef0123456789abcdef.cbor.tmp'].sort())
    expect(readdirSync(dir)).toEqual([kept.file])
    expect([...restarted.files.read(kept.file, kept.digest).v!.data]).toEqual([1, 2, 3, 4])
  })

  test('a damaged file is never used: reading it is a provider fault naming the file', () => {
    const { adapters, dir } = storeAt(tempDb('damaged'))
    const row = keep(adapters, 'alice', 'steer', steering(1))
    const file = path.join(dir, row.file)
    const bytes = readFileSync(file)
    bytes[bytes.length - 1] ^= 0xff
    writeFileSync(file, bytes)
    expect(code(() => adapters.files.read(row.file, row.digest))).toBe('INTERNAL')
  })

  test('resolve: adapter inits become the owner\'s tensors; other owners, revisions, params and shapes are refused', () => {
    const { adapters } = storeAt(tempDb('resolve'))
    keep(adapters, 'alice', 'steer', steering(1))
    const program = (init: unknown, shape = [4]): Program => ({
      version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [1, 2] }],
      params: { p: { shape, dtype: 'float32', init: init as never }, z: { shape: [2], dtype: 'float32', init: { zeros: true } } },
      nodes: [['trainable', { name: 'p' }, []], ['save', { name: 'p' }, [0]]],
    })
    const served = { name: 'demo-gpt2', revision: 'rev-a' }
    const resolved = adapters.resolve('alice', program({ adapter: { name: 'steer', param: 'v' } }), served)
    const init = resolved.params!.p!.init as { tensor: Tensor }
    expect([...init.tensor.data]).toEqual([1, 2, 3, 4])
    expect(resolved.params!.z!.init).toEqual({ zeros: true })
    const plain = program({ zeros: true })
    expect(adapters.resolve('alice', plain, served)).toBe(plain)
    expect(code(() => adapters.resolve('bob', program({ adapter: { name: 'steer', param: 'v' } }), served))).toBe('ADAPTER_NOT_FOUND')
    expect(code(() => adapters.resolve('alice', program({ adapter: { name: 'steer', param: 'v' } }), { name: 'demo-gpt2', revision: 'rev-b' }))).toBe('ADAPTER_MISMATCH')
    expect(code(() => adapters.resolve('alice', program({ adapter: { name: 'steer', param: 'nope' } }), served))).toBe('ADAPTER_MISMATCH')
    expect(code(() => adapters.resolve('alice', program({ adapter: { name: 'steer', param: 'v' } }, [2, 2]), served))).toBe('ADAPTER_MISMATCH')
  })
})

describe('provider-wide edits on sessions', () => {
  test('every trace gets the edit; train.loss and from nodes follow the shifted indices', () => {
    const edit = { id: 'e', name: 'zero', digest: 'd', nodes: [['read', { site: 'transformer.h.1' }, []], ['sub', {}, [0, 0]], ['write', { site: 'transformer.h.1' }, [1]]] as Program['nodes'] }
    const program: Program = {
      version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [1] }, { ids: [2] }],
      params: { v: { shape: [4], dtype: 'float32', init: { zeros: true } } },
      nodes: [['read', { site: 'transformer.h.2', invoke: 0 }, []], ['mean', {}, [0]]],
      train: { params: ['v'], loss: 1, optimizer: { kind: 'sgd', lr: 0.1 } },
      then: [
        { mode: 'trace', invokes: [{ ids: [3] }], nodes: [['from', { trace: 0, node: 1 }, []], ['save', { name: 'x' }, [0]]] },
        { mode: 'trace', invokes: [{ ids: [4] }], nodes: [['from', { trace: 1, node: 0 }, []], ['from', { trace: 0, node: 0 }, []], ['save', { name: 'y' }, [0]]] },
      ],
    }
    const edited = applyEdits(program, [edit])
    expect(edited.nodes.length).toBe(6 + 2) // the edit once per invoke of trace 0
    expect(edited.train!.loss).toBe(7)
    expect(edited.nodes[7]).toEqual(['mean', {}, [6]])
    expect(edited.then![0]!.nodes.slice(3)).toEqual([['from', { trace: 0, node: 7 }, []], ['save', { name: 'x' }, [3]]])
    expect(edited.then![1]!.nodes.slice(3)).toEqual([['from', { trace: 1, node: 3 }, []], ['from', { trace: 0, node: 6 }, []], ['save', { name: 'y' }, [3]]])
    expect(edited.then![1]!.nodes[2]).toEqual(['write', { site: 'transformer.h.1', invoke: 0 }, [1]])
  })
})

describe('policies judge a whole session', () => {
  test('closed-model: a weight-reading op in a later trace is refused like one in the first', async () => {
    const policy = closedModelPolicy({})({ ledger: { committedToday: () => 0, jobsToday: () => 0 }, models: () => [] })
    const session: Program = {
      version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [1] }],
      nodes: [['read', { site: 'transformer.h.1', invoke: 0 }, []], ['save', { name: 'h' }, [0]]],
      then: [{ mode: 'trace', invokes: [{ ids: [2] }], nodes: [['const', { value: f32([256], new Array(256).fill(0)) as never }, []], ['module_call', { module: 'lm_head' }, [0]], ['save', { name: 'w' }, [1]]] }],
    }
    const request = { keyId: 'k', program: session, manifest: {} as never, estimatedEgressBytes: 0, now: 0 }
    expect(await policy.admit(request)).toMatchObject({ allow: false, code: 'POLICY_DENIED', details: { forbiddenOps: ['module_call'], nodes: [], traces: [{ trace: 1, node: 1 }] } })
    const { then: _later, ...first } = session
    expect(await policy.admit({ ...request, program: first })).toMatchObject({ allow: true })
  })
})

describe('adapter routes', () => {
  const hosts: Host[] = []
  afterAll(async () => { for (const h of hosts) await h.close() })

  async function hostWith (policies: Parameters<typeof createHost>[0]['policies'] = []): Promise<{ host: Host; alice: ReturnType<typeof newUser>; bob: ReturnType<typeof newUser> }> {
    const operator = generateKeyPair()
    const host = await createHost({ dbPath: tempDb('routes'), backends: { onnx: await onnxBackendInline() }, models: [], operatorKeys: [operator.publicKey], policies })
    hosts.push(host)
    const alice = newUser()
    const bob = newUser()
    await registerKey(host, operator, alice.publicKey)
    await registerKey(host, operator, bob.publicKey)
    return { host, alice, bob }
  }

  test('list, metadata, download and delete by the owner; every other key gets 404 ADAPTER_NOT_FOUND; unsigned is 401', async () => {
    const { host, alice, bob } = await hostWith()
    const row = keep(host.context.adapters, alice.kid, 'steer', steering(1))
    const list = await keyRequest(host, alice, 'GET', '/v1/adapters')
    expect(list.status).toBe(200)
    expect(await list.json()).toMatchObject({ kid: alice.kid, adapters: [{ name: 'steer', id: row.id, bytes: 32, digest: row.digest, model: 'demo-gpt2' }] })
    expect(await (await keyRequest(host, bob, 'GET', '/v1/adapters')).json()).toEqual({ kid: bob.kid, adapters: [] })

    const meta = await keyRequest(host, alice, 'GET', '/v1/adapters/steer')
    expect(await meta.json()).toMatchObject({ name: 'steer', params: { v: { shape: [4] }, w: { shape: [2, 2] } }, training: { steps: 3 } })
    for (const [method, url] of [['GET', '/v1/adapters/steer'], ['GET', '/v1/adapters/steer/values'], ['DELETE', '/v1/adapters/steer'], ['GET', '/v1/adapters/missing']] as const) {
      const response = await keyRequest(host, bob, method, url)
      expect(response.status).toBe(404)
      const body = await response.json() as { code: string; details: Record<string, unknown> }
      expect(body.code).toBe('ADAPTER_NOT_FOUND')
      expect(body.details).toEqual({ adapter: url.includes('missing') ? 'missing' : 'steer' }) // nothing tells bob it exists
    }
    const unsigned = await host.app.request('/v1/adapters/steer')
    expect(unsigned.status).toBe(401)
    expect(await unsigned.json()).toMatchObject({ code: 'SIGNATURE_INVALID' })
    // a signature for one path is not valid for another
    const { keyHeaders } = await import('../src/index.js')
    const forged = await host.app.request('/v1/adapters/steer/values', { headers: keyHeaders({ secretKey: alice.secretKey, providerId: host.providerId, method: 'GET', path: '/v1/adapters/steer' }) })
    expect(forged.status).toBe(401)

    const download = await keyRequest(host, alice, 'GET', '/v1/adapters/steer/values')
    expect(download.status).toBe(200)
    const body = decodeCbor(new Uint8Array(await download.arrayBuffer())) as { adapter: string; digest: string; values: Uint8Array; egress: { bytes: number } }
    expect(body).toMatchObject({ adapter: 'steer', digest: row.digest, egress: { bytes: 32 } })
    const values = decodeCbor(body.values) as Record<string, Tensor>
    expect([...values.v!.data]).toEqual([1, 2, 3, 4])
    const egress = await (await host.app.request(`/v1/keys/${alice.kid}/egress`)).json() as { usedToday: number }
    expect(egress.usedToday).toBe(32) // a download is charged like a result
    expect(host.context.store.auditLog(5).map(a => a.action)).toContain('adapter-download')

    const deleted = await keyRequest(host, alice, 'DELETE', '/v1/adapters/steer')
    expect(await deleted.json()).toEqual({ name: 'steer', id: row.id, deleted: true })
    expect((await keyRequest(host, alice, 'GET', '/v1/adapters/steer')).status).toBe(404)
    expect(readdirSync(host.context.adapters.files.dir)).toEqual([])
  })

  test('closed-model policy: adapters are host-only by default; "counted" lets them leave within the egress budgets', async () => {
    const closed = await hostWith([closedModelPolicy({ egressPerKeyPerDay: 40 })])
    keep(closed.host.context.adapters, closed.alice.kid, 'steer', steering(1))
    const refused = await keyRequest(closed.host, closed.alice, 'GET', '/v1/adapters/steer/values')
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({ code: 'POLICY_DENIED', details: { policy: 'closed-model', adapterDownloads: 'host-only' } })
    expect((await (await closed.host.app.request('/v1/policy')).json() as { policies: Record<string, unknown>[] }).policies[0]).toMatchObject({ adapterDownloads: 'host-only' })
    expect((await keyRequest(closed.host, closed.alice, 'GET', '/v1/adapters/steer')).status).toBe(200) // metadata is not values

    const counted = await hostWith([closedModelPolicy({ egressPerKeyPerDay: 40, adapterDownloads: 'counted' })])
    keep(counted.host.context.adapters, counted.alice.kid, 'steer', steering(1))
    expect((await keyRequest(counted.host, counted.alice, 'GET', '/v1/adapters/steer/values')).status).toBe(200) // 32 of 40 bytes
    const over = await keyRequest(counted.host, counted.alice, 'GET', '/v1/adapters/steer/values')
    expect(over.status).toBe(429)
    expect(await over.json()).toMatchObject({ code: 'EGRESS_BUDGET_EXCEEDED', details: { limit: 'per-key-per-day', remainingBytes: 8, estimatedBytes: 32 } })
  })

  test('a revoked key cannot reach its adapters', async () => {
    const { host, alice } = await hostWith()
    keep(host.context.adapters, alice.kid, 'steer', steering(1))
    host.context.store.revokeKey(alice.kid, 'test', Date.now())
    const response = await keyRequest(host, alice, 'GET', '/v1/adapters')
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ code: 'KEY_REVOKED' })
    const stranger = generateKeyPair()
    const unknown = await keyRequest(host, stranger, 'GET', '/v1/adapters')
    expect(await unknown.json()).toMatchObject({ code: 'KEY_UNKNOWN', details: { kid: keyId(stranger.publicKey) } })
  })
})
