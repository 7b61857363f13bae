/**
 * Issue #9 (adversarial review), provider items 1, 3, 4, 5 and 6: amplification limits in every policy, the store's
 * size guard, memory after big jobs, text size before tokenizing (off the HTTP thread), generate-mode egress estimates,
 * the envelope lifetime cap, and no 5xx (nor host paths) for malformed operator input.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { runInNewContext } from 'node:vm'
import { setFlagsFromString } from 'node:v8'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { toHex, type Program } from '@weft/core'
import { DEFAULT_LIMITS, STORE_MAX_RESULT_BYTES, allowListPolicy, closedModelPolicy, openPolicy, type HostInit } from '../src/index.js'
import { blockProgram, newUser, operatorRequest, registerKey, sign, startTestHost, submit, type TestHost } from './helpers.js'

async function refused (response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const body = await response.json() as { code: string; message: string; details: Record<string, unknown> }
  expect({ status: response.status, code: body.code, message: body.message }).toMatchObject({ status, code })
  return body.details
}

/** `names` saves of lm_head's output (logits, [1, tokens, 4096] float32 on demo-gpt2) for one invoke of `tokens` ids. */
function logitSaves (names: number, tokens = 256): Program {
  const nodes: Program['nodes'] = [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []]]
  for (let i = 0; i < names; i++) nodes.push(['save', { name: `logits_${i}` }, [0]])
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: Array.from({ length: tokens }, (_, i) => (i * 7) % 4096) }], nodes }
}

const LOGITS_256 = 256 * 4096 * 4

