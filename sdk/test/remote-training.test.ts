/**
 * Issue #11 acceptance, remote: a provider on 127.0.0.1 (engine in a worker thread) and the SDK's remote executor.
 * 30 Adam steps in one signed request reproduce PyTorch's run (models/demo-gpt2/reference_training.json) with only
 * the loss curve crossing the wire; the trained vector stays on the provider as the caller's adapter and steers its
 * later traces and generations, nobody else's; a session's second trace uses a value of the first without it moving;
 * cancelling keeps the last completed step; sessions that cannot fit are refused before they run.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRequestEnvelope, toHex, type Program } from '@weft/core'
import { Weft, stack, type GPT2, type Model, type ParamRef, type RunProgress, type Tracer, type ValueProxy } from '../src/index.js'
import { connectRemote, type RemoteExecutor } from '../src/remote/index.js'
import { readSse } from '../src/remote/sse.js'
import { createHost, workerBackend, type Host } from '@weft/host'
import { DEMO, ONNX_BACKEND_MODULE, newUser, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'
import { REFERENCE as ref, adapterLoss, loraGeneration, loraLoss, loraTraining, rel, steeredGeneration, steeringTraining } from '../../providers/host/test/training-programs.js'

let host: Host
let url: string
const alice = newUser()
const bob = newUser()
/** a key whose jobs a policy limits to 3 s */
const carol = newUser()

beforeAll(async () => {
  host = await createHost({
    dbPath: tempDb('sdk-training'), models: [{ name: 'demo-gpt2', path: DEMO }], selfRegistration: true, limits: { batchWindowMs: 0 },
    backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) },
    policies: [{
      specificationVersion: 'v1', name: 'short-jobs-for-carol', summary: () => ({ name: 'short-jobs-for-carol' }),
      admit: ({ keyId }) => keyId === carol.kid ? { allow: true, limits: { timeoutMs: 3000 } } : { allow: true },
    }],
  })
  url = (await host.listen({ port: 0 })).url
})
afterAll(async () => { await host.close() })

