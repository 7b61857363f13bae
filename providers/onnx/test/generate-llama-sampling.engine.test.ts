/**
 * Generation on tiny-llama (rotary positions, grouped-query KV cache) against the float64 oracle, and seeded sampling
 * on demo-gpt2 against a test-side implementation of the spec's sampling rule fed with the oracle's logits.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, type GenerateStrategy, type JobResult, type Program, type Tensor } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { generateProgram, loadOracle, maxRelError, oracleForward, oracleGreedy, site, type Oracle } from './generate-oracle.js'

const MODELS = new URL('../../../models/', import.meta.url).pathname
const FRANCE = [328, 370, 293, 3606, 297]
const MARY = [631, 1070, 302, 966, 680, 285, 266, 854, 12, 966, 685, 260, 912, 285]

const tokens = (t: Tensor): number[] => [...(t.data as BigInt64Array)].map(Number)

async function run (handle: OnnxModelHandle, p: Program): Promise<Extract<JobResult, { ok: true }>> {
  const [result] = await handle.run([{ id: 'job', program: p }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!
}

describe('tiny-llama', () => {
  let handle: OnnxModelHandle
  let oracle: Oracle
  beforeAll(async () => {
    handle = await onnxBackend().loadModel({ name: 'tiny-llama', path: MODELS + 'tiny-llama' }) as OnnxModelHandle
    oracle = await loadOracle(MODELS + 'tiny-llama/')
  })
  afterAll(async () => { await handle.dispose() })

  test('greedy tokens of a padded two-prompt batch equal the oracle per prompt; a step-4 read of layer 1 matches', async () => {
    const p = generateProgram('tiny-llama', [MARY, FRANCE], [[...site('read', 'model.layers.1', 4, 1), []], ['save', { name: 'h' }, [0]]],
      { maxNewTokens: 8, strategy: 'greedy' })
    const result = await run(handle, p)
    const mary = oracleGreedy(oracle, MARY, 8).tokens
    const france = oracleGreedy(oracle, FRANCE, 8)
    expect(tokens(result.saves['generated.0']!)).toEqual(mary)
    expect(tokens(result.saves['generated.1']!)).toEqual(france.tokens)
    const context = [...FRANCE, ...france.tokens.slice(0, 4)]
    const row = FRANCE.length + 3
    const want = oracleForward(oracle, context, FRANCE.length).get('model.layers.1')!.data.subarray(row * 64, (row + 1) * 64)
    expect(result.saves.h!.shape).toEqual([1, 1, 64])
    expect(maxRelError(result.saves.h!.data as Float32Array, want)).toBeLessThan(1e-4)
  })
})

/** The spec's sampling rule, written independently of the engine (BigInt.asUintN instead of masks). */
function specDraw (seed: number, invoke: number, step: number): number {
  const h = (x: bigint): bigint => {
    let z = BigInt.asUintN(64, x + 0x9E3779B97F4A7C15n)
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n)
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94D049BB133111EBn)
    return z ^ (z >> 31n)
  }
  return Number(h(h(h(BigInt(seed)) ^ BigInt(invoke)) ^ BigInt(step)) >> 11n) / 2 ** 53
}

function specSample (logits: Float64Array, temperature: number, topK: number, u: number): number {
  const ranked = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, topK).sort((a, b) => a - b)
  const top = Math.max(...ranked.map(i => logits[i]!))
  const weights = ranked.map(i => Math.exp((logits[i]! - top) / temperature))
  const target = u * weights.reduce((a, b) => a + b, 0)
  let acc = 0
  for (let i = 0; i < ranked.length; i++) { acc += weights[i]!; if (acc > target) return ranked[i]! }
  return ranked.at(-1)!
}

describe('seeded sampling (demo-gpt2)', () => {
  let handle: OnnxModelHandle
  let oracle: Oracle
  beforeAll(async () => {
    handle = await onnxBackend().loadModel({ name: 'demo-gpt2', path: MODELS + 'demo-gpt2' }) as OnnxModelHandle
    oracle = await loadOracle(MODELS + 'demo-gpt2/')
  })
  afterAll(async () => { await handle.dispose() })

  const sample = (seed: number, invokes = [FRANCE]): Program =>
    generateProgram('demo-gpt2', invokes, [], { maxNewTokens: 6, strategy: { temperature: 1.5, topK: 40, seed } satisfies GenerateStrategy })

  test('is reproducible, depends on the seed, and follows the spec rule on the oracle logits', async () => {
    const a = tokens((await run(handle, sample(7))).saves['generated.0']!)
    const b = tokens((await run(handle, sample(7))).saves['generated.0']!)
    const other = tokens((await run(handle, sample(8))).saves['generated.0']!)
    expect(b).toEqual(a)
    expect(other).not.toEqual(a)
    const ids = [...FRANCE]
    const expected: number[] = []
    for (let step = 0; step < 6; step++) {
      const logits = oracleForward(oracle, ids, FRANCE.length).get('logits')!.data
      const last = logits.slice((ids.length - 1) * oracle.vocab, ids.length * oracle.vocab)
      const token = specSample(last, 1.5, 40, specDraw(7, 0, step))
      expected.push(token)
      ids.push(token)
    }
    expect(a).toEqual(expected)
  })

  test('each invoke has its own stream: invoke 1 of a batch equals invoke 1 of the same prompts run again', async () => {
    const both = await run(handle, sample(11, [MARY, FRANCE]))
    const again = await run(handle, sample(11, [MARY, FRANCE]))
    expect(tokens(both.saves['generated.1']!)).toEqual(tokens(again.saves['generated.1']!))
    expect(tokens(both.saves['generated.1']!)).not.toEqual(tokens((await run(handle, sample(11))).saves['generated.0']!))
  })
})
