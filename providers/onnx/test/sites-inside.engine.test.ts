/**
 * Sites inside modules (q, k, v after rotary, scores, heads, resid_mid) on the real demo-gpt2 and tiny-llama
 * checkpoints: against the transformers references where they determine the value, against the float64 oracle's
 * attention math otherwise, with writes, and with gradients checked by central finite differences in float64.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readFile } from 'node:fs/promises'
import { PROGRAM_VERSION, WeftError, type JobResult, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { readCheckpointWeights, readSafetensors, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights, type ReferenceHook } from './reference/forward.js'
import { relativeError } from './reference/math.js'
import { nextTokenOneHot, siteLossDerivative } from './grad-oracle.js'

const MODELS = new URL('../../../models/', import.meta.url).pathname
const P0 = [328, 370, 293, 3606, 297]
const VOCAB = 4096

interface Model { handle: OnnxModelHandle; refs: Map<string, Tensor64>; weights: Map<string, Tensor64>; config: Record<string, any> }
const models: Record<string, Model> = {}

beforeAll(async () => {
  for (const name of ['demo-gpt2', 'tiny-llama']) {
    const dir = MODELS + name + '/'
    models[name] = {
      handle: await onnxBackend({ sessionCacheSize: 4 }).loadModel({ name, path: dir }) as OnnxModelHandle,
      refs: await readSafetensors(dir + 'reference_activations.safetensors'),
      weights: await readCheckpointWeights(dir),
      config: JSON.parse(await readFile(dir + 'config.json', 'utf8')),
    }
  }
})
afterAll(async () => { for (const m of Object.values(models)) await m.handle.dispose() })

const program = (model: string, nodes: ProgramNode[]): Program =>
  ({ version: PROGRAM_VERSION, model: { name: model, revision: null }, mode: 'trace', invokes: [{ ids: P0 }], nodes })

async function run (model: string, nodes: ProgramNode[]): Promise<Extract<JobResult, { ok: true }>['saves']> {
  const [result] = await models[model]!.handle.run([{ id: 'job', program: program(model, nodes) }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!.saves
}

/** Reads and saves each site's output under its own path. */
async function readSites (model: string, sites: string[]): Promise<Record<string, Float32Array>> {
  const nodes: ProgramNode[] = []
  for (const site of sites) nodes.push(['read', { site, port: 'output', invoke: 0 }, []], ['save', { name: site }, [nodes.length]])
  const saves = await run(model, nodes)
  return Object.fromEntries(sites.map((s) => [s, saves[s]!.data as Float32Array]))
}

const ref = (model: string, key: string): Float64Array => models[model]!.refs.get(`p0.${key}`)!.data
const SEQ = P0.length

describe('against the transformers references', () => {
  test('demo-gpt2: q and v are c_attn split per head, causal softmax(scores) = attentions, c_proj(heads) = c_proj, resid_mid = h + attn', async () => {
    const L = 2; const d = 256; const heads = 8; const hd = 32
    const a = `transformer.h.${L}.attn`
    const got = await readSites('demo-gpt2', [`${a}.q`, `${a}.v`, `${a}.scores`, `${a}.heads`, `transformer.h.${L}.resid_mid`])
    const qkv = ref('demo-gpt2', `module.${a}.c_attn`)
    const perHead = (offset: number): number[] => {
      const out: number[] = []
      for (let h = 0; h < heads; h++) for (let s = 0; s < SEQ; s++) for (let c = 0; c < hd; c++) out.push(qkv[s * 3 * d + offset + h * hd + c]!)
      return out
    }
    expect(relativeError(got[`${a}.q`]!, perHead(0))).toBeLessThanOrEqual(1e-5)
    expect(relativeError(got[`${a}.v`]!, perHead(2 * d))).toBeLessThanOrEqual(1e-5)
    expect(relativeError(causalSoftmax(got[`${a}.scores`]!, heads), ref('demo-gpt2', `attentions.${L}`))).toBeLessThanOrEqual(1e-5)
    // heads [seq, heads, hd] is c_proj's input: c_proj(heads) = the reference c_proj output
    const w = models['demo-gpt2']!.weights
    const projected = affine(got[`${a}.heads`]!, w.get(`${a}.c_proj.weight`)!.data, w.get(`${a}.c_proj.bias`)!.data, d, d)
    expect(relativeError(projected, ref('demo-gpt2', `module.${a}.c_proj`))).toBeLessThanOrEqual(1e-5)
    const mid = ref('demo-gpt2', `module.transformer.h.${L - 1}`).map((x, i) => x + ref('demo-gpt2', `module.${a}`)[i]!)
    expect(relativeError(got[`transformer.h.${L}.resid_mid`]!, mid)).toBeLessThanOrEqual(1e-5)
  })

  test('tiny-llama (grouped-query, rotary): v = v_proj per kv head, causal softmax(scores) = attentions, o_proj(heads) = o_proj, resid_mid', async () => {
    const L = 1; const heads = 4; const kvHeads = 2; const hd = 16
    const a = `model.layers.${L}.self_attn`
    const got = await readSites('tiny-llama', [`${a}.v`, `${a}.scores`, `${a}.heads`, `model.layers.${L}.resid_mid`])
    const v = ref('tiny-llama', `module.${a}.v_proj`)
    const perHead: number[] = []
    for (let h = 0; h < kvHeads; h++) for (let s = 0; s < SEQ; s++) for (let c = 0; c < hd; c++) perHead.push(v[s * kvHeads * hd + h * hd + c]!)
    expect(relativeError(got[`${a}.v`]!, perHead)).toBeLessThanOrEqual(1e-5)
    expect(relativeError(causalSoftmax(got[`${a}.scores`]!, heads), ref('tiny-llama', `attentions.${L}`))).toBeLessThanOrEqual(1e-5)
    const w = models['tiny-llama']!.weights.get(`${a}.o_proj.weight`)!.data
    const projected = affine(got[`${a}.heads`]!, transpose(w, 64, heads * hd), null, heads * hd, 64)
    expect(relativeError(projected, ref('tiny-llama', `module.${a}.o_proj`))).toBeLessThanOrEqual(1e-5)
    const mid = ref('tiny-llama', `module.model.layers.${L - 1}`).map((x, i) => x + ref('tiny-llama', `module.${a}`)[i]!)
    expect(relativeError(got[`model.layers.${L}.resid_mid`]!, mid)).toBeLessThanOrEqual(1e-5)
  })
})

