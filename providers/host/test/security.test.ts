/** Hostile and malformed requests: each is refused with its typed error, and the provider keeps serving. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { encodeCbor, signBytes, toHex } from '@weft/core'
import { registrationMessage } from '../src/index.js'
import { blockProgram, newUser, operatorRequest, sign, startTestHost, submit, type TestHost } from './helpers.js'

let t: TestHost
beforeAll(async () => {
  t = await startTestHost({ limits: { batchWindowMs: 0, maxBodyBytes: 64 * 1024, maxProgramNodes: 40, maxConcurrentJobsPerKey: 4 } })
})
afterAll(async () => { await t.host.close() })

async function refused (response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const body = await response.json() as { code: string; message: string; details: Record<string, unknown> }
  expect({ status: response.status, code: body.code }).toEqual({ status, code })
  expect(body.message.length).toBeGreaterThan(10)
  return body.details
}

async function stillServes (): Promise<void> {
  expect((await t.host.app.request('/v1/health')).status).toBe(200)
  expect((await submit(t.host, sign(t.host, t.user, blockProgram()), 10)).status).toBe(200)
}

describe('envelope', () => {
  test('tampered signature', async () => {
    const envelope = sign(t.host, t.user, blockProgram())
    envelope[envelope.length - 1]! ^= 0x01
    await refused(await submit(t.host, envelope), 401, 'SIGNATURE_INVALID')
    await stillServes()
  })

  test('tampered payload (a token id changed after signing)', async () => {
    const program = blockProgram([11, 12, 13])
    const envelope = sign(t.host, t.user, program)
    const at = Buffer.from(envelope).indexOf(Buffer.from([0x0b, 0x0c, 0x0d]))
    expect(at).toBeGreaterThan(0)
    envelope[at] = 0x0e
    await refused(await submit(t.host, envelope), 401, 'SIGNATURE_INVALID')
  })

  test('wrong audience, expired, issued in the future', async () => {
    await refused(await submit(t.host, sign(t.host, t.user, blockProgram(), { audience: 'ed25519:00000000000000000000000000000000' })), 401, 'AUDIENCE_MISMATCH')
    const now = Math.floor(Date.now() / 1000)
    await refused(await submit(t.host, sign(t.host, t.user, blockProgram(), { iat: now - 1000, ttlSeconds: 300 })), 401, 'MESSAGE_EXPIRED')
    await refused(await submit(t.host, sign(t.host, t.user, blockProgram(), { iat: now + 1000 })), 401, 'MESSAGE_NOT_YET_VALID')
    await stillServes()
  })

  test('replayed request', async () => {
    const envelope = sign(t.host, t.user, blockProgram())
    expect((await submit(t.host, envelope)).status).toBe(202)
    const details = await refused(await submit(t.host, envelope), 401, 'NONCE_REPLAYED')
    expect(details.kid).toBe(t.user.kid)
  })

  test('unknown key and revoked key', async () => {
    const stranger = newUser()
    await refused(await submit(t.host, sign(t.host, stranger, blockProgram())), 401, 'KEY_UNKNOWN')
    const revokedUser = newUser()
    const { registerKey } = await import('./helpers.js')
    await registerKey(t.host, t.operator, revokedUser.publicKey)
    expect((await submit(t.host, sign(t.host, revokedUser, blockProgram()), 10)).status).toBe(200)
    const revoke = await operatorRequest(t.host, t.operator, 'DELETE', `/v1/keys/${revokedUser.kid}`, { reason: 'leaked' })
    expect(await revoke.json()).toEqual({ kid: revokedUser.kid, revoked: true })
    const details = await refused(await submit(t.host, sign(t.host, revokedUser, blockProgram())), 401, 'KEY_REVOKED')
    expect(details.kid).toBe(revokedUser.kid)
    await stillServes()
  })

  test('a revoked key cannot lift its revocation by registering itself again', async () => {
    const revokedUser = newUser()
    const { registerKey } = await import('./helpers.js')
    await registerKey(t.host, t.operator, revokedUser.publicKey)
    await operatorRequest(t.host, t.operator, 'DELETE', `/v1/keys/${revokedUser.kid}`, { reason: 'leaked' })
    const selfRegister = async (user: ReturnType<typeof newUser>): Promise<Response> => {
      const publicKey = toHex(user.publicKey)
      const proof = toHex(signBytes(registrationMessage(t.host.providerId, publicKey), user.secretKey))
      return await t.host.app.request('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ publicKey, proof }) })
    }
    t.host.context.selfRegistration = true
    try {
      await refused(await selfRegister(revokedUser), 401, 'KEY_REVOKED')
      await refused(await submit(t.host, sign(t.host, revokedUser, blockProgram())), 401, 'KEY_REVOKED')
      expect((await selfRegister(newUser())).status).toBe(201)
    } finally {
      t.host.context.selfRegistration = false
    }
  })

  test('a revoked operator key is refused even when it is also configured at start', async () => {
    const second = newUser()
    const configured = t.host.context.operatorKeys
    t.host.context.operatorKeys = new Map([...configured, [second.kid, second.publicKey]])
    try {
      const { registerKey } = await import('./helpers.js')
      await registerKey(t.host, t.operator, second.publicKey, 'operator')
      expect((await operatorRequest(t.host, second, 'GET', '/v1/keys')).status).toBe(200)
      const revoke = await operatorRequest(t.host, t.operator, 'DELETE', `/v1/keys/${second.kid}`, { reason: 'leaked' })
      expect(await revoke.json()).toEqual({ kid: second.kid, revoked: true })
      await refused(await operatorRequest(t.host, second, 'GET', '/v1/keys'), 401, 'KEY_REVOKED')
      expect((await operatorRequest(t.host, t.operator, 'GET', '/v1/keys')).status).toBe(200)
    } finally {
      t.host.context.operatorKeys = configured
    }
  })
})

describe('bodies and programs', () => {
  test('oversized body is refused before parsing', async () => {
    await refused(await submit(t.host, new Uint8Array(100 * 1024)), 413, 'PAYLOAD_TOO_LARGE')
    await stillServes()
  })

  test('malformed CBOR, wrong media type', async () => {
    const garbage = await submit(t.host, new Uint8Array([0xd2, 0x84, 0xff, 0x00, 0x13]))
    expect(garbage.status).toBe(400)
    expect(['DECODE_FAILED', 'ENVELOPE_INVALID']).toContain((await garbage.json() as { code: string }).code)
    const notArray = await submit(t.host, encodeCbor({ hello: 'world' }))
    expect(notArray.status).toBe(400)
    const json = await t.host.app.request('/v1/jobs', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    await refused(json, 415, 'UNSUPPORTED_MEDIA_TYPE')
    await stillServes()
  })

  test('unknown module: PROGRAM_INVALID naming the node', async () => {
    const program = blockProgram()
    program.nodes[0] = ['read', { site: 'transformer.h.42', port: 'output', invoke: 0 }, []]
    const details = await refused(await submit(t.host, sign(t.host, t.user, program)), 400, 'PROGRAM_INVALID')
    expect(JSON.stringify(details.issues)).toContain('transformer.h.42')
  })

  test('too many nodes', async () => {
    const many = blockProgram([1, 2, 3], 0, Array.from({ length: 45 }, () => ['neg', {}, [0]] as [string, Record<string, never>, number[]]))
    const details = await refused(await submit(t.host, sign(t.host, t.user, many)), 413, 'PAYLOAD_TOO_LARGE')
    expect(details).toMatchObject({ maxProgramNodes: 40 })
    await stillServes()
  })
})

describe('limits that need a queue', () => {
  let q: TestHost
  beforeAll(async () => { q = await startTestHost({ limits: { batchWindowMs: 400, maxConcurrentJobsPerKey: 2, maxProgramCost: 1000 } }) })
  afterAll(async () => { await q.host.close() })

  test('program cost from the op table', async () => {
    const costly = blockProgram([1, 2, 3, 4, 5], 0, [['transpose', { perm: [0, 2, 1] }, [0]], ['matmul', {}, [0, 2]], ['save', { name: 'gram' }, [3]]])
    const details = await refused(await submit(q.host, sign(q.host, q.user, costly)), 413, 'PAYLOAD_TOO_LARGE')
    expect(details).toMatchObject({ maxProgramCost: 1000 })
  })

  test('concurrent jobs per key: the third queued job is RATE_LIMITED, and the first two still complete', async () => {
    const first = await submit(q.host, sign(q.host, q.user, blockProgram()))
    const second = await submit(q.host, sign(q.host, q.user, blockProgram()))
    expect([first.status, second.status]).toEqual([202, 202])
    const details = await refused(await submit(q.host, sign(q.host, q.user, blockProgram())), 429, 'RATE_LIMITED')
    expect(details).toMatchObject({ maxConcurrentJobsPerKey: 2 })
    const other = newUser()
    const { registerKey } = await import('./helpers.js')
    await registerKey(q.host, q.operator, other.publicKey)
    expect((await submit(q.host, sign(q.host, other, blockProgram()))).status).toBe(202)
    await q.host.context.scheduler.whenIdle()
    const job = (await first.json() as { job: string }).job
    expect(await (await q.host.app.request(`/v1/jobs/${job}`)).json()).toMatchObject({ state: 'completed' })
  })

  test('cancelling a queued job', async () => {
    const accepted = await (await submit(q.host, sign(q.host, q.user, blockProgram()))).json() as { job: string }
    const cancelled = await (await q.host.app.request(`/v1/jobs/${accepted.job}`, { method: 'DELETE' })).json()
    expect(cancelled).toMatchObject({ state: 'cancelled', cancelled: true })
    const result = await q.host.app.request(`/v1/jobs/${accepted.job}/result`)
    expect(result.status).toBe(409)
    expect(await result.json()).toMatchObject({ code: 'JOB_CANCELLED' })
  })
})

describe('replay at the edge of the envelope lifetime', () => {
  let clock = Date.now()
  let r: TestHost
  beforeAll(async () => { r = await startTestHost({ limits: { batchWindowMs: 0 }, now: () => clock }) })
  afterAll(async () => { await r.host.close() })

  test('a nonce is remembered through the last second in which its envelope is accepted', async () => {
    const iat = Math.floor(clock / 1000)
    const envelope = sign(r.host, r.user, blockProgram(), { iat, ttlSeconds: 30 })
    clock = (iat + 30 + r.host.context.limits.skewSeconds) * 1000 + 500 // exp + skew, half a second in: still valid
    expect((await submit(r.host, envelope)).status).toBe(202)
    await refused(await submit(r.host, envelope), 401, 'NONCE_REPLAYED')
    await r.host.context.scheduler.whenIdle()
  })
})
