/** The three shipped policies against a real store and engine: budgets before running, actual-byte ledger, horizon. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { decodeCbor, type Program, type Tensor } from '@weft/core'
import { allowListPolicy, closedModelPolicy, exfiltrationHorizonDays, openPolicy, parseBytes } from '../src/index.js'
import { blockProgram, newUser, registerKey, sign, startTestHost, submit, type TestHost } from './helpers.js'

async function code (response: Response): Promise<{ status: number; code: string; details: Record<string, unknown> }> {
  const body = await response.json() as { code: string; details: Record<string, unknown> }
  return { status: response.status, code: body.code, details: body.details }
}

/** Logit lens on an identity matrix: lm_head applied to I₂₅₆ returns the (transposed) embedding weights. */
function identityLensProgram (): Program {
  const eye = new Float32Array(256 * 256)
  for (let i = 0; i < 256; i++) eye[i * 256 + i] = 1
  const tensor: Tensor = { dtype: 'float32', shape: [256, 256], data: eye }
  return { ...blockProgram([1]), nodes: [['const', { value: tensor as never }, []], ['module_call', { module: 'lm_head' }, [0]], ['save', { name: 'weights' }, [1]]] }
}

test('parseBytes units', () => {
  expect([parseBytes('50MB'), parseBytes('2KiB'), parseBytes(7), parseBytes('1.5 GB')]).toEqual([50e6, 2048, 7, 1.5e9])
})

