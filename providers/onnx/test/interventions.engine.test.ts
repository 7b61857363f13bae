/**
 * Interventions end to end on demo-gpt2: compiled Programs against transformers references and the
 * float64 reference forward (with hooks for the edits), plus batching, caching and failure isolation.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { PROGRAM_VERSION, WeftError, type JobResult, type Program, type ProgramNode, type Tensor } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { compile } from '../src/compile/compile.js'
import { batchLayout } from '../src/compile/layout.js'
import { readCheckpointWeights, readSafetensors, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights, type ReferenceHook } from './reference/forward.js'
import { layerNorm, linear, mat, relativeError, type Mat } from './reference/math.js'

const DIR = new URL('../../../models/demo-gpt2/', import.meta.url).pathname
const FRANCE = [328, 370, 293, 3606, 297]
const FOX = [328, 1180, 1077, 286, 1336, 78, 289, 1754, 888, 1863, 83, 1121, 266, 3418, 90, 89, 519, 71]
const D = 256
const VOCAB = 4096

let handle: OnnxModelHandle
let refs: Map<string, Tensor64>
let weights: Map<string, Tensor64>
let config: Record<string, unknown>

beforeAll(async () => {
  handle = await onnxBackend({ sessionCacheSize: 32 }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
  refs = await readSafetensors(DIR + 'reference_activations.safetensors')
  weights = await readCheckpointWeights(DIR)
  config = JSON.parse(await (await import('node:fs/promises')).readFile(DIR + 'config.json', 'utf8'))
})
afterAll(async () => { await handle.dispose() })

function program (invokes: number[][], nodes: ProgramNode[]): Program {
  return { version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: invokes.map(ids => ({ ids })), nodes }
}

const f32 = (values: number[], shape = [values.length]): Tensor => ({ dtype: 'float32', shape, data: Float32Array.from(values) })

async function runOne (p: Program): Promise<Extract<JobResult, { ok: true }>> {
  const [result] = await handle.run([{ id: 'job', program: p }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!
}

function reference (ids: number[], hook?: ReferenceHook): Map<string, { shape: number[]; data: Float64Array }> {
  return referenceForwardWeights(config, weights, ids, hook === undefined ? {} : { hook })
}

/** logits[row, token] of a [.., seq, vocab] tensor at position `pos`. */
const logitAt = (data: ArrayLike<number>, pos: number, token: number): number => data[pos * VOCAB + token]!

describe('logit lens', () => {
  test('every layer equals lm_head(ln_f(h)) from the reference hidden states; the last says " Paris"', async () => {
    const nodes: ProgramNode[] = []
    for (let l = 0; l < 6; l++) {
      nodes.push(['read', { site: `transformer.h.${l}`, port: 'output', invoke: 0 }, []])
      nodes.push(['module_call', { module: 'transformer.ln_f' }, [nodes.length - 1]])
      nodes.push(['module_call', { module: 'lm_head' }, [nodes.length - 1]])
      nodes.push(['save', { name: `lens.${l}` }, [nodes.length - 1]])
    }
    const { saves } = await runOne(program([FRANCE], nodes))
    for (let l = 0; l < 6; l++) {
      const h = refs.get(`p0.module.transformer.h.${l}`)!
      const normed = layerNorm(mat(5, D, h.data), weights.get('transformer.ln_f.weight')!.data, weights.get('transformer.ln_f.bias')!.data, 1e-5)
      const expected = linear(normed, weights.get('transformer.wte.weight')!.data, VOCAB, null, 'out_in')
      expect(saves[`lens.${l}`]!.shape).toEqual([1, 5, VOCAB])
      expect(relativeError(saves[`lens.${l}`]!.data as Float32Array, expected.data)).toBeLessThan(1e-4)
    }
    const last = saves['lens.5']!.data as Float32Array
    let best = 0
    for (let t = 1; t < VOCAB; t++) if (logitAt(last, 4, t) > logitAt(last, 4, best)) best = t
    expect(handle.decode([best])).toBe(' Paris')
  })
})

