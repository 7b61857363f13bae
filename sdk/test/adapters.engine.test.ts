/**
 * The adapter API embedded on demo-gpt2: `s.lora`, `s.steer`, `s.probe` (+ `crossEntropy`, `mse`) train what the
 * hand-written Programs train and what float64 oracles / PyTorch's formulas compute; `s.keep` stores them with
 * their attachments, and `model.withAdapter(name)` applies them to later traces, generations and sessions without
 * re-declaring anything. Kept adapters survive in a LocalExecutor's `adaptersDir`.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { normalInit, type Program } from '@weft/core'
import { Weft, crossEntropy, mse, stack, type GPT2, type Model, type ValueProxy, type Tracer } from '../src/index.js'
import { LocalExecutor } from '../src/local/local-executor.js'
import { MODELS_DIR } from './fixtures/reference.js'
import { readCheckpointWeights, type Tensor64 } from '../../providers/onnx/test/reference/safetensors.js'
import { referenceForwardWeights } from '../../providers/onnx/test/reference/forward.js'
import { mat } from '../../providers/onnx/test/reference/math.js'

const DIR = path.join(MODELS_DIR, 'demo-gpt2')
const ref = JSON.parse(readFileSync(path.join(DIR, 'reference_training.json'), 'utf8')) as {
  prompts: string[]; target_id: number; steering_vector: { loss_per_step: number[]; final_v: number[] }
}
const MODULE = 'transformer.h.3.mlp.c_fc'
const LORA_INIT = { A: { normal: { mean: 0, std: 0.05, seed: 1 } }, B: { normal: { mean: 0, std: 0.05, seed: 2 } } }
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30)

let executor: LocalExecutor
let model: Model<GPT2>
let weights: Map<string, Tensor64>
let config: Record<string, any>
const adaptersDir = mkdtempSync(path.join(tmpdir(), 'weft-adapters-'))

beforeAll(async () => {
  executor = new LocalExecutor({ modelsDir: MODELS_DIR, adaptersDir })
  model = await new Weft(executor).model<GPT2>('demo-gpt2')
  weights = await readCheckpointWeights(DIR)
  config = JSON.parse(readFileSync(path.join(DIR, 'config.json'), 'utf8')) as Record<string, any>
})
afterAll(async () => { await executor.close() })

/** mean over prompts of −log_softmax(last logits)[" Rome"] (the acceptance loss), one invoke per prompt */
function romeLoss (t: Tracer<GPT2>, prompts = ref.prompts): ValueProxy {
  const nll = prompts.map(p => t.invoke(p, (m) => m.lm_head.output.at(0, -1).logSoftmax(-1).at(ref.target_id).neg()))
  return stack(nll as [ValueProxy, ...ValueProxy[]]).mean()
}

/** The float64 oracle: the acceptance loss of demo-gpt2 with y += (x @ A) @ B · scale on MODULE. */
function loraLoss64 (A: ArrayLike<number>, B: ArrayLike<number>, scale: number): number {
  const [D, R, OUT] = [256, 4, 1024]
  let total = 0
  for (const prompt of ref.prompts) {
    const ids = model.tokenizer!.encode(prompt)
    let x: { data: Float64Array } | null = null
    const acts = referenceForwardWeights(config, weights, ids, {
      hook: (site, value) => {
        if (site === 'transformer.h.3.ln_2') { x = value; return undefined }
        if (site !== MODULE) return undefined
        const out = mat(value.rows, value.cols, Float64Array.from(value.data))
        for (let t = 0; t < value.rows; t++) {
          const xa = new Float64Array(R)
          for (let r = 0; r < R; r++) { let s = 0; for (let i = 0; i < D; i++) s += x!.data[t * D + i]! * A[i * R + r]!; xa[r] = s }
          for (let j = 0; j < OUT; j++) { let s = 0; for (let r = 0; r < R; r++) s += xa[r]! * B[r * OUT + j]!; out.data[t * OUT + j] += scale * s }
        }
        return out
      },
    })
    const logits = acts.get('logits')!
    const row = logits.data.subarray((ids.length - 1) * logits.shape[1]!, ids.length * logits.shape[1]!)
    const max = Math.max(...row)
    total += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[ref.target_id]!
  }
  return total / ref.prompts.length
}