/** Everything the client receives, byte for byte, and every request it makes. */
interface Wire { received: Uint8Array[]; requests: string[] }
function recordingFetch (wire: Wire): typeof fetch {
  return async (input, init) => {
    wire.requests.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`)
    const response = await fetch(input, init)
    if (response.body === null) return response
    const body = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ transform (chunk, out) { wire.received.push(new Uint8Array(chunk)); out.enqueue(chunk) } }))
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
}
const receivedBytes = (wire: Wire): Buffer => Buffer.concat(wire.received)
/** whether `values` (their float32 bytes, 16 at a time) appear anywhere in what the client received */
function crossed (wire: Wire, values: Float32Array): boolean {
  const all = receivedBytes(wire)
  for (let i = 0; i + 16 <= values.length; i += 16) if (all.indexOf(Buffer.from(values.buffer, values.byteOffset + i * 4, 64)) >= 0) return true
  return false
}

async function connect (user: typeof alice, wire?: Wire): Promise<{ executor: RemoteExecutor; model: Model<GPT2> }> {
  const executor = await connectRemote({ provider: url, key: toHex(user.secretKey), providerId: host.providerId, ...(wire === undefined ? {} : { fetch: recordingFetch(wire) }) })
  await executor.register()
  const model = await new Weft(executor).model<GPT2>('demo-gpt2')
  return { executor, model }
}

/** Steers every prompt with v at transformer.h.2; mean −log p(" Rome") at the last position. */
function steeredLoss (t: Tracer<GPT2>, v: ParamRef, prompts: readonly string[]): ValueProxy {
  const nll = prompts.map(p => t.invoke(p, (m) => {
    const h = m.transformer.h[2].output
    h.set(h.add(v))
    return m.lm_head.output.at(0, -1).logSoftmax(-1).at(ref.target_id).neg()
  }))
  return stack(nll as [ValueProxy, ...ValueProxy[]]).mean()
}

const tokenize = (text: string): number[] => host.context.registry.get('demo-gpt2').handle.tokenize(text)
const keptValues = (kid: string, name: string): Float32Array => {
  const row = host.context.adapters.get(kid, name)
  return host.context.adapters.files.read(row.file, row.digest).v!.data as Float32Array
}

describe('training on the provider', () => {
  test('30 Adam steps in one request equal PyTorch\'s run; each step streams; only the loss curve leaves; v is kept', async () => {
    const wire: Wire = { received: [], requests: [] }
    const { executor, model } = await connect(alice, wire)
    const before = (await executor.egress()).usedToday
    wire.received.length = 0
    wire.requests.length = 0
    const steps: { step: number; loss: number }[] = []
    const out = await model.session((s) => {
      const v = s.param('v', { shape: [256], init: 'zeros' })
      s.train((t) => steeredLoss(t, v, ref.prompts), { optimizer: { kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 }, steps: 30 })
      s.keep('rome')
    }, { onProgress: (e: RunProgress) => { if (e.stage === 'train-step') steps.push(e.detail as { step: number; loss: number }) } })

    expect(wire.requests.filter(r => r === 'POST /v1/jobs')).toHaveLength(1) // one signed request for all 30 steps
    const want = ref.steering_vector.loss_per_step
    expect(out.losses).toHaveLength(30)
    out.losses.forEach((loss, k) => expect(rel(loss, want[k]!), `step ${k + 1}: ${loss} vs PyTorch ${want[k]}`).toBeLessThanOrEqual(1e-4))
    expect(steps.map(s => s.step)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1))
    steps.forEach((s, k) => expect(Math.fround(s.loss)).toBe(out.losses[k]))
    expect(out.training).toEqual({ steps: 30, completed: 30, cancelled: false, finalLoss: steps[29]!.loss })

    // what left: the loss curve (30 float32) and nothing else, in the result and in the ledger
    expect(Object.keys(out.saves)).toEqual(['train.loss'])
    expect(out.egress?.bytes).toBe(30 * 4)
    expect((await executor.egress()).usedToday - before).toBe(30 * 4)
    // the trained vector stayed on the provider: equal to PyTorch's, and not one 16-float run of it crossed the wire
    expect(out.adapter).toMatchObject({ name: 'rome', bytes: 256 * 4, replaced: false })
    const v = keptValues(alice.kid, 'rome')
    let worst = 0
    ref.steering_vector.final_v.forEach((x, i) => { worst = Math.max(worst, rel(v[i]!, x, 1e-2)) })
    expect(worst).toBeLessThanOrEqual(1e-4)
    expect(crossed(wire, v)).toBe(false)
    expect(crossed(wire, Float32Array.from(out.losses))).toBe(true) // the check does find what did cross
    // the whole exchange: the loss curve, one event per step and the receipt — a few KiB, not the model's weights
    console.log(`remote 30-step training: ${receivedBytes(wire).length} bytes received in ${wire.requests.length} requests`)
    expect(receivedBytes(wire).length).toBeLessThan(16 * 1024)
  })

  test('the kept adapter steers its owner\'s later traces and generations; any other key is told it does not exist', async () => {
    const { executor, model } = await connect(alice)
    const again = await model.session((s) => {
      const v = s.param('v', { shape: [256], init: { adapter: 'rome' } })
      s.trace((t) => steeredLoss(t, v, ref.prompts).save('loss'))
    })
    expect(rel(again.saves.loss!.toFlat()[0]!, ref.steering_vector.final_loss_after_training)).toBeLessThanOrEqual(1e-4)
    expect(again.egress?.bytes).toBe(4)

    const france = 'The capital of France is'
    const steered = await executor.run(steeredGeneration(tokenize, france, { adapter: { name: 'rome', param: 'v' } }))
    const plain = await executor.run(steeredGeneration(tokenize, france, { zeros: true }))
    const first = (r: typeof steered): number => Number(r.saves['generated.0']!.data[0])
    expect(first(steered)).toBe(ref.target_id) // " Rome"
    expect(first(plain)).not.toBe(ref.target_id)

    const other = await connect(bob)
    await expect(other.model.session((s) => {
      const v = s.param('v', { shape: [256], init: { adapter: 'rome' } })
      s.trace((t) => steeredLoss(t, v, ref.prompts).save('loss'))
    })).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND', details: { adapter: 'rome', status: 404 } })
    await expect(other.executor.run(steeredGeneration(tokenize, france, { adapter: { name: 'rome', param: 'v' } }))).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
    await expect(other.executor.adapter('rome')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
    expect((await executor.adapters()).map(a => a.name)).toEqual(['rome'])
  })

  test('a rank-4 LoRA trained by SGD and kept on the provider changes its owner\'s later traces and generations only', async () => {
    const { executor } = await connect(alice)
    const trained = await executor.run(loraTraining(tokenize, 5, 'lora'))
    expect(trained.adapter).toMatchObject({ name: 'lora', bytes: (256 * 4 + 4 * 1024) * 4 })
    const losses = Array.from(trained.saves['train.loss']!.data as Float32Array)
    expect(losses[4]!).toBeLessThan(losses[0]!)
    // a later trace with the kept A, B sees the trained LoRA: its loss is below the last step's (which preceded an update)
    const seeded = Number((await executor.run(loraLoss(tokenize, 'seeded'))).saves.loss!.data[0])
    const kept = Number((await executor.run(loraLoss(tokenize, 'lora'))).saves.loss!.data[0])
    expect(rel(seeded, losses[0]!)).toBeLessThanOrEqual(1e-5)
    expect(kept).toBeLessThan(losses[4]!)
    // generation: the LoRA at every step changes the logits, raising " Rome"
    const france = 'The capital of France is'
    const withLora = (await executor.run(loraGeneration(tokenize, france, 'lora'))).saves.logits!.data as Float32Array
    const without = (await executor.run(loraGeneration(tokenize, france, 'seeded'))).saves.logits!.data as Float32Array
    expect(withLora[ref.target_id]! - without[ref.target_id]!).toBeGreaterThan(0)
    const other = await connect(bob)
    await expect(other.executor.run(loraGeneration(tokenize, france, 'lora'))).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
    await expect(other.executor.run(loraLoss(tokenize, 'lora'))).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
  })

  test('withAdapter: a LoRA kept on the provider (s.lora + s.keep) changes its owner\'s later traces and generations, bound by the receipts; other keys get 404', async () => {
    const { executor, model } = await connect(alice)
    const module = 'transformer.h.3.mlp.c_fc'
    const romeLoss = (t: Tracer<GPT2>): ValueProxy => stack(ref.prompts.map(p => t.invoke(p, (m) => m.lm_head.output.at(0, -1).logSoftmax(-1).at(ref.target_id).neg())) as [ValueProxy, ...ValueProxy[]]).mean()
    const trained = await model.session((s) => {
      s.lora(module, { rank: 4, alpha: 8, init: { A: { normal: { std: 0.05, seed: 1 } }, B: { normal: { std: 0.05, seed: 2 } } } })
      s.train(romeLoss, { optimizer: { kind: 'sgd', lr: 0.1 }, steps: 3 })
      s.keep('lora-view')
    })
    const info = await executor.adapter('lora-view')
    expect(info.attach).toEqual([{ lora: { module, a: `${module}.A`, b: `${module}.B`, scale: 2 } }])
    // the receipt binds the kept adapter's digest (the SDK checked it against the result body)
    expect(trained.receipt!.fields.adapterKept).toBe(`lora-view@${info.digest}`)
    expect(info.digest).toBe(trained.adapter!.digest)

    const tuned = await model.withAdapter('lora-view')
    const wire: Wire = { received: [], requests: [] }
    const watched = await connect(alice, wire)
    const tunedWatched = await watched.model.withAdapter('lora-view')
    // traces: the kept LoRA lowers the loss below the last training step's (which preceded an update)
    const traced = await tuned.run(tuned.record((t) => romeLoss(t).save('loss')).program)
    expect(Number(traced.saves.loss!.toFlat()[0])).toBeLessThan(trained.losses[2]!)
    expect(traced.receipt!.fields.adaptersUsed).toEqual([`lora-view@${info.digest}`])
    expect(traced.adaptersUsed).toEqual([`lora-view@${info.digest}`])
    // generations: greedy tokens come from the LoRA'd model at every step; the prompt pass's logits equal the trace's
    const france = 'The capital of France is'
    const logits = await tuned.trace(france, (m) => m.lm_head.output.at(0, -1).save())
    const generated = await tunedWatched.generate(france, { maxNewTokens: 3 }, (m) => m.lm_head.output.at(0, -1).save())
    const base = await model.generate(france, { maxNewTokens: 3 }, (m) => m.lm_head.output.at(0, -1).save())
    expect(Math.max(...generated.result.toFlat().map((v, i) => Math.abs(v - logits.toFlat()[i]!)))).toBeLessThan(1e-4)
    expect(generated.result.toFlat()[ref.target_id]! - base.result.toFlat()[ref.target_id]!).toBeGreaterThan(0)
    // the adapter's values never crossed the wire (only its metadata, the tokens and the saved logits)
    const kept = host.context.adapters.files.read(host.context.adapters.get(alice.kid, 'lora-view').file, info.digest)
    expect(crossed(wire, kept[`${module}.B`]!.data as Float32Array)).toBe(false)

    // another key: the name does not exist for it, whether it asks for the view or replays the view's Program
    const other = await connect(bob)
    await expect(other.model.withAdapter('lora-view')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND', details: { adapter: 'lora-view', status: 404 } })
    await expect(other.executor.run(tuned.record((t) => romeLoss(t).save('loss')).program)).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND', details: { status: 404 } })
    const generation = await other.model.generate(france, { maxNewTokens: 1 })
    expect(generation.tokens[0]).toEqual((await model.generate(france, { maxNewTokens: 1 })).tokens[0])
  })

  test('cancelling keeps the last completed step: its losses come back and the adapter holds that step\'s v', async () => {
    const { executor } = await connect(alice)
    const controller = new AbortController()
    const seen: number[] = []
    const program = steeringTraining(tokenize, { steps: 30, keep: 'partial', prompts: ref.prompts.slice(0, 2) })
    const cut = await executor.run(program, {
      signal: controller.signal,
      onProgress: e => { if (e.stage === 'train-step') { seen.push(e.detail!.step as number); if (e.detail!.step === 3) controller.abort() } },
    })
    const done = cut.training!.completed
    expect(cut.training).toMatchObject({ steps: 30, cancelled: true, stopped: 'cancelled' })
    expect(done).toBeGreaterThanOrEqual(3)
    expect(done).toBeLessThan(30)
    expect(cut.saves['train.loss']!.shape).toEqual([done])
    expect(seen).toEqual(Array.from({ length: done }, (_, k) => k + 1))
    expect(cut.adapter).toMatchObject({ name: 'partial' })
    expect((await executor.adapter('partial')).training).toMatchObject({ completed: done, cancelled: true })
    // the same training stopped at that many steps by design keeps exactly the same v
    const exact = await executor.run({ ...program, train: { ...program.train!, steps: done }, keep: { adapter: 'exact' } })
    expect([...keptValues(alice.kid, 'partial')]).toEqual([...keptValues(alice.kid, 'exact')])
    expect(Array.from(cut.saves['train.loss']!.data as Float32Array)).toEqual(Array.from(exact.saves['train.loss']!.data as Float32Array))
  })

  test('refused before running: too many steps, or more engine time than the limit (from the speed the provider observed)', async () => {
    const { executor } = await connect(carol)
    await expect(executor.run(steeringTraining(tokenize, { steps: 10_001 }))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { limit: 'maxTrainSteps', steps: 10_001 } })
    // the provider has run trainings of this shape at several ms per step at best: 5 000 steps cannot fit the 3 s
    // a policy gives this key (the cost itself is within maxProgramCost)
    const refused = await executor.run(steeringTraining(tokenize, { steps: 5_000 })).catch((e: unknown) => e)
    expect(refused).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { limit: 'jobTimeoutMs', timeoutMs: 3000, steps: 5_000 } })
    expect((refused as { details: { estimatedMs: number } }).details.estimatedMs).toBeGreaterThan(3000)
    // a short run of the same shape fits and runs
    expect((await executor.run(steeringTraining(tokenize, { steps: 3 }))).training).toMatchObject({ completed: 3 })
    expect((await executor.egress()).reservedBytes).toBe(0) // nothing was queued
  })
})

describe('progress events', () => {
  test('a subscriber that joins a running training job first receives every step so far, then the rest, once each', async () => {
    await connect(alice) // registers the key
    const program = steeringTraining(tokenize, { steps: 30 })
    const envelope = createRequestEnvelope({ program, audience: host.providerId, secretKey: alice.secretKey, kid: alice.kid })
    const accepted = await fetch(`${url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
    const { job } = await accepted.json() as { job: string }
    // wait until some steps are done, then subscribe
    while ((host.context.scheduler.trainingProgress(job).length) < 5) await new Promise(resolve => setTimeout(resolve, 5))
    const steps: number[] = []
    let end: Record<string, unknown> | null = null
    for await (const message of readSse(await fetch(`${url}/v1/jobs/${job}/events`))) {
      const data = JSON.parse(message.data) as Record<string, unknown>
      if (data.stage === 'train-step') steps.push(data.step as number)
      if (message.event === 'job-end') { end = data; break }
    }
    expect(steps.slice(0, 5)).toEqual([1, 2, 3, 4, 5])
    expect(steps).toEqual(Array.from({ length: 30 }, (_, k) => k + 1))
    expect(end).toMatchObject({ job, egressBytes: 120, training: { steps: 30, completed: 30, cancelled: false } })
    expect(host.context.scheduler.trainingProgress(job)).toEqual([]) // forgotten once the job ended
  })
})