describe('amplification: default result limits in every policy, refused before running', () => {
  const allowed = newUser()
  const policies: Record<string, NonNullable<HostInit['policies']>> = {
    open: [openPolicy()],
    'allow-list': [allowListPolicy({ keys: [allowed.kid] })],
    closed: [closedModelPolicy({ forbiddenOps: [] })],
  }
  for (const [name, policy] of Object.entries(policies)) {
    test(`${name}: lm_head at 256 tokens under 300 names, and under 200 names, is refused fast with RESULT_TOO_LARGE`, async () => {
      const t = await startTestHost({ policies: policy })
      if (name === 'allow-list') {
        await registerKey(t.host, t.operator, allowed.publicKey)
        t.user = allowed
      }
      try {
        const started = performance.now()
        const count = await refused(await submit(t.host, sign(t.host, t.user, logitSaves(300))), 413, 'RESULT_TOO_LARGE')
        expect(count).toEqual({ limit: 'maxSaves', maxSaves: DEFAULT_LIMITS.maxSaves, saves: 300 })
        const bytes = await refused(await submit(t.host, sign(t.host, t.user, logitSaves(200))), 413, 'RESULT_TOO_LARGE')
        expect(bytes).toEqual({ limit: 'maxResultBytesPerJob', limitBytes: DEFAULT_LIMITS.maxResultBytesPerJob, estimatedBytes: 200 * LOGITS_256 })
        expect(performance.now() - started).toBeLessThan(5000) // refused at admission: nothing ran (running it took ~25 s)
        expect(t.host.context.store.counts()).toEqual({ queued: 0, running: 0 })
        // the same host still runs an ordinary job
        expect((await submit(t.host, sign(t.host, t.user, blockProgram()), 10)).status).toBe(200)
      } finally { await t.host.close() }
    })
  }

  test('2,000 saves of a small read are refused (maxSaves), however small each is', async () => {
    const t = await startTestHost({ policies: [openPolicy()] })
    try {
      const program = blockProgram([1, 2, 3])
      program.nodes = [program.nodes[0]!, ...Array.from({ length: 2000 }, (_, i) => ['save', { name: `s${i}` }, [0]] as Program['nodes'][number])]
      expect(await refused(await submit(t.host, sign(t.host, t.user, program)), 413, 'RESULT_TOO_LARGE')).toMatchObject({ limit: 'maxSaves', saves: 2000 })
    } finally { await t.host.close() }
  })

  test('estimated result bytes in flight per key: the job that would exceed them is RATE_LIMITED naming the limit', async () => {
    const one = 5 * 256 * 4 // blockProgram: [1, 5, 256] float32
    const t = await startTestHost({ limits: { batchWindowMs: 800, maxResultBytesInFlightPerKey: 2 * one + 100 } })
    try {
      expect((await submit(t.host, sign(t.host, t.user, blockProgram()))).status).toBe(202)
      expect((await submit(t.host, sign(t.host, t.user, blockProgram()))).status).toBe(202)
      const details = await refused(await submit(t.host, sign(t.host, t.user, blockProgram())), 429, 'RATE_LIMITED')
      expect(details).toMatchObject({ limit: 'maxResultBytesInFlightPerKey', limitBytes: 2 * one + 100, inFlightBytes: 2 * one, estimatedBytes: one })
      const other = newUser() // another key's budget is its own
      await registerKey(t.host, t.operator, other.publicKey)
      expect((await submit(t.host, sign(t.host, other, blockProgram()))).status).toBe(202)
      await t.host.context.scheduler.whenIdle()
      expect((await submit(t.host, sign(t.host, t.user, blockProgram()))).status).toBe(202) // ended jobs free it
      await t.host.context.scheduler.whenIdle()
    } finally { await t.host.close() }
  })

  test('the limits are published in /v1/policy, and limits beyond what the store holds are refused at start', async () => {
    const t = await startTestHost()
    try {
      const policy = await (await t.host.app.request('/v1/policy')).json() as { limits: Record<string, number> }
      expect(policy.limits).toMatchObject({
        maxResultBytesPerJob: DEFAULT_LIMITS.maxResultBytesPerJob, maxResultBytesInFlightPerKey: DEFAULT_LIMITS.maxResultBytesInFlightPerKey,
        maxSaves: DEFAULT_LIMITS.maxSaves, maxTextBytes: DEFAULT_LIMITS.maxTextBytes, maxEnvelopeLifetimeSeconds: 3600,
      })
      // the store's own guard: a value SQLite cannot hold is a typed error, never the driver's "too big"
      const row = { id: 'job_x', kid: t.user.kid, model: 'demo-gpt2', programDigest: '', requestDigest: '' } as Parameters<typeof t.host.context.store.completeJob>[0]
      const huge = { byteLength: STORE_MAX_RESULT_BYTES + 1 } as Uint8Array // its length is all the guard reads
      expect(() => t.host.context.store.completeJob(row, { saves: huge, receipt: new Uint8Array(), egressBytes: 0, stats: null, edits: [], revision: 'r' }, Date.now(), 1000))
        .toThrow(expect.objectContaining({ code: 'RESULT_TOO_LARGE' }))
    } finally { await t.host.close() }
    await expect(startTestHost({ limits: { maxResultBytesPerJob: STORE_MAX_RESULT_BYTES + 1 } })).rejects.toThrow(/maxResultBytesPerJob/)
  })

  test('memory returns near its baseline after big jobs under the limit (result buffers are not kept)', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const t = await startTestHost({ policies: [openPolicy()] })
    try {
      const big = logitSaves(6) // 6 × 4 MiB = 24 MiB, under the 64 MiB default
      const run = async (): Promise<void> => {
        const response = await submit(t.host, sign(t.host, t.user, big), 30)
        expect(response.status).toBe(200)
        expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(6 * LOGITS_256)
      }
      await run() // compiles and caches the graph
      gc(); gc()
      const baseline = process.memoryUsage().arrayBuffers
      for (let i = 0; i < 2; i++) await run()
      await new Promise(resolve => setTimeout(resolve, 50))
      gc(); gc()
      const after = process.memoryUsage().arrayBuffers
      // two 24 MiB results went through (engine tensors, CBOR, the response): less than half of one is left
      expect(after - baseline).toBeLessThan(6 * LOGITS_256 / 2)
    } finally { await t.host.close() }
  })
})

describe('generate-mode egress is estimated (generated tokens), so budgets refuse before running', () => {
  let t: TestHost
  beforeAll(async () => { t = await startTestHost({ policies: [closedModelPolicy({ perJobCap: 100, forbiddenOps: [] })] }) })
  afterAll(async () => { await t.host.close() })

  const generate = (maxNewTokens: number, invokes = 2, nodes: Program['nodes'] = []): Program => ({
    version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'generate', generate: { maxNewTokens, strategy: 'greedy' },
    invokes: Array.from({ length: invokes }, () => ({ ids: [464, 3139, 286] })), nodes,
  })

  test('32 new tokens × 2 invokes (512 bytes) is refused by a 100-byte per-job cap at admission', async () => {
    const details = await refused(await submit(t.host, sign(t.host, t.user, generate(32))), 429, 'EGRESS_BUDGET_EXCEEDED')
    expect(details).toMatchObject({ limit: 'per-job', estimatedBytes: 2 * 32 * 8 })
    expect(t.host.context.store.counts()).toEqual({ queued: 0, running: 0 })
  })

  test('user saves at a step count too, and a job under the cap is admitted with its estimate', async () => {
    const withSave = generate(2, 1, [['read', { site: 'transformer.h.0', port: 'output', invoke: 0, step: 1 }, []], ['save', { name: 'h' }, [0]]])
    expect(await refused(await submit(t.host, sign(t.host, t.user, withSave)), 429, 'EGRESS_BUDGET_EXCEEDED')).toMatchObject({ estimatedBytes: 256 * 4 + 2 * 8 })
    const small = await submit(t.host, sign(t.host, t.user, generate(4, 1)))
    expect(small.status).toBe(202)
    expect(await small.json()).toMatchObject({ estimatedEgressBytes: 4 * 8 })
    await t.host.context.scheduler.whenIdle()
  })
})

