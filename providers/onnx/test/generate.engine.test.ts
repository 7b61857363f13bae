/**
 * Generation on demo-gpt2 against the float64 oracle generating by repeated full forwards: greedy tokens, per-step
 * edits and steering (the oracle applies each edit at the positions its step owns), per-step reads, KV cache vs plain
 * forwards, padded batches, stop tokens, compile reuse across decode steps.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, type JobResult, type Program, type ProgramNode, type Tensor } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { generateProgram, loadOracle, maxRelError, oracleForward, oracleGreedy, site, type Oracle, type RowEdit } from './generate-oracle.js'

const DIR = new URL('../../../models/demo-gpt2/', import.meta.url).pathname
const FRANCE = [328, 370, 293, 3606, 297]
const FOX = [328, 1180, 1077, 286, 1336, 78, 289, 1754, 888, 1863, 83, 1121, 266, 3418, 90, 89, 519, 71]
const N = 8
const D = 256
const VOCAB = 4096

let handle: OnnxModelHandle
let oracle: Oracle

beforeAll(async () => {
  handle = await onnxBackend({ sessionCacheSize: 32 }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
  oracle = await loadOracle(DIR)
})
afterAll(async () => { await handle.dispose() })

async function run (p: Program): Promise<Extract<JobResult, { ok: true }>> {
  const [result] = await handle.run([{ id: 'job', program: p }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!
}

const gen = (invokes: number[][], nodes: ProgramNode[], maxNewTokens = N, extra: { stopTokenIds?: number[] } = {}): Program =>
  generateProgram('demo-gpt2', invokes, nodes, { maxNewTokens, strategy: 'greedy', ...extra })
const tokens = (t: Tensor): number[] => [...(t.data as BigInt64Array)].map(Number)
const f32 = (values: ArrayLike<number>): Tensor => ({ dtype: 'float32', shape: [values.length], data: Float32Array.from(values) })

/** Unedited oracle greedy tokens, computed once per prompt (8 steps; fewer steps are a prefix). */
const plainCache = new Map<string, number[]>()
function plainGreedy (prompt: number[], steps: number): number[] {
  const key = prompt.join(',')
  if (!plainCache.has(key)) plainCache.set(key, oracleGreedy(oracle, prompt, N).tokens)
  return plainCache.get(key)!.slice(0, steps)
}

/** A deterministic steering vector (scaled to matter for this small model). */
const STEER = Array.from({ length: D }, (_, i) => 2 * Math.sin(0.37 * i + 1))

describe('greedy generation', () => {
  test("'The capital of France is' continues with ' Paris' and the 8 greedy tokens equal the oracle's", async () => {
    const result = await run(gen([FRANCE], []))
    const got = tokens(result.saves['generated.0']!)
    expect(result.saves['generated.0']!.shape).toEqual([1, N])
    expect(handle.decode([got[0]!])).toBe(' Paris')
    expect(got).toEqual(plainGreedy(FRANCE, N))
  })

  test('KV-cache logits of every step equal a plain (no-cache) forward over the whole context (≤1e-4)', async () => {
    const nodes: ProgramNode[] = []
    for (let s = 0; s < N; s++) {
      nodes.push([...site('read', 'lm_head', s), []], ['index', { index: [0, -1] }, [nodes.length]], ['save', { name: `logits.${s}` }, [nodes.length + 1]])
    }
    const result = await run(gen([FOX], nodes))
    const context = [...FOX, ...tokens(result.saves['generated.0']!)]
    for (let s = 0; s < N; s++) {
      const length = FOX.length + s
      const plain = (await handle.loaded.forward([context.slice(0, length)])).logits!
      const last = (plain.data as Float32Array).subarray((length - 1) * VOCAB, length * VOCAB)
      expect(result.saves[`logits.${s}`]!.shape).toEqual([VOCAB])
      expect(maxRelError(result.saves[`logits.${s}`]!.data as Float32Array, last)).toBeLessThan(1e-4)
    }
  })
})

