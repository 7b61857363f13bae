// Gradients through the SDK in embedded mode on demo-gpt2: NNsight-style loss.backward() and h.grad(loss)
// against the transformers references (causal-LM loss of prompt 0).
import { expect, test } from 'vitest'
import { type GPT2, type Model, type Tensor } from '../src/index.js'
import { maxAbsDiff, reference, referencePrompts } from './fixtures/reference.js'
import { useLocalModel } from './fixtures/local.js'

const MODEL = 'demo-gpt2'
const VOCAB = 4096
const ids = referencePrompts(MODEL).token_ids[0]!
const ref = (key: string) => reference(MODEL, key)
const flat = (t: Tensor): number[] => t.toFlat()

let model: Model<GPT2>
useLocalModel<GPT2>(MODEL, (_weft, m) => { model = m })

test('loss.backward({...}) and h.grad(loss) give transformers\' gradients of the causal-LM loss', async () => {
  const onehot = new Float32Array((ids.length - 1) * VOCAB)
  ids.slice(1).forEach((id, t) => { onehot[t * VOCAB + id] = 1 })
  const out = await model.trace(ids, (m, t) => {
    const logp = m.lm_head.output.at(0, ':-1').logSoftmax(-1)
    const loss = logp.mul({ dtype: 'float32', shape: [ids.length - 1, VOCAB], data: onehot }).sum().mul(-1 / (ids.length - 1))
    const h0 = m.transformer.h[0].input
    const grads = loss.backward({ h0, h3: m.transformer.h[3].input, final: m.transformer.ln_f.output, ln1: t.param('transformer.h.0.ln_1.weight') })
    return { loss, ...grads, again: h0.grad(loss) }
  })
  const scale = (key: string): number => Math.max(...Array.from(ref(key).data, Math.abs))
  expect(Math.abs(flat(out.loss)[0]! - ref('grad.loss').data[0]!)).toBeLessThan(1e-5)
  expect(out.h0.shape).toEqual([1, ids.length, 256])
  expect(maxAbsDiff(flat(out.h0), ref('grad.hidden_states.0').data)).toBeLessThan(1e-4 * scale('grad.hidden_states.0'))
  expect(maxAbsDiff(flat(out.h3), ref('grad.hidden_states.3').data)).toBeLessThan(1e-4 * scale('grad.hidden_states.3'))
  expect(maxAbsDiff(flat(out.final), ref('grad.hidden_states.6').data)).toBeLessThan(1e-4 * scale('grad.hidden_states.6'))
  expect(maxAbsDiff(flat(out.ln1), ref('grad.param.transformer.h.0.ln_1.weight').data)).toBeLessThan(1e-4 * scale('grad.param.transformer.h.0.ln_1.weight'))
  expect(flat(out.again)).toEqual(flat(out.h0))
})