describe("against the float64 oracle's attention math", () => {
  test.each([
    ['demo-gpt2', 'transformer.h.4.attn', 'transformer.h.4'],
    ['tiny-llama', 'model.layers.0.self_attn', 'model.layers.0'],
  ])('%s: q and k after rotary, v, scores, probs, heads, resid_mid to 1e-4', async (model, a, block) => {
    const { config, weights } = models[model]!
    const oracle = referenceForwardWeights(config, weights, P0)
    const sites = ['q', 'k', 'v', 'scores', 'probs', 'heads'].map((s) => `${a}.${s}`).concat(`${block}.resid_mid`)
    const got = await readSites(model, sites)
    for (const site of sites) expect(relativeError(got[site]!, oracle.get(site)!.data), site).toBeLessThanOrEqual(1e-4)
  })

  test('writes: zeroing one head of tiny-llama heads and scaling rotary q match the oracle with the same edits', async () => {
    const a = 'model.layers.0.self_attn'
    const nodes: ProgramNode[] = [
      ['read', { site: `${a}.heads`, port: 'output', invoke: 0 }, []],
      ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(0) } as never }, []],
      ['write', { site: `${a}.heads`, port: 'output', invoke: 0, index: [null, null, 1] }, [1]],
      ['read', { site: `${a}.q`, port: 'output', invoke: 0 }, []],
      ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(2) } as never }, []],
      ['mul', {}, [3, 4]],
      ['write', { site: `${a}.q`, port: 'output', invoke: 0 }, [5]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
      ['save', { name: 'logits' }, [7]],
    ]
    const saves = await run('tiny-llama', nodes)
    const hook: ReferenceHook = (path, value) => {
      if (path === `${a}.q`) return { ...value, data: value.data.map((x) => 2 * x) }
      if (path !== `${a}.heads`) return undefined
      const data = Float64Array.from(value.data)
      for (let s = 0; s < SEQ; s++) data.fill(0, s * 64 + 16, s * 64 + 32)
      return { ...value, data }
    }
    const { config, weights } = models['tiny-llama']!
    const expected = referenceForwardWeights(config, weights, P0, { hook }).get('logits')!.data
    expect(relativeError(saves.logits!.data as Float32Array, expected)).toBeLessThanOrEqual(1e-4)
    expect(relativeError(expected, referenceForwardWeights(config, weights, P0).get('logits')!.data)).toBeGreaterThan(1e-3)
  })
})

describe('named inputs: attention_mask', () => {
  test('tiny-llama: the mask reads as the causal pattern; masking key 1 in layer 1 only matches the oracle with those scores masked', async () => {
    const a = 'model.layers.1.self_attn'
    const mask = (await readSites('tiny-llama', [`${a}.inputs.attention_mask`]))[`${a}.inputs.attention_mask`]!
    expect(Array.from(mask, (x) => x === 0 ? 0 : 1)).toEqual(Array.from({ length: SEQ * SEQ }, (_, r) => (r % SEQ) > Math.floor(r / SEQ) ? 1 : 0))
    expect(Math.min(...mask)).toBeLessThan(-1e38)
    const nodes: ProgramNode[] = [
      ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(-3.4028234663852886e38) } as never }, []],
      ['write', { site: `${a}.inputs.attention_mask`, port: 'output', invoke: 0, index: [null, null, null, 1] }, [0]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
      ['save', { name: 'logits' }, [2]],
      ['read', { site: 'model.layers.0.self_attn.probs', port: 'output', invoke: 0 }, []],
      ['save', { name: 'probs0' }, [4]],
    ]
    const saves = await run('tiny-llama', nodes)
    const { config, weights } = models['tiny-llama']!
    const hook: ReferenceHook = (path, value) => {
      if (path !== `${a}.scores`) return undefined
      const data = Float64Array.from(value.data)
      for (let r = 0; r < value.rows; r++) data[r * SEQ + 1] = -1e30
      return { ...value, data }
    }
    const oracle = referenceForwardWeights(config, weights, P0, { hook })
    expect(relativeError(saves.logits!.data as Float32Array, oracle.get('logits')!.data)).toBeLessThanOrEqual(1e-4)
    // layer 0 keeps its own, unedited mask
    expect(relativeError(saves.probs0!.data as Float32Array, oracle.get('model.layers.0.self_attn.probs')!.data)).toBeLessThanOrEqual(1e-5)
  })
})