test('s.lora: a rank-4 LoRA trained by SGD equals the float64 oracle; kept, withAdapter applies it to traces, generations and sessions', async () => {
  const out = await model.session((s) => {
    const lora = s.lora(MODULE, { rank: 4, alpha: 8, init: LORA_INIT })
    expect(lora.scale).toBe(2)
    expect([lora.A.decl.shape, lora.B.decl.shape]).toEqual([[256, 4], [4, 1024]])
    s.train((t) => romeLoss(t), { optimizer: { kind: 'sgd', lr: 0.1 }, steps: 3 })
    s.keep('lora')
  })
  expect(out.program.keep).toEqual({ adapter: 'lora', attach: [{ lora: { module: MODULE, a: `${MODULE}.A`, b: `${MODULE}.B`, scale: 2 } }] })
  // step 0 ran the seeded initial params: the float64 oracle's loss; later steps lower it
  const A0 = normalInit([256, 4], 0, 0.05, 1)
  const B0 = normalInit([4, 1024], 0, 0.05, 2)
  expect(rel(out.losses[0]!, loraLoss64(A0, B0, 2))).toBeLessThan(1e-4)
  expect(out.losses[2]!).toBeLessThan(out.losses[0]!)
  expect(out.adapter).toMatchObject({ name: 'lora', replaced: false, bytes: (256 * 4 + 4 * 1024) * 4 })

  // the kept values through the oracle give the loss a view's trace computes
  const kept = await executor.downloadAdapter('lora')
  const [A, B] = [kept.values[`${MODULE}.A`]!.data as Float32Array, kept.values[`${MODULE}.B`]!.data as Float32Array]
  const tuned = await model.withAdapter('lora')
  expect(Object.keys(tuned.adapters[0]!.params)).toEqual([`${MODULE}.A`, `${MODULE}.B`])
  const traced = await tuned.trace((t) => romeLoss(t).save('loss'))
  expect(rel(traced.toFlat()[0]!, loraLoss64(A, B, 2))).toBeLessThan(1e-4)
  const plain = await model.trace((t) => romeLoss(t).save('loss'))
  expect(traced.toFlat()[0]!).toBeLessThan(plain.toFlat()[0]!)
  // the view's Program: the adapter's params by reference (never the values), its edit before the trace's own nodes
  const recorded = tuned.record('The capital of France is', (m) => m.lm_head.output.save('logits'))
  expect(recorded.program.params).toEqual({
    'lora.transformer.h.3.mlp.c_fc.A': { shape: [256, 4], dtype: 'float32', init: { adapter: { name: 'lora', param: `${MODULE}.A` } } },
    'lora.transformer.h.3.mlp.c_fc.B': { shape: [4, 1024], dtype: 'float32', init: { adapter: { name: 'lora', param: `${MODULE}.B` } } },
  })
  const nodes = recorded.program.nodes
  const write = nodes.findIndex(([op, attrs]) => op === 'write' && attrs.site === MODULE)
  expect(write).toBeGreaterThan(0)
  expect(write).toBeLessThan(nodes.findIndex(([op, attrs]) => op === 'read' && attrs.site === 'lm_head'))
  expect(nodes.filter(([op]) => op === 'trainable').map(([, attrs]) => attrs.name)).toEqual([`lora.${MODULE}.A`, `lora.${MODULE}.B`])
  const run = await tuned.run(recorded.program)
  expect(run.adaptersUsed).toEqual([`lora@${kept.digest}`])

  // generation: the prompt pass's logits equal the trace's, at every step the LoRA applies
  const france = 'The capital of France is'
  const logits = await tuned.trace(france, (m) => m.lm_head.output.at(0, -1).save())
  const generated = await tuned.generate(france, { maxNewTokens: 3 }, (m) => m.lm_head.output.at(0, -1).save())
  const base = await model.generate(france, { maxNewTokens: 3 }, (m) => m.lm_head.output.at(0, -1).save())
  expect(Math.max(...generated.result.toFlat().map((v, i) => Math.abs(v - logits.toFlat()[i]!)))).toBeLessThan(1e-4)
  expect(generated.result.toFlat()[ref.target_id]! - base.result.toFlat()[ref.target_id]!).toBeGreaterThan(0)
  // a session of the view sees the adapter in every trace
  const session = await tuned.session((s) => { s.trace((t) => romeLoss(t).save('a')); s.trace((t) => romeLoss(t).save('b')) })
  expect(session.saves.a!.toFlat()[0]).toBeCloseTo(traced.toFlat()[0]!, 6)
  expect(session.saves.b!.toFlat()[0]).toBeCloseTo(traced.toFlat()[0]!, 6)
})