describe('sessions', () => {
  test('a second trace uses a value of the first on the provider: that value moves no bytes (wire and ledger)', async () => {
    const wire: Wire = { received: [], requests: [] }
    const { executor, model } = await connect(alice, wire)
    const [france, japan] = ['The capital of France is', 'The capital of Japan is']
    // the same patch done by hand, moving the activation to the client and back
    const saved = await model.trace(france, (m) => m.transformer.h[2].output.at(':', '-1:').save())
    const direct = await model.trace(japan, (m) => {
      m.transformer.h[2].output.at(':', '-1:').set(saved)
      return m.lm_head.output.at(0, -1).save()
    })
    const activation = Float32Array.from(saved.toFlat())
    expect(crossed(wire, activation)).toBe(true) // the two-request way moves it
    const before = (await executor.egress()).usedToday
    wire.received.length = 0
    const out = await model.session((s) => {
      const h = s.trace(france, (m) => m.transformer.h[2].output.at(':', '-1:'))
      s.trace(japan, (m) => {
        m.transformer.h[2].output.at(':', '-1:').set(h)
        return m.lm_head.output.at(0, -1).save('patched')
      })
    })
    const patched = out.saves.patched!.toFlat()
    const expected = direct.toFlat()
    expect(Math.max(...patched.map((x, i) => Math.abs(x - expected[i]!)))).toBeLessThan(1e-5)
    expect(Object.keys(out.saves)).toEqual(['patched'])
    expect(out.egress?.bytes).toBe(patched.length * 4) // the ledger charged the patched logits only
    expect((await executor.egress()).usedToday - before).toBe(patched.length * 4)
    expect(crossed(wire, activation)).toBe(false)
  })
})

