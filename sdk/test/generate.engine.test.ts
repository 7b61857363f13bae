/**
 * `model.generate` end to end on demo-gpt2 (wire-format round trip through Weft.simulate): tokens and text, per-step
 * reads and steering against the float64 oracle generating by repeated full forwards, multi-invoke, recording errors.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Weft, type GPT2, type Model } from '../src/index.js'
import { MODELS_DIR } from './fixtures/reference.js'
import { loadOracle, maxRelError, oracleForward, oracleGreedy, type Oracle, type RowEdit } from '../../providers/onnx/test/generate-oracle.js'

const FRANCE = [328, 370, 293, 3606, 297]
const STEER = Array.from({ length: 256 }, (_, i) => 2 * Math.sin(0.37 * i + 1))
const steerRows: RowEdit = (path, _step, row) => {
  if (path !== 'transformer.h.1') return false
  row.forEach((v, i) => { row[i] = v + STEER[i]! })
  return true
}

let weft: Weft
let model: Model<GPT2>
let oracle: Oracle

beforeAll(async () => {
  weft = await Weft.simulate({ modelsDir: MODELS_DIR })
  model = await weft.model<GPT2>('demo-gpt2')
  oracle = await loadOracle(`${MODELS_DIR}/demo-gpt2/`)
})
afterAll(async () => { await weft.close() })

describe('model.generate', () => {
  test("greedy: ' Paris' first, tokens equal the oracle's, text decodes them", async () => {
    const out = await model.generate('The capital of France is', { maxNewTokens: 8 })
    expect(model.token(out.tokens[0]!)).toBe(' Paris')
    expect(out.tokens).toEqual(oracleGreedy(oracle, FRANCE, 8).tokens)
    expect(out.text).toBe(await model.decode(out.tokens))
    expect(out.saves['generated.0']!.shape).toEqual([1, 8])
  })

  test('steering at every step with steps.all, per-step reads with steps.step and steps.iter match the steered oracle', async () => {
    const out = await model.generate('The capital of France is', { maxNewTokens: 6 }, (m, steps) => {
      steps.all((m) => {
        const h = m.transformer.h[1].output
        h.set(h.add(STEER))
      })
      const h3 = steps.step(3, (m) => m.transformer.h[3].output)
      const top = steps.iter(steps.range(0, 4), (m) => m.lm_head.output.at(0, -1).argmax())
      return { h3, top, prompt: m.transformer.h[3].output }
    })
    const steered = oracleGreedy(oracle, FRANCE, 6, steerRows)
    expect(out.tokens).toEqual(steered.tokens)
    expect(out.top.map((t) => t.item())).toEqual(steered.tokens.slice(0, 4))
    expect(out.h3.shape).toEqual([1, 1, 256])
    const row = FRANCE.length + 2
    const acts = steered.forwards[3]!.get('transformer.h.3')!.data
    expect(maxRelError(out.h3.toFlat(), acts.subarray(row * 256, (row + 1) * 256))).toBeLessThan(1e-4)
    expect(out.prompt.shape).toEqual([1, 5, 256])
    expect(maxRelError(out.prompt.toFlat(), acts.subarray(0, 5 * 256))).toBeLessThan(1e-4)
  })

  test('multi-invoke: invoke 0 generates what it does alone; g.step spans invokes: invoke 0\'s step-2 MLP output patched into invoke 1 matches the oracle', async () => {
    const fox = await model.tokenize('The quick brown fox jumps over the lazy dog')
    const out = await model.generate({ maxNewTokens: 5 }, (g) => {
      const a = g.invoke(FRANCE, (m) => m)
      const b = g.invoke(fox, (m) => m)
      g.step(2, () => b.transformer.h[2].mlp.output.set(a.transformer.h[2].mlp.output))
      return { patched: g.step(2, () => b.lm_head.output.at(0, -1)) }
    })
    expect(out.tokens[0]).toEqual(oracleGreedy(oracle, FRANCE, 5).tokens)
    expect(out.text).toHaveLength(2)
    // oracle: invoke 0's step-2 MLP output of block 2 (its position P0 + 1) replaces invoke 1's at position P1 + 1
    const france = oracleGreedy(oracle, FRANCE, 3)
    const source = oracleForward(oracle, [...FRANCE, ...france.tokens.slice(0, 2)], FRANCE.length).get('transformer.h.2.mlp')!.data
      .slice((FRANCE.length + 1) * 256, (FRANCE.length + 2) * 256)
    const patched = oracleGreedy(oracle, fox, 5, (path, step, row) => {
      if (path !== 'transformer.h.2.mlp' || step !== 2) return false
      row.set(source)
      return true
    })
    expect(out.tokens[1]).toEqual(patched.tokens)
    expect(maxRelError(out.patched.toFlat(), patched.logits[2]!)).toBeLessThan(1e-4)
  })

  test('seeded sampling through the SDK is reproducible', async () => {
    const options = { maxNewTokens: 6, strategy: { temperature: 1.2, topK: 50, seed: 3 } }
    const [a, b] = [await model.generate('Once upon a time', options), await model.generate('Once upon a time', options)]
    expect(a.tokens).toEqual(b.tokens)
  })
})

describe('recording errors name the line', () => {
  test('a step outside 0 … maxNewTokens − 1', async () => {
    await expect(model.generate('x', { maxNewTokens: 4 }, (_m, steps) => steps.step(4, (m) => m.lm_head.output)))
      .rejects.toThrow(/step 4 does not exist.*generate\.engine\.test\.ts/)
  })

  test("saving a value of every step ('all') and returning a reserved key", async () => {
    await expect(model.generate('x', { maxNewTokens: 4 }, (_m, steps) => ({ h: steps.all((m) => m.transformer.h[0].output) })))
      .rejects.toThrow(/save: a value of step 'all'.*generate\.engine\.test\.ts/)
    await expect(model.generate('x', { maxNewTokens: 4 }, (m) => ({ tokens: m.lm_head.output })))
      .rejects.toThrow(/cannot return the key 'tokens'/)
  })
})