describe('envelope lifetime', () => {
  let t: TestHost
  beforeAll(async () => { t = await startTestHost({ limits: { maxEnvelopeLifetimeSeconds: 3600 } }) })
  afterAll(async () => { await t.host.close() })

  test('a 10-year exp is refused with MESSAGE_LIFETIME_TOO_LONG; an hour is accepted', async () => {
    const tenYears = 10 * 365 * 86400
    const details = await refused(await submit(t.host, sign(t.host, t.user, blockProgram(), { ttlSeconds: tenYears })), 401, 'MESSAGE_LIFETIME_TOO_LONG')
    expect(details).toEqual({ lifetimeSeconds: tenYears, maxLifetimeSeconds: 3600 })
    // an old iat does not get around it: the lifetime is exp − iat
    const iat = Math.floor(Date.now() / 1000) - 30
    await refused(await submit(t.host, sign(t.host, t.user, blockProgram(), { iat, ttlSeconds: 3601 })), 401, 'MESSAGE_LIFETIME_TOO_LONG')
    expect((await submit(t.host, sign(t.host, t.user, blockProgram(), { ttlSeconds: 3600 }), 10)).status).toBe(200)
  })
})

describe('malformed input is a 4xx with a code on every route, never a 5xx nor a host path', () => {
  let t: TestHost
  beforeAll(async () => { t = await startTestHost() })
  afterAll(async () => { await t.host.close() })

  test('POST /v1/keys with publicKey {"toString":1} is 400 DECODE_FAILED', async () => {
    const response = await operatorRequest(t.host, t.operator, 'POST', '/v1/keys', { publicKey: { toString: 1 } })
    expect(await refused(response, 400, 'DECODE_FAILED')).toMatchObject({ field: 'publicKey' })
    const self = await t.host.app.request('/v1/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"publicKey":{"toString":1},"proof":"zz"}' })
    expect(self.status).toBeLessThan(500)
  })

  test('a revision swap to an unloadable path is a 4xx that does not echo the path; the old revision stays served', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'weft-secret-place-'))
    writeFileSync(path.join(dir, 'config.json'), '{"model_type": "not-a-family"}')
    for (const target of [dir, path.join(dir, 'missing.onnx'), path.join(dir, 'config.json')]) {
      const response = await operatorRequest(t.host, t.operator, 'PUT', '/v1/models/demo-gpt2/revision', { path: target })
      const text = await response.text()
      expect(response.status, text).toBeGreaterThanOrEqual(400)
      expect(response.status, text).toBeLessThan(500)
      expect(JSON.parse(text)).toMatchObject({ code: 'MODEL_LOAD_FAILED', details: { model: 'demo-gpt2' } })
      expect(text).not.toContain('weft-secret-place')
      expect(text).not.toContain(tmpdir())
    }
    expect((await submit(t.host, sign(t.host, t.user, blockProgram()), 10)).status).toBe(200)
  })

  const shapes: unknown[] = [
    null, [], 'text', 42, true, {}, { toString: 1 }, { valueOf: 1 }, { publicKey: { toString: 1 } }, { publicKey: ['00'] },
    { publicKey: 'zz' }, { publicKey: '00', proof: { toString: 1 } }, { publicKey: toHex(new Uint8Array(32)), proof: 'abc' },
    { reason: { toString: 1 } }, { reason: 7 }, { path: { toString: 1 } }, { path: ['a'] }, { path: '' }, { name: { toString: 1 }, nodes: [] },
    { nodes: { length: 1e9 } }, { nodes: [['write', { toString: 1 }, []]] }, { nodes: [['write', { site: { toString: 1 }, port: 'output', invoke: 0 }, [0]]] },
    { nodes: [['const', { value: { toString: 1 } }, []], ['write', { site: 'transformer.h.0', port: 'output', invoke: 0 }, [0]]] },
    { nodes: [['write', { site: 'transformer.h.0', port: 'output', invoke: { toString: 1 } }, []]] },
    { __proto__: { publicKey: '00' } }, { constructor: { prototype: 1 } },
  ]
  const routes: [string, string][] = [
    ['POST', '/v1/keys'], ['DELETE', '/v1/keys/ed25519:0000'], ['POST', '/v1/models/demo-gpt2/edits'], ['DELETE', '/v1/models/demo-gpt2/edits/e'],
    ['PUT', '/v1/models/demo-gpt2/revision'], ['GET', '/v1/audit'], ['GET', '/v1/keys'], ['POST', '/v1/models/nope/edits'],
  ]

  test('every operator route, signed, with each malformed JSON shape: no 5xx', async () => {
    const failures: string[] = []
    for (const [method, url] of routes) {
      for (const shape of shapes) {
        const bytes = new TextEncoder().encode(JSON.stringify(shape))
        const signed = await operatorRequest(t.host, t.operator, method, url, method === 'GET' ? undefined : shape)
        const unsigned = await t.host.app.request(url, { method, headers: { 'content-type': 'application/json' }, ...(method === 'GET' ? {} : { body: bytes }) })
        const raw = method === 'GET' ? null : await t.host.app.request(url, { method, headers: { 'content-type': 'application/json' }, body: '{"publicKey": ' })
        for (const response of [signed, unsigned, raw]) {
          if (response === null) continue
          const body = await response.text()
          if (response.status >= 500) failures.push(`${method} ${url} ${JSON.stringify(shape)} → ${response.status} ${body}`)
          else if (response.status >= 400) expect(JSON.parse(body).code, body).toMatch(/^[A-Z_]+$/)
        }
      }
    }
    expect(failures).toEqual([])
    expect((await t.host.app.request('/v1/health')).status).toBe(200)
  })
})