describe('writes', () => {
  test('zero-ablating transformer.h.2.mlp matches the reference forward with that MLP zeroed', async () => {
    const { saves } = await runOne(program([FRANCE], [
      ['const', { value: f32([0], []) as never }, []],
      ['write', { site: 'transformer.h.2.mlp', port: 'output', invoke: 0 }, [0]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
      ['save', { name: 'logits' }, [2]],
    ]))
    const expected = reference(FRANCE, (path, m) => path === 'transformer.h.2.mlp' ? mat(m.rows, m.cols) : undefined).get('logits')!
    const plain = refs.get('p0.logits')!
    expect(relativeError(saves.logits!.data as Float32Array, expected.data)).toBeLessThan(1e-4)
    expect(relativeError(saves.logits!.data as Float32Array, plain.data)).toBeGreaterThan(1e-2)
  })

  test('slice assignment: a steering vector added at position 2 of transformer.h.1', async () => {
    const steer = Array.from({ length: D }, (_, i) => Math.sin(i * 1.7) * 0.8)
    const { saves } = await runOne(program([FRANCE], [
      ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []],
      ['index', { index: [null, 2] }, [0]],
      ['const', { value: f32(steer) as never }, []],
      ['add', {}, [1, 2]],
      ['write', { site: 'transformer.h.1', port: 'output', invoke: 0, index: [null, 2] }, [3]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
      ['save', { name: 'logits' }, [5]],
      ['save', { name: 'written' }, [4]],
    ]))
    const expected = reference(FRANCE, (path, m) => {
      if (path !== 'transformer.h.1') return undefined
      const out: Mat = mat(m.rows, m.cols, Float64Array.from(m.data))
      for (let i = 0; i < D; i++) out.data[2 * D + i]! += steer[i]!
      return out
    })
    expect(relativeError(saves.logits!.data as Float32Array, expected.get('logits')!.data)).toBeLessThan(1e-4)
    expect(relativeError(saves.written!.data as Float32Array, expected.get('transformer.h.1')!.data)).toBeLessThan(1e-5)
  })

  test('IOI activation patching: per-layer logit difference matches the reference and recovers fully at the last layer', async () => {
    const clean = handle.tokenize('When Mary and John went to the store, John gave a drink to')
    const corrupt = handle.tokenize('When John and Mary went to the store, Mary gave a drink to')
    expect(corrupt.length).toBe(clean.length)
    const [mary] = handle.tokenize(' Mary')
    const [john] = handle.tokenize(' John')
    const last = clean.length - 1
    const jobs = Array.from({ length: 6 }, (_, l) => ({
      id: `layer${l}`,
      program: program([clean, corrupt], [
        ['read', { site: `transformer.h.${l}`, port: 'output', invoke: 0 }, []],
        ['index', { index: [null, -1] }, [0]],
        ['write', { site: `transformer.h.${l}`, port: 'output', invoke: 1, index: [null, -1] }, [1]],
        ['read', { site: 'lm_head', port: 'output', invoke: 1 }, []],
        ['index', { index: [0, -1] }, [3]],
        ['save', { name: 'patched' }, [4]],
        ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
        ['index', { index: [0, -1] }, [6]],
        ['save', { name: 'clean' }, [7]],
      ]),
    }))
    const results = await handle.run(jobs)
    const cleanRef = reference(clean)
    const cleanDiff = (d: ArrayLike<number>): number => d[mary!]! - d[john!]!
    const refLast = cleanRef.get('logits')!.data.subarray(last * VOCAB, (last + 1) * VOCAB)
    const curve: number[] = []
    results.forEach((result, l) => {
      if (!result.ok) throw WeftError.fromWire(result.error)
      const patched = result.saves.patched!.data as Float32Array
      const expected = reference(corrupt, (path, m) => {
        if (path !== `transformer.h.${l}`) return undefined
        const out = mat(m.rows, m.cols, Float64Array.from(m.data))
        out.data.set(cleanRef.get(path)!.data.subarray(last * D, (last + 1) * D), last * D)
        return out
      }).get('logits')!.data.subarray(last * VOCAB, (last + 1) * VOCAB)
      expect(Math.abs(cleanDiff(patched) - cleanDiff(expected))).toBeLessThan(1e-3)
      expect(Math.abs(cleanDiff(result.saves.clean!.data as Float32Array) - cleanDiff(refLast))).toBeLessThan(1e-3)
      curve.push(cleanDiff(patched))
    })
    expect(Math.abs(curve[5]! - cleanDiff(refLast))).toBeLessThan(1e-3)
    const corruptDiff = cleanDiff(reference(corrupt).get('logits')!.data.subarray(last * VOCAB))
    expect(corruptDiff).toBeLessThan(cleanDiff(refLast))
  })
})

describe('reads and pruning', () => {
  test('attention probabilities of one head equal the transformers reference', async () => {
    const { saves } = await runOne(program([FRANCE], [
      ['read', { site: 'transformer.h.3.attn.probs', port: 'output', invoke: 0 }, []],
      ['index', { index: [0, 5] }, [0]],
      ['save', { name: 'head5' }, [1]],
    ]))
    const ref = refs.get('p0.attentions.3')!
    expect(saves.head5!.shape).toEqual([5, 5])
    const got = saves.head5!.data as Float32Array
    for (let i = 0; i < 25; i++) expect(got[i]).toBeCloseTo(ref.data[5 * 25 + i]!, 5)
  })

  test('a trace that saves transformer.h.2 and stops never computes later layers or the head', async () => {
    const p = program([FRANCE], [
      ['read', { site: 'transformer.h.2', port: 'output', invoke: 0 }, []],
      ['save', { name: 'h2' }, [0]],
      ['stop', {}, []],
    ])
    const compiled = compile(handle.loaded.graph, [{ program: p }], batchLayout([{ program: p }], () => FRANCE))
    const scopes = compiled.model.graph!.node.map(n => n.metadataProps.find(m => m.key === 'weft.scope')?.value ?? '')
    expect(scopes.some(s => s.startsWith('transformer.h.2'))).toBe(true)
    expect(scopes.some(s => s.startsWith('transformer.h.3') || s.startsWith('transformer.h.5') || s === 'lm_head')).toBe(false)
    const { saves } = await runOne(p)
    expect(relativeError(saves.h2!.data as Float32Array, refs.get('p0.module.transformer.h.2')!.data)).toBeLessThan(1e-5)
  })
})

describe('batching, caching, failures', () => {
  const scaled = (ids: number[], scale: number): Program => program([ids], [
    ['read', { site: 'transformer.h.2.mlp', port: 'output', invoke: 0 }, []],
    ['const', { value: f32([scale], []) as never }, []],
    ['mul', {}, [0, 1]],
    ['write', { site: 'transformer.h.2.mlp', port: 'output', invoke: 0 }, [2]],
    ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
    ['save', { name: 'logits' }, [4]],
  ])
  const scaleHook = (scale: number): ReferenceHook => (path, m) =>
    path === 'transformer.h.2.mlp' ? mat(m.rows, m.cols, m.data.map(v => v * scale)) : undefined

  test('constants and lengths are fed: programs of one structure share one compiled session', async () => {
    const first = await runOne(scaled(FRANCE, 0.5))
    const second = await runOne(scaled(FRANCE, 2))
    const third = await runOne(scaled(FOX, 3))
    expect(second.stats.cacheHit).toBe(true)
    expect(third.stats.cacheHit).toBe(true)
    expect(relativeError(first.saves.logits!.data as Float32Array, reference(FRANCE, scaleHook(0.5)).get('logits')!.data)).toBeLessThan(1e-4)
    expect(relativeError(second.saves.logits!.data as Float32Array, reference(FRANCE, scaleHook(2)).get('logits')!.data)).toBeLessThan(1e-4)
    expect(relativeError(third.saves.logits!.data as Float32Array, reference(FOX, scaleHook(3)).get('logits')!.data)).toBeLessThan(1e-4)
  })

  test('co-tenant jobs of different lengths each get the numbers they get alone', async () => {
    const a = program([FRANCE], [
      ['read', { site: 'transformer.h.4', port: 'output', invoke: 0 }, []],
      ['module_call', { module: 'transformer.ln_f' }, [0]],
      ['save', { name: 'lens' }, [1]],
    ])
    const b = scaled(FOX, 0)
    const together = await handle.run([{ id: 'a', program: a }, { id: 'b', program: b }])
    const aloneA = await runOne(a)
    const aloneB = await runOne(b)
    const [ta, tb] = together as Extract<JobResult, { ok: true }>[]
    expect(ta!.ok && tb!.ok).toBe(true)
    expect(relativeError(ta!.saves.lens!.data as Float32Array, aloneA.saves.lens!.data as Float32Array)).toBeLessThan(1e-5)
    expect(relativeError(tb!.saves.logits!.data as Float32Array, aloneB.saves.logits!.data as Float32Array)).toBeLessThan(1e-5)
  })

  test('a padded two-invoke program equals each invoke alone and the references', async () => {
    const both = await runOne(program([FOX, FRANCE], [
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
      ['save', { name: 'fox' }, [0]],
      ['read', { site: 'lm_head', port: 'output', invoke: 1 }, []],
      ['save', { name: 'france' }, [2]],
    ]))
    const alone = await runOne(program([FRANCE], [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'france' }, [0]]]))
    expect(both.saves.france!.shape).toEqual([1, 5, VOCAB])
    expect(relativeError(both.saves.france!.data as Float32Array, alone.saves.france!.data as Float32Array)).toBeLessThan(1e-5)
    expect(relativeError(both.saves.france!.data as Float32Array, refs.get('p0.logits')!.data)).toBeLessThan(1e-4)
    expect(relativeError(both.saves.fox!.data as Float32Array, refs.get('p2.logits')!.data)).toBeLessThan(1e-4)
  })

  test('a failing job gets a typed error naming its node; its co-tenant and the next program still run', async () => {
    const bad = program([FRANCE], [
      ['const', { value: { dtype: 'float32', shape: [D], data: new Float32Array(3) } as never }, []],
      ['write', { site: 'transformer.h.1', port: 'output', invoke: 0 }, [0]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
      ['save', { name: 'logits' }, [2]],
    ])
    const invalid = program([FRANCE], [['read', { site: 'transformer.h.9', port: 'output', invoke: 0 }, []], ['save', { name: 'x' }, [0]]])
    const good = scaled(FRANCE, 1)
    const results = await handle.run([{ id: 'bad', program: bad }, { id: 'good', program: good }, { id: 'invalid', program: invalid }])
    expect(results[0]).toMatchObject({ id: 'bad', ok: false, error: { code: 'EXECUTION_FAILED', details: { job: 'bad', node: 0, op: 'const' } } })
    expect(results[2]).toMatchObject({ id: 'invalid', ok: false, error: { code: 'PROGRAM_INVALID' } })
    expect(results[1]!.ok).toBe(true)
    const next = await runOne(good)
    expect(relativeError(next.saves.logits!.data as Float32Array, refs.get('p0.logits')!.data)).toBeLessThan(1e-4)
  })

  test('scan reports saved shapes without running', () => {
    const entries = handle.scan({ ...program([], []), invokes: [{ text: 'The capital of France is' }], nodes: [
      ['read', { site: 'transformer.h.0.attn.probs', port: 'output', invoke: 0 }, []],
      ['save', { name: 'probs' }, [0]],
    ] })
    expect(entries).toEqual([{ name: 'probs', shape: [1, 8, 5, 5], dtype: 'float32' }])
  })
})
