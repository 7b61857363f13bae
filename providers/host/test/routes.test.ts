/** HTTP-level route tests through app.request(): discovery, submit → events → result with a verified receipt, edits, revisions. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import path from 'node:path'
import { decodeCbor, requestDigest, resultDigest, verifyReceipt, type Manifest, type Tensor } from '@weft/core'
import { REPO, blockProgram, operatorRequest, sign, startTestHost, submit, type TestHost } from './helpers.js'

let t: TestHost
beforeAll(async () => { t = await startTestHost({ limits: { batchWindowMs: 0 } }) })
afterAll(async () => { await t.host.close() })

async function result (job: string): Promise<{ saves: Record<string, Tensor>; receipt: Uint8Array; body: Record<string, unknown> }> {
  const response = await t.host.app.request(`/v1/jobs/${job}/result`)
  expect(response.status).toBe(200)
  const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as Record<string, unknown>
  return { saves: decodeCbor(body.saves as Uint8Array) as Record<string, Tensor>, receipt: body.receipt as Uint8Array, body }
}

describe('discovery', () => {
  test('health, version, models, policy', async () => {
    const health = await (await t.host.app.request('/v1/health')).json() as Record<string, unknown>
    expect(health).toMatchObject({ status: 'ok', provider: t.host.providerId, models: 1 })
    const version = await (await t.host.app.request('/v1/version')).json() as Record<string, unknown>
    expect(version).toMatchObject({ protocol: [1], provider: t.host.providerId, programVersion: 1 })
    const models = await (await t.host.app.request('/v1/models')).json() as { models: Record<string, unknown>[] }
    expect(models.models[0]).toMatchObject({ name: 'demo-gpt2', family: 'gpt2', tokenizer: true, edits: [] })
    const policy = await (await t.host.app.request('/v1/policy')).json() as Record<string, unknown>
    expect(policy).toMatchObject({ provider: t.host.providerId, limits: { skewSeconds: 60 } })
  })

  test('manifest as JSON and CBOR, tokenizer.json', async () => {
    const json = await (await t.host.app.request('/v1/models/demo-gpt2/manifest')).json() as Manifest
    const cbor = await t.host.app.request('/v1/models/demo-gpt2/manifest', { headers: { accept: 'application/cbor' } })
    expect(cbor.headers.get('content-type')).toBe('application/cbor')
    const decoded = decodeCbor(new Uint8Array(await cbor.arrayBuffer())) as Manifest
    expect(decoded.revision).toBe(json.revision)
    expect(decoded.modules.map(m => m.path)).toEqual(json.modules.map(m => m.path))
    const tokenizer = await t.host.app.request('/v1/models/demo-gpt2/tokenizer')
    expect(JSON.parse(await tokenizer.text()).model.type).toBe('BPE')
    const missing = await t.host.app.request('/v1/models/nope/manifest')
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ code: 'MODEL_NOT_FOUND' })
  })

  test('protocol negotiation: 426 when no version is shared; unknown routes are typed 404s', async () => {
    const bad = await t.host.app.request('/v1/health', { headers: { 'weft-protocol': '2' } })
    expect(bad.status).toBe(426)
    expect(await bad.json()).toMatchObject({ code: 'PROTOCOL_VERSION_UNSUPPORTED', details: { supported: [1] } })
    const good = await t.host.app.request('/v1/health', { headers: { 'weft-protocol': '2, 1' } })
    expect(good.status).toBe(200)
    expect(good.headers.get('weft-protocol')).toBe('1')
    const none = await t.host.app.request('/v1/nothing')
    expect(none.status).toBe(404)
    expect(await none.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' })
  })
})

describe('jobs', () => {
  test('submit → status → SSE events → result with a receipt that binds request and result', async () => {
    const envelope = sign(t.host, t.user, blockProgram())
    const accepted = await submit(t.host, envelope)
    expect(accepted.status).toBe(202)
    const body = await accepted.json() as { job: string; position: number; estimatedEgressBytes: number }
    expect(body.estimatedEgressBytes).toBe(5 * 256 * 4)
    const events = await (await t.host.app.request(`/v1/jobs/${body.job}/events`)).text()
    const names = [...events.matchAll(/^event: (.+)$/gm)].map(m => m[1])
    expect(names[0]).toBe('job-received')
    expect(names.at(-1)).toBe('job-end')
    const status = await (await t.host.app.request(`/v1/jobs/${body.job}`)).json() as Record<string, unknown>
    expect(status).toMatchObject({ job: body.job, state: 'completed', attempts: 1 })
    const { saves, receipt } = await result(body.job)
    expect(saves.h!.shape).toEqual([1, 5, 256])
    const fields = verifyReceipt(receipt, t.host.publicKey)
    expect(fields).toMatchObject({ provider: t.host.providerId, job: body.job, model: 'demo-gpt2', egressBytes: 5120, edits: [] })
    expect(fields.requestDigest).toBe(requestDigest(envelope))
    expect(fields.resultDigest).toBe(resultDigest(saves))
  })

  test('Prefer: wait answers with the result in one round trip', async () => {
    const response = await submit(t.host, sign(t.host, t.user, blockProgram()), 10)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/cbor')
    const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { job: string; receipt: Uint8Array; egress: { bytes: number } }
    expect(body.egress.bytes).toBe(5120)
    expect(verifyReceipt(body.receipt, t.host.publicKey).job).toBe(body.job)
  })

  test('a result that is not ready is JOB_NOT_READY; an unknown job is JOB_NOT_FOUND', async () => {
    const missing = await t.host.app.request('/v1/jobs/job_nope/result')
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ code: 'JOB_NOT_FOUND' })
  })
})

describe('event streams', () => {
  test('one keep-alive timer per stream, however many events wake it', async () => {
    const done = await submit(t.host, sign(t.host, t.user, blockProgram([7])), 10)
    const template = t.host.context.store.getJob(done.headers.get('weft-job')!)!
    // a job the scheduler does not know: it stays queued, so its stream stays open until we end it
    const id = `job_${'ab'.repeat(16)}`
    t.host.context.store.insertJob({ ...template, id, state: 'queued', attempts: 0, startedAt: null, endedAt: null, error: null })
    const original = globalThis.setTimeout
    let keepAliveTimers = 0 // timers a stream arms to send its keep-alive comment
    globalThis.setTimeout = ((handler: () => void, ms?: number, ...rest: unknown[]) => {
      if (ms === 15_000) keepAliveTimers++
      return (original as (...args: unknown[]) => NodeJS.Timeout)(handler, ms, ...rest)
    }) as typeof setTimeout
    try {
      const response = await t.host.app.request(`/v1/jobs/${id}/events`)
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let text = ''
      const until = async (needle: string): Promise<void> => { while (!text.includes(needle)) { const { value, done } = await reader.read(); if (done) return; text += decoder.decode(value) } }
      const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 20)) } // the stream goes back to waiting
      await until('event: job-queued')
      await settle()
      for (let i = 0; i < 5; i++) {
        t.host.context.events.emit(id, { event: 'job-progress', data: { job: id, stage: `s${i}` } })
        await until(`"stage":"s${i}"`)
        await settle()
      }
      t.host.context.events.emit(id, { event: 'job-error', data: { job: id, state: 'cancelled', error: { code: 'JOB_CANCELLED', message: 'test', details: {} } } })
      await until('event: job-error')
      expect(keepAliveTimers).toBe(1)
    } finally {
      globalThis.setTimeout = original
      t.host.context.scheduler.cancel(t.host.context.store.getJob(id)!)
    }
  })
})

describe('operator: provider-wide edits and revision swaps', () => {
  const mlp = 'transformer.h.1.mlp'
  const mlpProgram = (): ReturnType<typeof blockProgram> => ({
    ...blockProgram(), nodes: [['read', { site: mlp, port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]],
  })

  test('an edit zeroing an MLP applies to every job and is named in receipts; removing it restores the model', async () => {
    const zero = { name: 'zero-mlp-1', nodes: [['read', { site: mlp, port: 'output' }, []], ['sub', {}, [0, 0]], ['write', { site: mlp, port: 'output' }, [1]]] }
    const added = await operatorRequest(t.host, t.operator, 'POST', '/v1/models/demo-gpt2/edits', zero)
    expect(added.status).toBe(201)
    const edit = await added.json() as { id: string; digest: string }
    const response = await submit(t.host, sign(t.host, t.user, { ...mlpProgram(), invokes: [{ ids: [1, 2, 3] }, { ids: [4, 5] }], nodes: [...mlpProgram().nodes, ['read', { site: mlp, port: 'output', invoke: 1 }, []], ['save', { name: 'h2' }, [2]]] }), 10)
    const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { saves: Uint8Array; receipt: Uint8Array }
    const saves = decodeCbor(body.saves) as Record<string, Tensor>
    expect(Array.from(saves.h!.data as Float32Array).every(v => v === 0)).toBe(true)
    expect(Array.from(saves.h2!.data as Float32Array).every(v => v === 0)).toBe(true)
    expect(verifyReceipt(body.receipt, t.host.publicKey).edits).toEqual([`zero-mlp-1@${edit.digest}`])
    const listed = await (await t.host.app.request('/v1/models/demo-gpt2/edits')).json() as { edits: { id: string }[] }
    expect(listed.edits.map(e => e.id)).toEqual([edit.id])

    expect((await operatorRequest(t.host, t.operator, 'DELETE', `/v1/models/demo-gpt2/edits/${edit.id}`)).status).toBe(200)
    const after = await submit(t.host, sign(t.host, t.user, mlpProgram()), 10)
    const afterBody = decodeCbor(new Uint8Array(await after.arrayBuffer())) as { saves: Uint8Array; receipt: Uint8Array }
    const afterSaves = decodeCbor(afterBody.saves) as Record<string, Tensor>
    expect(Array.from(afterSaves.h!.data as Float32Array).some(v => v !== 0)).toBe(true)
    expect(verifyReceipt(afterBody.receipt, t.host.publicKey).edits).toEqual([])
  })

  test('an edit that does not type-check is refused with PROGRAM_INVALID; operator routes need an operator signature', async () => {
    const bad = await operatorRequest(t.host, t.operator, 'POST', '/v1/models/demo-gpt2/edits', { name: 'x', nodes: [['read', { site: 'transformer.h.99' }, []], ['write', { site: 'transformer.h.0' }, [0]]] })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ code: 'PROGRAM_INVALID' })
    const unsigned = await t.host.app.request('/v1/models/demo-gpt2/edits', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    expect(unsigned.status).toBe(401)
    expect(await unsigned.json()).toMatchObject({ code: 'SIGNATURE_INVALID' })
  })

  test('swapping the revision changes what receipts name; programs pinned to the old revision are refused', async () => {
    const before = verifyReceipt((decodeCbor(new Uint8Array(await (await submit(t.host, sign(t.host, t.user, blockProgram()), 10)).arrayBuffer())) as { receipt: Uint8Array }).receipt, t.host.publicKey)
    const swapped = await operatorRequest(t.host, t.operator, 'PUT', '/v1/models/demo-gpt2/revision', { path: path.join(REPO, 'models/demo-gpt2-onnx/model.onnx') })
    expect(swapped.status).toBe(200)
    const info = await swapped.json() as { revision: string; previous: string }
    expect(info.previous).toBe(before.modelRevision)
    expect(info.revision).not.toBe(before.modelRevision)
    const after = decodeCbor(new Uint8Array(await (await submit(t.host, sign(t.host, t.user, blockProgram()), 10)).arrayBuffer())) as { receipt: Uint8Array }
    expect(verifyReceipt(after.receipt, t.host.publicKey).modelRevision).toBe(info.revision)
    const pinned = await submit(t.host, sign(t.host, t.user, { ...blockProgram(), model: { name: 'demo-gpt2', revision: before.modelRevision } }))
    expect(pinned.status).toBe(404)
    expect(await pinned.json()).toMatchObject({ code: 'MODEL_NOT_FOUND', details: { served: info.revision } })
    const audit = await (await operatorRequest(t.host, t.operator, 'GET', '/v1/audit')).json() as { entries: { action: string; egressBytes: number | null; programDigest: string | null }[] }
    expect(audit.entries.map(e => e.action)).toEqual(expect.arrayContaining(['revision-swapped', 'edit-added', 'edit-removed', 'job-end', 'job-accepted', 'key-added']))
    expect(audit.entries.find(e => e.action === 'job-end')).toMatchObject({ egressBytes: expect.any(Number), programDigest: expect.stringMatching(/^sha256:/) })
  })
})
