// The ops NNsight users reach for, written as a researcher would, on demo-gpt2 in embedded mode: checked against
// the model's own computations (transformers' gelu_new activation, the attention scores) and plain arithmetic.
import { expect, test } from 'vitest'
import { einsum, gelu, sigmoid, type GPT2, type Model, type Tensor } from '../src/index.js'
import { maxAbsDiff } from './fixtures/reference.js'
import { useLocalModel } from './fixtures/local.js'

const PROMPT = [328, 370, 293, 3606, 297]
let model: Model<GPT2>
useLocalModel<GPT2>('demo-gpt2', (_w, m) => { model = m })

const flat = (t: Tensor): number[] => t.toFlat()

test("gelu(c_fc, { approximate: 'tanh' }) is the MLP's own activation; the exact gelu differs from it slightly", async () => {
  const out = await model.trace(PROMPT, (m) => {
    const fc = m.transformer.h[1].mlp.c_fc.output
    return { act: m.transformer.h[1].mlp.act.output, tanh: gelu(fc, { approximate: 'tanh' }), exact: fc.gelu() }
  })
  expect(maxAbsDiff(flat(out.tanh), flat(out.act))).toBeLessThan(1e-5)
  const gap = maxAbsDiff(flat(out.exact), flat(out.act))
  expect(gap).toBeGreaterThan(1e-6)
  expect(gap).toBeLessThan(1e-2)
})

test("einsum('bhqd,bhkd->bhqk', q, k) / √d is the attention scores site", async () => {
  const out = await model.trace(PROMPT, (m) => {
    const attn = m.transformer.h[2].attn
    const q = attn.q.output
    return { mine: einsum('bhqd,bhkd->bhqk', q, attn.k.output).div(Math.sqrt(q.shape.at(-1) as number)), scores: attn.scores.output }
  })
  expect(out.mine.shape).toEqual(out.scores.shape)
  expect(maxAbsDiff(flat(out.mine), flat(out.scores))).toBeLessThan(1e-4)
})

test('gather picks the logits of the next tokens; cumsum, clamp, sigmoid and the logical ops follow their definitions', async () => {
  const next = [[[370], [293], [3606], [297], [0]]]
  const out = await model.trace(PROMPT, (m) => {
    const logits = m.lm_head.output
    const h = m.transformer.h[0].output
    const positive = h.gt(0)
    return {
      logits,
      picked: logits.gather(-1, next),
      h,
      running: h.cumsum(1),
      clamped: h.clamp(-0.1, 0.1),
      gate: sigmoid(h),
      both: positive.logicalAnd(h.lt(1)),
      neither: positive.logicalOr(h.lt(1)).logicalNot(),
    }
  })
  const vocab = out.logits.shape[2]!
  expect(flat(out.picked)).toEqual(next[0]!.map(([id], t) => out.logits.get(0, t, id!)))
  const hs = flat(out.h)
  const width = 256
  const running = flat(out.running)
  for (const c of [0, 17, 255]) {
    let sum = 0
    for (let t = 0; t < 5; t++) { sum += hs[t * width + c]!; expect(running[t * width + c]).toBeCloseTo(sum, 4) }
  }
  expect(flat(out.clamped)).toEqual(hs.map(x => Math.fround(Math.min(Math.max(x, Math.fround(-0.1)), Math.fround(0.1)))))
  expect(maxAbsDiff(flat(out.gate), hs.map(x => 1 / (1 + Math.exp(-x))))).toBeLessThan(1e-6)
  expect(flat(out.both)).toEqual(hs.map(x => x > 0 && x < 1 ? 1 : 0))
  expect(flat(out.neither)).toEqual(hs.map(() => 0))
  expect(vocab).toBe(4096)
})