test('s.steer: Adam on a steering vector reproduces PyTorch\'s run; withAdapter steers a later generation to " Rome"', async () => {
  const out = await model.session((s) => {
    s.steer('transformer.h.2')
    s.train((t) => romeLoss(t), { optimizer: { kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 }, steps: 30 })
    s.keep('rome')
  })
  out.losses.forEach((loss, k) => expect(rel(loss, ref.steering_vector.loss_per_step[k]!), `step ${k + 1}`).toBeLessThanOrEqual(1e-4))
  const v = (await executor.downloadAdapter('rome')).values['transformer.h.2.steer']!.data as Float32Array
  let worst = 0
  ref.steering_vector.final_v.forEach((x, i) => { worst = Math.max(worst, Math.abs(v[i]! - x) / Math.max(Math.abs(x), 1e-2)) })
  expect(worst).toBeLessThanOrEqual(1e-4)

  const steered = await (await model.withAdapter('rome')).generate('The capital of France is', { maxNewTokens: 2 })
  const plain = await model.generate('The capital of France is', { maxNewTokens: 2 })
  expect(steered.tokens[0]).toBe(ref.target_id)
  expect(plain.tokens[0]).not.toBe(ref.target_id)
  // views compose: the LoRA and the steering vector together
  const both = await (await (await model.withAdapter('lora')).withAdapter('rome')).trace((t) => romeLoss(t).save('loss'))
  expect(both.toFlat()[0]!).toBeLessThan(0.05)
})

test('s.probe: a linear probe trained by SGD with cross-entropy (and one with MSE) follows PyTorch\'s formulas in float64', async () => {
  const site = 'transformer.h.2'
  const prompts = ['The capital of France is', 'I love this movie', 'The capital of Japan is', 'I hate this movie']
  const labels = [0, 1, 0, 1]
  const [LR, STEPS] = [0.05, 4]
  // the activations the probe reads (last position), as the engine computes them
  const acts = await model.trace((t) => prompts.map((p, k) => t.invoke(p, (m) => m.transformer.h[2].output.at(0, -1).save(`x${k}`))))
  const X = acts.map(x => Float64Array.from(x.toFlat()))

  const out = await model.session((s) => {
    const probe = s.probe(site, { outputs: 2 })
    s.train((t) => {
      const nll = prompts.map((p, k) => t.invoke(p, (m) => crossEntropy(probe.on(m).at(0, -1), labels[k]!)))
      return stack(nll as [ValueProxy, ...ValueProxy[]]).mean()
    }, { optimizer: { kind: 'sgd', lr: LR }, steps: STEPS })
    s.keep('sentiment')
  })
  // float64: F.cross_entropy over softmax(x W + b), full-batch SGD from zeros (torch.optim.SGD: θ ← θ − lr·g)
  const W = new Float64Array(256 * 2)
  const b = new Float64Array(2)
  const want: number[] = []
  for (let step = 0; step < STEPS; step++) {
    const gW = new Float64Array(W.length)
    const gb = new Float64Array(2)
    let loss = 0
    X.forEach((x, k) => {
      const z = [0, 1].map(c => b[c]! + x.reduce((s, xi, i) => s + xi * W[i * 2 + c]!, 0))
      const max = Math.max(...z)
      const lse = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0))
      loss += (lse - z[labels[k]!]!) / X.length
      z.forEach((zc, c) => {
        const d = (Math.exp(zc - lse) - (c === labels[k] ? 1 : 0)) / X.length
        gb[c] += d
        x.forEach((xi, i) => { gW[i * 2 + c] += xi * d })
      })
    })
    want.push(loss)
    W.forEach((w, i) => { W[i] = w - LR * gW[i]! })
    b.forEach((v, i) => { b[i] = v - LR * gb[i]! })
  }
  out.losses.forEach((loss, k) => expect(rel(loss, want[k]!), `step ${k}: ${loss} vs ${want[k]}`).toBeLessThan(1e-4))
  expect(out.program.keep!.attach).toEqual([{ probe: { site, port: 'output', w: `${site}.probe.W`, b: `${site}.probe.b` } }])

  // kept: the view reads the probe without re-declaring it; its logits are x W + b with the trained values
  const view = await model.withAdapter('sentiment')
  const read = await view.trace(prompts[1]!, (m) => view.adapters[0]!.probe(m).at(0, -1).save())
  const kept = (await executor.downloadAdapter('sentiment')).values
  const [Wk, bk] = [kept[`${site}.probe.W`]!.data as Float32Array, kept[`${site}.probe.b`]!.data as Float32Array]
  const z = [0, 1].map(c => bk[c]! + X[1]!.reduce((s, xi, i) => s + xi * Wk[i * 2 + c]!, 0))
  read.toFlat().forEach((v, c) => expect(Math.abs(v - z[c]!)).toBeLessThan(1e-4))

  // MSE: a 1-output regression probe, F.mse_loss, from zeros: step 0's loss is mean(target²)
  const targets = [1, -1, 0.5, -0.5]
  const regression = await model.session((s) => {
    const probe = s.probe(site, { outputs: 1, name: 'reg' })
    s.train((t) => {
      const errs = prompts.map((p, k) => t.invoke(p, (m) => mse(probe.on(m).at(0, -1), [targets[k]!])))
      return stack(errs as [ValueProxy, ...ValueProxy[]]).mean()
    }, { optimizer: { kind: 'sgd', lr: 0.001 }, steps: 2 })
  })
  expect(rel(regression.losses[0]!, targets.reduce((s, t) => s + t * t, 0) / 4)).toBeLessThan(1e-6)
  expect(regression.losses[1]!).toBeLessThan(regression.losses[0]!)
})