describe('per-step interventions', () => {
  test('steering block 1 from step 2 on: tokens 0–1 unchanged, all tokens and step-3 logits equal the oracle edited at those steps only; decode steps compile once', async () => {
    const nodes: ProgramNode[] = [['const', { value: f32(STEER) as never }, []]]
    for (let s = 2; s < N; s++) {
      nodes.push([...site('read', 'transformer.h.1', s), []])
      nodes.push(['add', {}, [nodes.length - 1, 0]])
      nodes.push([...site('write', 'transformer.h.1', s), [nodes.length - 1]])
    }
    nodes.push([...site('read', 'lm_head', 3), []], ['index', { index: [0, -1] }, [nodes.length]], ['save', { name: 'logits3' }, [nodes.length + 1]])
    const misses = handle.generator.sessions.misses
    const result = await run(gen([FRANCE], nodes))
    const got = tokens(result.saves['generated.0']!)
    const plain = plainGreedy(FRANCE, N)
    const edit: RowEdit = (path, step, row) => {
      if (path !== 'transformer.h.1' || step < 2) return false
      row.forEach((v, i) => { row[i] = v + STEER[i]! })
      return true
    }
    const edited = oracleGreedy(oracle, FRANCE, N, edit)
    expect(got.slice(0, 2)).toEqual(plain.slice(0, 2))
    expect(got).toEqual(edited.tokens)
    expect(got).not.toEqual(plain)
    expect(maxRelError(result.saves.logits3!.data as Float32Array, edited.logits[3]!)).toBeLessThan(1e-4)
    // step 0, step 1, and one graph for steps 2–7 (their slices differ only in the step attrs)
    expect(handle.generator.sessions.misses - misses).toBeLessThanOrEqual(3)
  })

  test("steering at every step ('all') equals the oracle with the vector added at every position", async () => {
    const result = await run(gen([FRANCE], [
      [...site('read', 'transformer.h.1', 'all'), []],
      ['const', { value: f32(STEER) as never }, []],
      ['add', {}, [0, 1]],
      [...site('write', 'transformer.h.1', 'all'), [2]],
      [...site('read', 'lm_head', N - 1), []],
      ['index', { index: [0, -1] }, [4]],
      ['save', { name: 'last' }, [5]],
    ]))
    const edited = oracleGreedy(oracle, FRANCE, N, (path, _step, row) => {
      if (path !== 'transformer.h.1') return false
      row.forEach((v, i) => { row[i] = v + STEER[i]! })
      return true
    })
    expect(tokens(result.saves['generated.0']!)).toEqual(edited.tokens)
    expect(maxRelError(result.saves.last!.data as Float32Array, edited.logits[N - 1]!)).toBeLessThan(1e-4)
  })

  test('reads at step 3 (block output, attention over prompt + 3 keys) equal the oracle at that position', async () => {
    const result = await run(gen([FRANCE], [
      [...site('read', 'transformer.h.3', 3), []], ['save', { name: 'h3' }, [0]],
      [...site('read', 'transformer.h.0.attn.probs', 3), []], ['save', { name: 'probs' }, [2]],
      [...site('read', 'transformer.h.3', 0), []], ['save', { name: 'h3_prompt' }, [4]],
    ], 5))
    const P = FRANCE.length
    const context = [...FRANCE, ...tokens(result.saves['generated.0']!).slice(0, 3)]
    const acts = oracleForward(oracle, context, P)
    const row = P + 2
    expect(result.saves.h3!.shape).toEqual([1, 1, D])
    expect(maxRelError(result.saves.h3!.data as Float32Array, acts.get('transformer.h.3')!.data.subarray(row * D, (row + 1) * D))).toBeLessThan(1e-4)
    const probs = acts.get('transformer.h.0.attn.probs')!
    const seq = context.length
    const want = Array.from({ length: 8 }, (_, h) => [...probs.data.subarray(h * seq * seq + row * seq, h * seq * seq + row * seq + P + 3)]).flat()
    expect(result.saves.probs!.shape).toEqual([1, 8, 1, P + 3])
    expect(maxRelError(result.saves.probs!.data as Float32Array, want)).toBeLessThan(1e-4)
    expect(result.saves.h3_prompt!.shape).toEqual([1, P, D])
    expect(maxRelError(result.saves.h3_prompt!.data as Float32Array, acts.get('transformer.h.3')!.data.subarray(0, P * D))).toBeLessThan(1e-4)
  })

  test('zeroing the first MLP output at step 1 of invoke 1 only: invoke 0 is untouched, invoke 1 equals its oracle', async () => {
    const result = await run(gen([FOX, FRANCE], [
      ['const', { value: f32([0]) as never }, []],
      [...site('write', 'transformer.h.0.mlp', 1, 1), [0]],
    ], 6))
    const zero: RowEdit = (path, step, row) => { if (path !== 'transformer.h.0.mlp' || step !== 1) return false; row.fill(0); return true }
    const edited = oracleGreedy(oracle, FRANCE, 6, zero).tokens
    expect(tokens(result.saves['generated.0']!)).toEqual(plainGreedy(FOX, 6))
    expect(tokens(result.saves['generated.1']!)).toEqual(edited)
    expect(edited).not.toEqual(plainGreedy(FRANCE, 6))
  })
})