describe('text invokes: size checked first, tokenized off the HTTP thread', () => {
  let t: TestHost
  let url: string
  beforeAll(async () => {
    t = await startTestHost({ limits: { maxTextBytes: 2 ** 20 } })
    url = (await t.host.listen()).url
  })
  afterAll(async () => { await t.host.close() })

  const textProgram = (text: string): Program => ({ ...blockProgram(), invokes: [{ text }] })

  test('text over maxTextBytes is refused with PAYLOAD_TOO_LARGE naming the numbers', async () => {
    const text = 'é'.repeat(2 ** 19 + 1) // 2 bytes each in UTF-8: one character counts as two
    const started = performance.now()
    expect(await refused(await submit(t.host, sign(t.host, t.user, textProgram(text))), 413, 'PAYLOAD_TOO_LARGE'))
      .toEqual({ limit: 'maxTextBytes', textBytes: 2 ** 20 + 2, maxTextBytes: 2 ** 20 })
    expect(performance.now() - started).toBeLessThan(1000) // not tokenized (that takes seconds for 1 MB)
  })

  test('text is tokenized with the model tokenizer: the same ids as the backend, the same activations', async () => {
    const text = 'The capital of France is'
    const ids = t.host.context.registry.get('demo-gpt2').handle.tokenize(text)
    const byText = await (await submit(t.host, sign(t.host, t.user, textProgram(text)), 10)).arrayBuffer()
    const byIds = await (await submit(t.host, sign(t.host, t.user, blockProgram(ids)), 10)).arrayBuffer()
    const { decodeCbor } = await import('@weft/core')
    const saves = (bytes: ArrayBuffer): unknown => decodeCbor((decodeCbor(new Uint8Array(bytes)) as { saves: Uint8Array }).saves)
    expect(saves(byText)).toEqual(saves(byIds))
  })

  test('while large-but-allowed texts are tokenized, /v1/health stays fast', async () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(11_000) // 495 kB, ~0.6 s to tokenize here
    const envelopes = [0, 1, 2].map(() => sign(t.host, t.user, textProgram(text)))
    const health = async (): Promise<number> => {
      const started = performance.now()
      expect((await fetch(`${url}/v1/health`)).status).toBe(200)
      return performance.now() - started
    }
    const idle: number[] = []
    for (let i = 0; i < 5; i++) idle.push(await health())
    let done = false
    const submissions = Promise.all(envelopes.map(async envelope => await fetch(`${url}/v1/jobs`, { method: 'POST', body: envelope as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/cose' } })))
      .finally(() => { done = true })
    const busy: number[] = []
    while (!done) {
      busy.push(await health())
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    // each text is tokenized, then refused for its length (~100k tokens; the model takes 256)
    for (const response of await submissions) {
      expect(await refused(response, 400, 'PROGRAM_INVALID')).toMatchObject({ invoke: 0 })
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    expect(busy.length).toBeGreaterThan(5)
    expect(median(busy), `idle median ${median(idle).toFixed(1)} ms, busy ${busy.map(x => x.toFixed(0)).join(' ')}`).toBeLessThan(200)
  })
})