test('kept adapters are the executor\'s: unknown names are ADAPTER_NOT_FOUND, another process finds them in adaptersDir, bad attachments are refused', async () => {
  await expect(model.withAdapter('nope')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
  const again = new LocalExecutor({ modelsDir: MODELS_DIR, adaptersDir })
  try {
    expect((await again.adapters()).map(a => a.name)).toEqual(['lora', 'rome', 'sentiment'])
    const tuned = await (await new Weft(again).model<GPT2>('demo-gpt2')).withAdapter('rome')
    const loss = await tuned.trace((t) => romeLoss(t).save('loss'))
    expect(loss.toFlat()[0]!).toBeLessThan(0.01)
    await again.deleteAdapter('sentiment')
    await expect(again.adapter('sentiment')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
  } finally { await again.close() }
  // a site that does not exist, or a LoRA whose shapes do not fit its module, is refused while recording / validating
  await expect(model.session((s) => { s.steer('transformer.h.99') })).rejects.toMatchObject({ code: 'PROGRAM_INVALID' })
  const program: Program = model.record('x', (m) => m.lm_head.output.save()).program
  const bad: Program = { ...program, params: { A: { shape: [255, 4], dtype: 'float32', init: { zeros: true } }, B: { shape: [4, 1024], dtype: 'float32', init: { zeros: true } } }, keep: { adapter: 'x', attach: [{ lora: { module: MODULE, a: 'A', b: 'B', scale: 1 } }] } }
  await expect(model.run(bad)).rejects.toMatchObject({ code: 'PROGRAM_INVALID', message: expect.stringContaining('keep.attach[0]: lora: a is [255, 4] but the input of') })
})

test('sessions of a view: from values follow the shifted nodes; training on top keeps both adapters with their attachments', async () => {
  const tuned = await model.withAdapter('rome')
  const [france, japan] = ['The capital of France is', 'The capital of Japan is']
  // trace 1 patches trace 0's (steered) block-3 output into another prompt, without it leaving
  const out = await tuned.session((s) => {
    const h = s.trace(france, (m) => m.transformer.h[3].output.at(':', '-1:'))
    s.trace(japan, (m) => {
      m.transformer.h[3].output.at(':', '-1:').set(h)
      return m.lm_head.output.at(0, -1).save('patched')
    })
  })
  const saved = await tuned.trace(france, (m) => m.transformer.h[3].output.at(':', '-1:').save())
  const direct = await tuned.trace(japan, (m) => {
    m.transformer.h[3].output.at(':', '-1:').set(saved)
    return m.lm_head.output.at(0, -1).save()
  })
  const [a, b] = [out.saves.patched!.toFlat(), direct.toFlat()]
  expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))).toBeLessThan(1e-4)
  expect(out.adaptersUsed).toHaveLength(1)

  // fine-tune on top: a second vector trained with the kept one in place; keeping stores both and both attachments
  const stacked = await tuned.session((s) => {
    s.steer('transformer.h.4', { name: 'extra' })
    s.train((t) => romeLoss(t), { optimizer: { kind: 'sgd', lr: 0.01 }, steps: 1 })
    s.keep('stacked')
  })
  expect(stacked.losses[0]!).toBeLessThan(0.01) // the kept vector already steers the training trace
  const info = await executor.adapter('stacked')
  expect(Object.keys(info.params).sort()).toEqual(['extra', 'rome.transformer.h.2.steer'])
  expect(info.attach).toEqual([
    { steer: { site: 'transformer.h.2', port: 'output', param: 'rome.transformer.h.2.steer' } },
    { steer: { site: 'transformer.h.4', port: 'output', param: 'extra' } },
  ])
  const both = await (await model.withAdapter('stacked')).trace((t) => romeLoss(t).save('loss'))
  expect(both.toFlat()[0]!).toBeLessThan(0.01)
})
