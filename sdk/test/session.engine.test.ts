// Sessions and training through the SDK, embedded on demo-gpt2: a steering vector trained by Adam reproduces
// PyTorch's first steps (models/demo-gpt2/reference_training.json); a later trace uses the trained param and an
// earlier trace's value without saving it; `keep` + an `{adapter}` init reuse the trained vector in a new session.
import { readFileSync } from 'node:fs'
import { expect, test } from 'vitest'
import { type GPT2, type Model, type Weft, type ValueProxy, type Tracer, type ParamRef, stack } from '../src/index.js'
import { MODELS_DIR } from './fixtures/reference.js'
import { useLocalModel } from './fixtures/local.js'

const ref = JSON.parse(readFileSync(`${MODELS_DIR}/demo-gpt2/reference_training.json`, 'utf8')) as {
  prompts: string[]; target_id: number; steering_vector: { loss_per_step: number[]; final_v: number[] }
}
let model: Model<GPT2>
let weft: Weft
useLocalModel<GPT2>('demo-gpt2', (w, m) => { weft = w; model = m })

/** Steers every prompt with v at transformer.h.2; returns mean −log p(" Rome") at the last position. */
function steeredLoss (t: Tracer<GPT2>, v: ParamRef, prompts: string[]): ValueProxy {
  const nll = prompts.map(p => t.invoke(p, (m) => {
    const h = m.transformer.h[2].output
    h.set(h.add(v))
    return m.lm_head.output.at(0, -1).logSoftmax(-1).at(ref.target_id).neg()
  }))
  return stack(nll as [ValueProxy, ...ValueProxy[]]).mean()
}

test('s.train: Adam on a steering vector matches PyTorch step by step; the trained vector is kept and reused', async () => {
  const events: number[] = []
  const out = await model.session((s) => {
    const v = s.param('v', { shape: [256], init: 'zeros' })
    s.train((t) => steeredLoss(t, v, ref.prompts), { optimizer: { kind: 'adam', lr: 0.05 }, steps: 5 })
    s.keep('rome')
    // a later trace sees the trained v: the loss after 5 steps
    s.trace((t) => steeredLoss(t, v, ref.prompts).save('after'))
  }, { onProgress: (e) => { if (e.detail?.engineStage === 'train-step') events.push(e.detail.step as number) } })
  expect(out.losses).toHaveLength(5)
  out.losses.forEach((l, k) => expect(Math.abs(l - ref.steering_vector.loss_per_step[k]!) / ref.steering_vector.loss_per_step[k]!).toBeLessThan(1e-4))
  expect(events).toEqual([1, 2, 3, 4, 5])
  expect(Object.keys(out.saves).sort()).toEqual(['after', 'train.loss'])
  const after = out.saves.after!.toFlat()[0]!
  expect(Math.abs(after - ref.steering_vector.loss_per_step[5]!) / ref.steering_vector.loss_per_step[5]!).toBeLessThan(1e-4)
  // a new session starting from the kept adapter computes the same loss
  const again = await model.session((s) => {
    const v = s.param('v', { shape: [256], init: { adapter: 'rome' } })
    s.trace((t) => steeredLoss(t, v, ref.prompts).save('loss'))
  })
  expect(again.saves.loss!.toFlat()[0]).toBeCloseTo(after, 6)
  await expect(model.session((s) => {
    const v = s.param('v', { shape: [256], init: { adapter: 'nope' } })
    s.trace((t) => steeredLoss(t, v, ref.prompts).save('loss'))
  })).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
  expect(weft).toBeDefined()
})

test('a later trace patches an earlier trace\'s activation without it leaving (from), equal to patching a saved copy', async () => {
  const [france, japan] = ['The capital of France is', 'The capital of Japan is']
  const out = await model.session((s) => {
    const h = s.trace(france, (m) => m.transformer.h[2].output.at(':', '-1:'))
    s.trace(japan, (m) => {
      m.transformer.h[2].output.at(':', '-1:').set(h)
      return m.lm_head.output.at(0, -1).save('patched')
    })
  })
  expect(Object.keys(out.saves)).toEqual(['patched'])
  expect(out.program.then).toHaveLength(1)
  const saved = await model.trace(france, (m) => m.transformer.h[2].output.at(':', '-1:').save())
  const direct = await model.trace(japan, (m) => {
    m.transformer.h[2].output.at(':', '-1:').set(saved)
    return m.lm_head.output.at(0, -1).save()
  })
  const a = out.saves.patched!.toFlat()
  const b = direct.toFlat()
  expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))).toBeLessThan(1e-5)
})