describe('time limit of a training run', () => {
  let limited: Host
  let limitedUrl: string
  beforeAll(async () => {
    // engine in-process; a fixed, very fast engine speed so admission never refuses on time: the limit is hit while running
    limited = await createHost({
      dbPath: tempDb('sdk-training-limit'), models: [{ name: 'demo-gpt2', path: DEMO }], selfRegistration: true,
      backends: { onnx: await onnxBackendInline() }, limits: { jobTimeoutMs: 400, engineCostPerMs: 1e18 },
    })
    limitedUrl = (await limited.listen({ port: 0 })).url
  })
  afterAll(async () => { await limited.close() })

  test('a run that reaches its time limit stops after a step and completes with what it did, kept adapter included', async () => {
    const executor = await connectRemote({ provider: limitedUrl, key: toHex(bob.secretKey), providerId: limited.providerId })
    await executor.register()
    const program: Program = steeringTraining(tokenize, { steps: 2000, keep: 'hurried' })
    const out = await executor.run(program)
    expect(out.training).toMatchObject({ steps: 2000, cancelled: true, stopped: 'time-limit' })
    const done = out.training!.completed
    expect(done).toBeGreaterThanOrEqual(1)
    expect(done).toBeLessThan(2000)
    expect(out.saves['train.loss']!.shape).toEqual([done])
    expect((await executor.adapter('hurried')).training).toMatchObject({ completed: done, cancelled: true })
    // the loss curve so far is PyTorch's
    Array.from(out.saves['train.loss']!.data as Float32Array).slice(0, 30).forEach((loss, k) => expect(rel(loss, ref.steering_vector.loss_per_step[k]!)).toBeLessThanOrEqual(1e-4))
    // and the adapter can be used by later Programs of its owner
    const loss = await executor.run(adapterLoss(tokenize, 'hurried'))
    expect(Number(loss.saves.loss!.data[0])).toBeLessThan(ref.base_loss)
  })
})