describe('values carried across steps', () => {
  test("a step-3 write of a value read at step 0 (the prompt's last position) equals the oracle", async () => {
    const result = await run(gen([FRANCE], [
      [...site('read', 'transformer.h.2', 0), []], ['index', { index: [null, [-1, null, null]] }, [0]],
      [...site('write', 'transformer.h.2', 3), [1]],
    ], 6))
    const last = oracleForward(oracle, FRANCE, FRANCE.length).get('transformer.h.2')!.data.slice((FRANCE.length - 1) * D, FRANCE.length * D)
    const edited = oracleGreedy(oracle, FRANCE, 6, (path, step, row) => { if (path !== 'transformer.h.2' || step !== 3) return false; row.set(last); return true })
    expect(tokens(result.saves['generated.0']!)).toEqual(edited.tokens)
    expect(edited.tokens).not.toEqual(plainGreedy(FRANCE, 6))
  })

  test("steering every step of invoke 0 with invoke 1's step-0 value (carried into later steps) equals the oracle", async () => {
    const result = await run(gen([FRANCE, FOX], [
      [...site('read', 'transformer.h.1', 0, 1), []], ['index', { index: [0, -1] }, [0]],
      ['const', { value: f32([0.5]) as never }, []], ['mul', {}, [1, 2]],
      [...site('read', 'transformer.h.1', 'all', 0), []], ['add', {}, [4, 3]],
      [...site('write', 'transformer.h.1', 'all', 0), [5]],
    ], 6))
    const fox = oracleForward(oracle, FOX, FOX.length).get('transformer.h.1')!.data.slice((FOX.length - 1) * D, FOX.length * D).map(v => 0.5 * v)
    const edited = oracleGreedy(oracle, FRANCE, 6, (path, _step, row) => { if (path !== 'transformer.h.1') return false; row.forEach((v, i) => { row[i] = v + fox[i]! }); return true })
    expect(tokens(result.saves['generated.0']!)).toEqual(edited.tokens)
    expect(edited.tokens).not.toEqual(plainGreedy(FRANCE, 6))
    expect(tokens(result.saves['generated.1']!)).toEqual(plainGreedy(FOX, 6))
  })
})

describe('batches and stopping', () => {
  test('a padded batch of two prompts generates what each generates alone (tokens and a step-2 read)', async () => {
    const nodes = (k: number): ProgramNode[] => [[...site('read', 'transformer.h.2', 2, k), []], ['save', { name: `h2.${k}` }, [2 * k]]]
    const both = await run(gen([FRANCE, FOX], [...nodes(0), ...nodes(1)], 6))
    const alone = [await run(gen([FRANCE], nodes(0), 6)), await run(gen([FOX], nodes(0), 6))]
    for (const k of [0, 1]) {
      expect(tokens(both.saves[`generated.${k}`]!)).toEqual(tokens(alone[k]!.saves['generated.0']!))
      expect(maxRelError(both.saves[`h2.${k}`]!.data as Float32Array, alone[k]!.saves['h2.0']!.data as Float32Array)).toBeLessThan(1e-5)
    }
  })

  test('a stop token ends its row (the token is kept); the other row continues unchanged', async () => {
    const plain = plainGreedy(FRANCE, N)
    const stop = plain[2]!
    const index = plain.indexOf(stop)
    const result = await run(gen([FRANCE, FOX], [], N, { stopTokenIds: [stop] }))
    expect(tokens(result.saves['generated.0']!)).toEqual(plain.slice(0, index + 1))
    const fox = plainGreedy(FOX, N)
    const foxStop = fox.indexOf(stop)
    expect(tokens(result.saves['generated.1']!)).toEqual(foxStop < 0 ? fox : fox.slice(0, foxStop + 1))
  })

  test('invalid generate Programs fail as PROGRAM_INVALID with the step problem named', async () => {
    const [result] = await handle.run([{ id: 'bad', program: gen([FRANCE], [[...site('read', 'lm_head', N), []], ['save', { name: 'x' }, [0]]]) }])
    expect(result!.ok).toBe(false)
    if (result!.ok) return
    expect(result!.error.code).toBe('PROGRAM_INVALID')
    expect(result!.error.message).toContain(`step ${N} is not below maxNewTokens`)
  })
})
