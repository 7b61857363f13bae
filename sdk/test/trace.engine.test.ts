// The tracing API end to end on demo-gpt2 in embedded mode, checked against the transformers references.
import { describe, expect, test } from 'vitest'
import { Weft, type GPT2, type Model, type Tensor } from '../src/index.js'
import { MODELS_DIR, argmax, hasReference, lensLogits, maxAbsDiff, reference, referencePrompts, row } from './fixtures/reference.js'
import { useLocalModel } from './fixtures/local.js'

const MODEL = 'demo-gpt2'
const { prompts, token_ids: tokenIds } = referencePrompts(MODEL)
const ref = (key: string) => reference(MODEL, key)
const flat = (t: Tensor): number[] => t.toFlat()

let weft: Weft
let model: Model<GPT2>

useLocalModel<GPT2>(MODEL, (w, m) => { weft = w; model = m })

describe('reading sites', () => {
  test('block output, logits and a logit lens match the references (text tokenized client-side)', async () => {
    const out = await model.trace(prompts[0]!, (m) => {
      const h = m.transformer.h[3].output
      return { h: h.save(), logits: m.lm_head.output.save(), lens: m.lm_head.call(m.transformer.ln_f.call(h)).argmax(-1).save() }
    })
    expect(out.h.shape).toEqual([1, 5, 256])
    expect(maxAbsDiff(flat(out.h), ref('p0.module.transformer.h.3').data)).toBeLessThan(1e-4)
    expect(maxAbsDiff(flat(out.logits), ref('p0.logits').data)).toBeLessThan(1e-3)
    const h3 = ref('p0.module.transformer.h.3')
    expect(flat(out.lens)).toEqual([0, 1, 2, 3, 4].map((p) => argmax(lensLogits(MODEL, row(h3, p)))))
    expect(model.topTokens(out.logits.at(0, -1), 1)[0]!.token).toBe(' Paris')
  })

  test('inputs, attention probabilities, the MLP activation, negative layer indices', async () => {
    const out = await model.trace(tokenIds[2]!, (m) => ({
      input: m.transformer.h[3].input, lnfIn: m.transformer.ln_f.input, probs: m.transformer.h.at(-4).attn.probs.output,
      fc: m.transformer.h[1].mlp.c_fc.output, act: m.transformer.h[1].mlp.act.output,
    }), {})
    expect(maxAbsDiff(flat(out.input), ref('p2.module.transformer.h.2').data)).toBeLessThan(1e-4)
    expect(maxAbsDiff(flat(out.lnfIn), ref('p2.module.transformer.h.5').data)).toBeLessThan(1e-4)
    expect(out.probs.shape).toEqual([1, 8, 18, 18])
    expect(maxAbsDiff(flat(out.probs), ref('p2.attentions.2').data)).toBeLessThan(1e-5)
    const geluNew = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))
    expect(maxAbsDiff(flat(out.act), Array.from(ref('p2.module.transformer.h.1.mlp.c_fc').data, geluNew))).toBeLessThan(1e-4)
  })

  test('cache returns every module output under its path', async () => {
    const cache = await model.cache(prompts[4]!)
    const keys = Object.keys(cache)
    expect(keys).toContain('transformer.h.5.mlp.c_proj')
    let compared = 0
    for (const key of keys) {
      if (!hasReference(MODEL, `p4.module.${key}`)) continue  // drop, mlp.act and the GPT2Model wrapper are not recorded
      const expected = reference(MODEL, `p4.module.${key}`)
      expect(maxAbsDiff(flat(cache[key]!), expected.data), key).toBeLessThan(2e-3)
      compared++
    }
    expect(compared).toBe(58) // every module the reference recorded: wte, wpe, 6 × 9 block modules, ln_f, lm_head
  })
})