describe('gradients of the causal-LM loss w.r.t. the new sites, against float64 finite differences', () => {
  test.each([
    ['demo-gpt2', 'transformer.h.2.attn.scores', [[3 * SEQ * SEQ + 4 * SEQ + 2], [0 * SEQ * SEQ + 3 * SEQ + 1]]],
    ['demo-gpt2', 'transformer.h.1.resid_mid', [[2 * 256 + 7], [4 * 256 + 100]]],
    ['tiny-llama', 'model.layers.0.self_attn.q', [[1 * SEQ * 16 + 3 * 16 + 2], [3 * SEQ * 16 + 4 * 16 + 9]]],
    ['tiny-llama', 'model.layers.1.self_attn.k', [[0 * SEQ * 16 + 1 * 16 + 5], [1 * SEQ * 16 + 2 * 16 + 15]]],
    ['tiny-llama', 'model.layers.0.self_attn.heads', [[2 * 64 + 20], [4 * 64 + 63]]],
  ] as [string, string, number[][]][])('%s d loss/d %s', async (model, site, coordinates) => {
    const nodes: ProgramNode[] = []
    const loss = lossNodes(nodes)
    nodes.push(['read', { site, port: 'output', invoke: 0 }, []], ['grad', {}, [loss, nodes.length]], ['save', { name: 'g' }, [nodes.length + 1]])
    const grad = (await run(model, nodes)).g!.data as Float32Array
    const { config, weights } = models[model]!
    let nonzero = 0
    for (const [at] of coordinates as [number][]) {
      const fd = siteLossDerivative(config, weights, P0, VOCAB, site, at)
      const got = grad[at]!
      if (Math.abs(fd) > 1e-6) nonzero++
      expect(Math.abs(got - fd), `${site}[${at}]: ${got} vs ${fd}`).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(fd), 1e-1))
    }
    expect(nonzero).toBeGreaterThan(0)
  })
})

/** The causal-LM loss of P0 as Program nodes; returns the loss node. */
function lossNodes (nodes: ProgramNode[]): number {
  nodes.push(
    ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
    ['index', { index: [0, [0, -1, null]] }, [0]],
    ['log_softmax', { axis: -1 }, [1]],
    ['const', { value: { dtype: 'float32', shape: [SEQ - 1, VOCAB], data: nextTokenOneHot(P0, VOCAB) } as never }, []],
    ['mul', {}, [2, 3]],
    ['sum', { axes: null }, [4]],
    ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(-1 / (SEQ - 1)) } as never }, []],
    ['mul', {}, [5, 6]],
  )
  return 7
}

/** Softmax over keys j ≤ i of scores [heads, seq, seq] (transformers' causal mask), in float64. */
function causalSoftmax (scores: ArrayLike<number>, heads: number): Float64Array {
  const out = new Float64Array(heads * SEQ * SEQ)
  for (let r = 0; r < heads * SEQ; r++) {
    const i = r % SEQ
    let max = -Infinity
    for (let j = 0; j <= i; j++) max = Math.max(max, scores[r * SEQ + j]!)
    let total = 0
    for (let j = 0; j <= i; j++) total += (out[r * SEQ + j] = Math.exp(scores[r * SEQ + j]! - max))
    for (let j = 0; j <= i; j++) out[r * SEQ + j]! /= total
  }
  return out
}

/** x [seq, inDim] · w [inDim, outDim] + b */
function affine (x: ArrayLike<number>, w: Float64Array, b: Float64Array | null, inDim: number, outDim: number): Float64Array {
  const out = new Float64Array(SEQ * outDim)
  for (let s = 0; s < SEQ; s++) {
    for (let o = 0; o < outDim; o++) {
      let sum = b?.[o] ?? 0
      for (let i = 0; i < inDim; i++) sum += x[s * inDim + i]! * w[i * outDim + o]!
      out[s * outDim + o] = sum
    }
  }
  return out
}

/** [rows, cols] → [cols, rows] */
function transpose (w: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!
  return out
}