describe('closed-model policy', () => {
  let t: TestHost
  const perKey = 12_000
  beforeAll(async () => {
    t = await startTestHost({
      limits: { batchWindowMs: 0 },
      policies: [closedModelPolicy({ egressPerKeyPerDay: perKey, egressPerDay: '20MB', perJobCap: 4_500_000 })],
    })
  })
  afterAll(async () => { await t.host.close() })

  test('publishes its exfiltration horizon', async () => {
    const policy = await (await t.host.app.request('/v1/policy')).json() as { policies: Record<string, unknown>[] }
    const manifest = t.host.context.registry.get('demo-gpt2').manifest
    expect(policy.policies[0]).toMatchObject({ name: 'closed-model', egressPerKeyPerDay: perKey, egressPerDay: 20e6, forbiddenOps: ['module_call', 'param'] })
    const horizon = (policy.policies[0]!.exfiltrationHorizonDays as Record<string, number>)['demo-gpt2']!
    // a lower bound: casts are allowed, so an int8 scale-and-cast moves a parameter in 1 byte (test/horizon.test.ts)
    expect(horizon).toBeCloseTo(manifest.parameters * 1 / 20e6, 6)
    expect(exfiltrationHorizonDays(manifest, 20e6, 1)).toBe(horizon)
  })

  test('refuses ops that read weights (the default forbidden set) before running', async () => {
    const lens: Program = { ...blockProgram(), nodes: [['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []], ['module_call', { module: 'lm_head' }, [0]], ['save', { name: 'lens' }, [1]]] }
    const refusal = await code(await submit(t.host, sign(t.host, t.user, lens)))
    expect(refusal).toMatchObject({ status: 403, code: 'POLICY_DENIED', details: { forbiddenOps: ['module_call'], nodes: [1] } })
  })

  test('per-key budget: refused before running once the estimate exceeds what is left, with the remainder in details', async () => {
    const user = newUser()
    await registerKey(t.host, t.operator, user.publicKey)
    for (let i = 0; i < 2; i++) {
      const response = await submit(t.host, sign(t.host, user, blockProgram()), 10)
      expect(response.status, await response.clone().text()).toBe(200)
    }
    const refusal = await code(await submit(t.host, sign(t.host, user, blockProgram())))
    expect(refusal).toMatchObject({ status: 429, code: 'EGRESS_BUDGET_EXCEEDED', details: { limit: 'per-key-per-day', remainingBytes: perKey - 2 * 5120, estimatedBytes: 5120 } })
    const smaller = { ...blockProgram([1]) }
    expect((await submit(t.host, sign(t.host, user, smaller), 10)).status).toBe(200) // 1024 bytes still fit
    const egress = await (await t.host.app.request(`/v1/keys/${user.kid}/egress`)).json()
    expect(egress).toMatchObject({ usedToday: 2 * 5120 + 1024, reservedBytes: 0, remainingToday: perKey - 2 * 5120 - 1024 })
  })

  test('concurrent submissions reserve against the budget: those that arrive together cannot overrun it', async () => {
    const user = newUser()
    await registerKey(t.host, t.operator, user.publicKey)
    const responses = await Promise.all([0, 1, 2].map(async () => await submit(t.host, sign(t.host, user, blockProgram()))))
    expect(responses.map(r => r.status).sort()).toEqual([202, 202, 429]) // 2 × 5120 of 12 000 bytes
    await t.host.context.scheduler.whenIdle()
    const egress = await (await t.host.app.request(`/v1/keys/${user.kid}/egress`)).json() as { usedToday: number }
    expect(egress.usedToday).toBeLessThanOrEqual(perKey)
  })

})

describe('closed-model policy: aggregate budget and required reductions', () => {
  let t: TestHost
  beforeAll(async () => {
    t = await startTestHost({
      limits: { batchWindowMs: 0 },
      policies: [closedModelPolicy({ egressPerDay: 5_000_000, forbiddenOps: [], requiredReductions: { maxElementsPerSave: 256 * 4096 } })],
    })
  })
  afterAll(async () => { await t.host.close() })

  test('weights read indirectly (lm_head on an identity matrix) are charged byte for byte: once, then the aggregate budget holds', async () => {
    const first = await submit(t.host, sign(t.host, t.user, identityLensProgram()), 10)
    expect(first.status).toBe(200)
    const body = decodeCbor(new Uint8Array(await first.arrayBuffer())) as { egress: { bytes: number; remainingToday: number } }
    expect(body.egress).toEqual({ bytes: 4_194_304, remainingToday: 5_000_000 - 4_194_304 })
    const other = newUser()
    await registerKey(t.host, t.operator, other.publicKey)
    const refusal = await code(await submit(t.host, sign(t.host, other, identityLensProgram())))
    expect(refusal).toMatchObject({ code: 'EGRESS_BUDGET_EXCEEDED', details: { limit: 'per-day', remainingBytes: 5_000_000 - 4_194_304, estimatedBytes: 4_194_304 } })
  })

  test('saves above the required reduction are refused', async () => {
    const ids = Array.from({ length: 256 }, (_, i) => i)
    const wide: Program = { ...blockProgram(ids), nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['concat', { axis: 1 }, [0, 0]], ['save', { name: 'logits' }, [1]]] }
    const refusal = await code(await submit(t.host, sign(t.host, t.user, wide)))
    expect(refusal).toMatchObject({ code: 'POLICY_DENIED', details: { maxElementsPerSave: 256 * 4096 } })
  })
})

describe('allow-list and open policies', () => {
  let t: TestHost
  let listed: ReturnType<typeof newUser>
  beforeAll(async () => {
    listed = newUser()
    t = await startTestHost({ limits: { batchWindowMs: 0 }, policies: [allowListPolicy({ keys: [listed.kid] }), openPolicy({ rateLimit: { jobs: 2, perSeconds: 60 } })] })
    await registerKey(t.host, t.operator, listed.publicKey)
  })
  afterAll(async () => { await t.host.close() })

  test('a registered key off the list is denied; a listed key runs until its rate limit', async () => {
    expect(await code(await submit(t.host, sign(t.host, t.user, blockProgram())))).toMatchObject({ status: 403, code: 'POLICY_DENIED', details: { policy: 'allow-list' } })
    for (let i = 0; i < 2; i++) expect((await submit(t.host, sign(t.host, listed, blockProgram()), 10)).status).toBe(200)
    expect(await code(await submit(t.host, sign(t.host, listed, blockProgram())))).toMatchObject({ status: 429, code: 'RATE_LIMITED', details: { policy: 'open', retryAfterMs: expect.any(Number) } })
  })
})

describe('policy time limit', () => {
  test('a policy that never decides denies after policyTimeoutMs (naming it) and releases admission for the next request', async () => {
    let calls = 0
    const t = await startTestHost({
      limits: { batchWindowMs: 0, policyTimeoutMs: 150 },
      policies: [{
        specificationVersion: 'v1', name: 'hangs-once', summary: () => ({ name: 'hangs-once' }),
        admit: async () => calls++ === 0 ? await new Promise<never>(() => {}) : { allow: true },
      }],
    })
    try {
      const started = Date.now()
      const [hung, next] = await Promise.all([
        submit(t.host, sign(t.host, t.user, blockProgram())),
        new Promise<Response>(resolve => setTimeout(() => resolve(submit(t.host, sign(t.host, t.user, blockProgram([2]))) as Promise<Response>), 20)),
      ])
      expect(await code(hung)).toMatchObject({ status: 403, code: 'POLICY_DENIED', details: { policy: 'hangs-once', timeoutMs: 150 } })
      expect(Date.now() - started).toBeLessThan(2000)
      expect(next.status).toBe(202)
      const policy = await (await t.host.app.request('/v1/policy')).json() as { limits: Record<string, unknown> }
      expect(policy.limits.policyTimeoutMs).toBe(150)
      await t.host.context.scheduler.whenIdle()
    } finally { await t.host.close() }
  })
})

describe('policy summaries', () => {
  test('result responses read budgets from a cached summary (rebuilt only when the served models change); GET /v1/policy stays live', async () => {
    let calls = 0
    const t = await startTestHost({
      limits: { batchWindowMs: 0 },
      policies: [{
        specificationVersion: 'v1', name: 'counted', summary: () => { calls++; return { name: 'counted', egressPerKeyPerDay: 1e9 } },
        admit: () => ({ allow: true }),
      }],
    })
    try {
      const held = await submit(t.host, sign(t.host, t.user, blockProgram()), 10)
      expect(held.status).toBe(200)
      const job = held.headers.get('weft-job')!
      for (let i = 0; i < 3; i++) expect((await t.host.app.request(`/v1/jobs/${job}/result`)).status).toBe(200)
      const egress = await (await t.host.app.request(`/v1/keys/${t.user.kid}/egress`)).json() as { usedToday: number; remainingToday: number }
      expect(egress.remainingToday).toBe(1e9 - egress.usedToday)
      expect(calls).toBe(1)
      const policy = await (await t.host.app.request('/v1/policy')).json() as { policies: Record<string, unknown>[] }
      expect(policy.policies).toEqual([{ name: 'counted', egressPerKeyPerDay: 1e9 }])
      expect(calls).toBe(2)
      expect((await t.host.app.request(`/v1/jobs/${job}/result`)).status).toBe(200)
      expect(calls).toBe(2)
    } finally { await t.host.close() }
  })
})