describe('interventions', () => {
  test('slice assignment: zeroing one MLP output at the last position leaves attention + residual', async () => {
    const out = await model.trace(tokenIds[0]!, (m) => {
      m.transformer.h[4].mlp.output.at(':', -1).set(0)
      return { h4: m.transformer.h[4].output }
    })
    const expectedLast = row(ref('p0.module.transformer.h.3'), -1).map((x, i) => x + row(ref('p0.module.transformer.h.4.attn'), -1)[i]!)
    expect(maxAbsDiff(flat(out.h4.at(0, -1)), expectedLast)).toBeLessThan(1e-4)
    expect(maxAbsDiff(flat(out.h4.at(0, '0:4')), ref('p0.module.transformer.h.4').data.subarray(0, 4 * 256))).toBeLessThan(1e-4)
  })

  test('skip(): a skipped block passes its input through (h.3 = the reference h.2), standard names included', async () => {
    const out = await model.trace(tokenIds[1]!, (m) => {
      m.layers[3].skip()
      return { h3: m.transformer.h[3].output, h2: m.layers[2].output, logits: m.lm_head.output }
    })
    expect(maxAbsDiff(flat(out.h3), ref('p1.module.transformer.h.2').data)).toBeLessThan(1e-4)
    expect(flat(out.h3)).toEqual(flat(out.h2))
    // the rest of the model runs on: logits differ from the unskipped reference
    expect(maxAbsDiff(flat(out.logits), ref('p1.logits').data)).toBeGreaterThan(1e-2)
  })

  test('invokes are independent rows; values cross invokes (patching France into Japan)', async () => {
    const out = await model.trace((t) => {
      const france = t.invoke(prompts[0]!, (m) => m.transformer.h[5].output)
      const japan = t.invoke(prompts[4]!, (m) => m.lm_head.output)
      const patched = t.invoke(prompts[4]!, (m) => { m.transformer.h[5].output.set(france); return m.lm_head.output })
      return { japan, patched }
    })
    expect(maxAbsDiff(flat(out.japan), ref('p4.logits').data)).toBeLessThan(1e-3)
    expect(maxAbsDiff(flat(out.patched), ref('p0.logits').data)).toBeLessThan(1e-3)
  })

  test('arithmetic on proxies matches the same arithmetic on the reference', async () => {
    const h = ref('p0.module.transformer.h.2')
    const last = Array.from(row(h, -1))
    const out = await model.trace(tokenIds[0]!, (m) => {
      const x = m.transformer.h[2].output.at(0, -1)
      return {
        affine: x.mul(2).add(1).sub(x).div(4).pow(2),
        norm: x.norm(), mean: x.mean(), max: x.max(), neg: x.neg().abs(),
        softmax: x.softmax(), top: x.topk(3).indices,
        dot: x.reshape(1, 256).matmul(Array.from({ length: 256 }, (_, i) => [i % 2 === 0 ? 1 : -1])),
        gated: x.gt(0).where(x, 0), stacked: m.transformer.h[2].output.at(0).transpose().concat([x.reshape(256, 1)], 1),
      }
    })
    expect(maxAbsDiff(flat(out.affine), last.map((v) => ((2 * v + 1 - v) / 4) ** 2))).toBeLessThan(1e-4)
    expect(out.norm.item()).toBeCloseTo(Math.hypot(...last), 3)
    expect(out.mean.item()).toBeCloseTo(last.reduce((a, b) => a + b, 0) / 256, 5)
    expect(out.max.item()).toBeCloseTo(Math.max(...last), 5)
    expect(maxAbsDiff(flat(out.neg), last.map(Math.abs))).toBeLessThan(1e-4)
    const exps = last.map((v) => Math.exp(v - Math.max(...last)))
    expect(maxAbsDiff(flat(out.softmax), exps.map((e) => e / exps.reduce((a, b) => a + b, 0)))).toBeLessThan(1e-5)
    expect(flat(out.top)).toEqual(last.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, 3).map(([, i]) => i))
    expect(out.dot.item()).toBeCloseTo(last.reduce((a, v, i) => a + (i % 2 === 0 ? v : -v), 0), 3)
    expect(maxAbsDiff(flat(out.gated), last.map((v) => (v > 0 ? v : 0)))).toBeLessThan(1e-4)
    expect(out.stacked.shape).toEqual([256, 6])
    expect(out.stacked.get(7, 5)).toBeCloseTo(last[7]!, 5)
  })

  test('stop() ends the forward early and the saved value is still exact', async () => {
    const out = await model.trace(tokenIds[0]!, (m, t) => { const h = m.transformer.h[1].output.save(); t.stop(); return h })
    expect(maxAbsDiff(flat(out), ref('p0.module.transformer.h.1').data)).toBeLessThan(1e-4)
  })
})

describe('modes and helpers', () => {
  test('simulate mode round-trips the Program through CBOR and gives the same numbers', async () => {
    const simulated = await Weft.simulate({ modelsDir: MODELS_DIR })
    try {
      const m2 = await simulated.model<GPT2>(MODEL)
      const logits = await m2.trace(prompts[0]!, (m) => m.lm_head.output.at(0, -1).save())
      expect(simulated.executor.kind).toBe('simulate')
      expect(maxAbsDiff(flat(logits), row(ref('p0.logits'), -1))).toBeLessThan(1e-3)
    } finally { await simulated.close() }
  })

  test('tokenize/decode match the reference token ids; scan uses the real manifest', async () => {
    expect(await model.tokenize(prompts[1]!)).toEqual(tokenIds[1])
    expect(await model.decode(tokenIds[3]!)).toBe(prompts[3])
    const shapes = model.scan(prompts[1]!, (m) => ({ probs: m.transformer.h[0].attn.probs.output, lens: m.lm_head.call(m.transformer.h[0].output.at(0, -1)) }))
    expect(shapes).toEqual({ probs: { shape: [1, 8, 14, 14], dtype: 'float32' }, lens: { shape: [4096], dtype: 'float32' } })
  })

  test('an unknown model is a typed MODEL_NOT_FOUND', async () => {
    await expect(weft.model('no-such-model')).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' })
  })
})
