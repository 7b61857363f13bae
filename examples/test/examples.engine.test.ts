// Smoke tests for every example on demo-gpt2, with numbers asserted where the transformers references make them knowable.
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { type GPT2, type Model } from '@weft/sdk'
import { argmax, lensLogits, reference, referencePrompts, row } from '../../sdk/test/fixtures/reference.js'
import { useLocalModel } from '../../sdk/test/fixtures/local.js'
import { logitLens, lensSvg, lensTable } from '../src/logit-lens.js'
import { ioiPatching, ioiTables, DEFAULT_IOI } from '../src/ioi-patching.js'
import { causalTracing, tracingSvg } from '../src/causal-tracing.js'
import { steering, steeringTable } from '../src/steering.js'
import { trainSteering, lossCurveSvg, DEFAULT_TRAIN_STEERING } from '../src/train-steering.js'

const MODEL = 'demo-gpt2'
const { prompts } = referencePrompts(MODEL)
let model: Model<GPT2>

useLocalModel<GPT2>(MODEL, (_weft, m) => { model = m })

const softmaxAt = (logits: Float64Array, id: number): number => {
  const max = Math.max(...logits)
  const total = logits.reduce((a, v) => a + Math.exp(v - max), 0)
  return Math.exp(logits[id]! - max) / total
}

describe('examples', () => {
  test('logit lens: every layer matches an independent float64 lens; the last layer says " Paris"', async () => {
    const result = await logitLens(model, prompts[0]!)
    expect(result.layers).toEqual(['embed', 'h.0', 'h.1', 'h.2', 'h.3', 'h.4', 'h.5'])
    expect(result.top.at(-1)!.at(-1)!.token).toBe(' Paris')
    for (let layer = 0; layer < 6; layer++) {
      const hidden = reference(MODEL, `p0.module.transformer.h.${layer}`)
      const expected = [0, 1, 2, 3, 4].map((p) => argmax(lensLogits(MODEL, row(hidden, p))))
      expect(result.top[layer + 1]!.map((cell) => cell.id), `h.${layer}`).toEqual(expected)
    }
    const finalProb = softmaxAt(row(reference(MODEL, 'p0.logits'), -1), result.top.at(-1)!.at(-1)!.id)
    expect(result.top.at(-1)!.at(-1)!.prob).toBeCloseTo(finalProb, 4)
    expect(lensTable(result)).toContain('␣Paris')
    const file = lensSvg(result, 'test-logit-lens.svg')
    expect(readFileSync(file, 'utf8')).toMatch(/^<svg[\s\S]*Paris[\s\S]*<\/svg>$/)
  })

  test('IOI patching: clean logit difference equals the reference; patching the last layer restores it', async () => {
    const result = await ioiPatching(model)
    expect(DEFAULT_IOI.clean).toBe(prompts[1])
    const last = row(reference(MODEL, 'p1.logits'), -1)
    const [mary, john] = [await model.tokenize(' Mary'), await model.tokenize(' John')]
    expect(result.cleanDiff).toBeCloseTo(last[mary[0]!]! - last[john[0]!]!, 3)
    expect(result.corruptDiff).toBeLessThan(0)
    expect(result.layerDiffs.at(-1)!).toBeCloseTo(result.cleanDiff, 3)
    expect(result.layerRecovery.at(-1)!).toBeCloseTo(1, 4)
    expect(result.headRecovery).toHaveLength(6)
    expect(result.headRecovery.every((r) => r.length === 8 && r.every(Number.isFinite))).toBe(true)
    expect(ioiTables(result)).toContain('head 7')
  })

  test('causal tracing: clean run predicts " Paris" with the reference probability; restoring the last layer recovers it', async () => {
    const result = await causalTracing(model)
    expect(result.cleanTop).toBe(' Paris')
    const paris = (await model.tokenize(' Paris'))[0]!
    expect(result.cleanProb).toBeCloseTo(softmaxAt(row(reference(MODEL, 'p0.logits'), -1), paris), 4)
    expect(result.subjectPositions).toEqual([3])
    expect(result.corruptProb).toBeLessThan(result.cleanProb)
    expect(result.probs).toHaveLength(6)
    expect(result.probs[5]![4]!).toBeCloseTo(result.cleanProb, 4)     // last layer, last position = the clean output
    expect(result.probs[0]![3]!).toBeCloseTo(result.cleanProb, 2)     // restoring the subject right after layer 0
    for (const layer of result.probs) expect(layer[0]!).toBeCloseTo(result.corruptProb, 4)  // before the subject: no effect
    expect(existsSync(tracingSvg(result, 'test-causal-tracing.svg'))).toBe(true)
  })

  test('steering moves the answer from " Paris" to " Tokyo"', async () => {
    const result = await steering(model)
    expect(result.before[0]!.token).toBe(' Paris')
    expect(result.after[0]!.token).toBe(' Tokyo')
    expect(result.completionBefore.startsWith(' Paris')).toBe(true)
    expect(result.completionAfter.startsWith(' Tokyo')).toBe(true)
    expect(steeringTable(result)).toContain('␣Tokyo')
  })

  test('train-steering: 4 Adam steps in one session match PyTorch\'s first losses; only the curve and one scalar come back', async () => {
    const ref = JSON.parse(readFileSync(new URL('../../models/demo-gpt2/reference_training.json', import.meta.url), 'utf8')) as { steering_vector: { loss_per_step: number[] } }
    const result = await trainSteering(model, { ...DEFAULT_TRAIN_STEERING, steps: 4 })
    const want = ref.steering_vector.loss_per_step
    result.losses.forEach((l, k) => expect(Math.abs(l - want[k]!) / want[k]!).toBeLessThan(1e-4))
    expect(Math.abs(result.finalLoss - want[4]!) / want[4]!).toBeLessThan(1e-4)
    expect(result.resultBytes).toBe(4 * 4 + 4)
    expect(lossCurveSvg(result.losses, 'loss')).toContain('<polyline')
  })
})
