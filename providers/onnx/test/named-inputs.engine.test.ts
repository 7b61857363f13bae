/**
 * Module inputs by HF argument name (`<module>.inputs.<name>` sites) on the real demo-gpt2 and tiny-llama checkpoints
 * and a seeded GPT-NeoX (partial rotary): position_ids against transformers' arange, the rotary (cos, sin) pair
 * against a float64 computation from config.json and the transformers reference of `rotary_emb`, writes against the
 * float64 oracle run at the written positions / with the written tables, and gradients w.r.t. cos and sin against
 * float64 central differences.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readFile } from 'node:fs/promises'
import { PROGRAM_VERSION, WeftError, type JobResult, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { ensurePresetCheckpoint } from '../scripts/presets.js'
import { readCheckpointWeights, readSafetensors, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights, ropeSettings, type ReferenceHook } from './reference/forward.js'
import { relativeError, ropeTables } from './reference/math.js'
import { nextTokenOneHot, siteLossDerivative } from './grad-oracle.js'

const MODELS = new URL('../../../models/', import.meta.url).pathname
const P0 = [328, 370, 293, 3606, 297]
const SEQ = P0.length
const ARANGE = [0, 1, 2, 3, 4]

interface Model { handle: OnnxModelHandle; refs: Map<string, Tensor64> | null; weights: Map<string, Tensor64>; config: Record<string, any> }
const models: Record<string, Model> = {}

beforeAll(async () => {
  const dirs: Record<string, string> = { 'demo-gpt2': MODELS + 'demo-gpt2/', 'tiny-llama': MODELS + 'tiny-llama/', 'neox-tiny': ensurePresetCheckpoint('neox-tiny') + '/' }
  for (const [name, dir] of Object.entries(dirs)) {
    models[name] = {
      handle: await onnxBackend({ sessionCacheSize: 4 }).loadModel({ name, path: dir }) as OnnxModelHandle,
      refs: name === 'neox-tiny' ? null : await readSafetensors(dir + 'reference_activations.safetensors'),
      weights: await readCheckpointWeights(dir),
      config: JSON.parse(await readFile(dir + 'config.json', 'utf8')),
    }
  }
})
afterAll(async () => { for (const m of Object.values(models)) await m.handle.dispose() })

type Saves = Extract<JobResult, { ok: true }>['saves']

async function run (model: string, nodes: ProgramNode[]): Promise<Saves> {
  const program: Program = { version: PROGRAM_VERSION, model: { name: model, revision: null }, mode: 'trace', invokes: [{ ids: P0 }], nodes }
  const [result] = await models[model]!.handle.run([{ id: 'job', program }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!.saves
}

/** Reads and saves each `site` (`path` or `path:input`) under its own name; values as plain numbers. */
async function readSites (model: string, sites: string[]): Promise<Record<string, { shape: readonly number[]; data: number[] }>> {
  const nodes: ProgramNode[] = []
  for (const name of sites) {
    const [site, port] = name.split(':') as [string, 'input' | undefined]
    nodes.push(['read', { site, port: port ?? 'output', invoke: 0 }, []], ['save', { name }, [nodes.length]])
  }
  const saves = await run(model, nodes)
  return Object.fromEntries(sites.map((s) => [s, { shape: saves[s]!.shape, data: Array.from(saves[s]!.data as ArrayLike<number | bigint>, Number) }]))
}

const f32 = (shape: number[], values: ArrayLike<number>): ProgramNode =>
  ['const', { value: { dtype: 'float32', shape, data: Float32Array.from(values) } as never }, []]

/** The rotary tables [seq, dim] in float64 from config.json (rope_theta, head_dim, partial rotary) at `positions`. */
function tables (model: string, positions: number[]): { cos: Float64Array; sin: Float64Array; dim: number } {
  const c = models[model]!.config
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads
  const { theta, partial } = ropeSettings(c, c.model_type === 'gpt_neox' ? 0.25 : 1)
  const dim = Math.floor(headDim * partial)
  const { cos, sin } = ropeTables(positions.length, dim, theta, positions)
  return { cos: cos.data, sin: sin.data, dim }
}

describe('reading inputs by name', () => {
  test('demo-gpt2: position_ids of wpe, a block and its attention are arange(seq); the block passes its attention_mask on', async () => {
    const got = await readSites('demo-gpt2', ['transformer.wpe:input', 'transformer.wte:input', 'transformer.h.3.inputs.position_ids',
      'transformer.h.3.attn.inputs.position_ids', 'transformer.h.3.inputs.attention_mask', 'transformer.h.3.attn.inputs.attention_mask'])
    expect(got['transformer.wpe:input']!.data).toEqual(ARANGE)
    expect(got['transformer.wte:input']!.data).toEqual(P0)
    expect(got['transformer.h.3.inputs.position_ids']).toEqual({ shape: [1, SEQ], data: ARANGE })
    expect(got['transformer.h.3.attn.inputs.position_ids']!.data).toEqual(ARANGE)
    expect(got['transformer.h.3.inputs.attention_mask']!.data).toEqual(got['transformer.h.3.attn.inputs.attention_mask']!.data)
    expect(got['transformer.h.3.inputs.attention_mask']!.shape).toEqual([1, 1, SEQ, SEQ])
  })

  test('tiny-llama: position_ids are arange(seq); position_embeddings (cos, sin) match float64 tables from config and transformers\' rotary_emb', async () => {
    const a = 'model.layers.1.self_attn'
    const got = await readSites('tiny-llama', ['model.rotary_emb.inputs.position_ids', 'model.layers.1.inputs.position_ids', `${a}.inputs.position_ids`,
      'model.layers.1.inputs.position_embeddings.0', 'model.layers.1.inputs.position_embeddings.1', `${a}.inputs.position_embeddings.0`, `${a}.inputs.position_embeddings.1`])
    for (const site of ['model.rotary_emb.inputs.position_ids', 'model.layers.1.inputs.position_ids', `${a}.inputs.position_ids`]) expect(got[site]!.data).toEqual(ARANGE)
    const { cos, sin, dim } = tables('tiny-llama', ARANGE)
    expect(dim).toBe(16)
    for (const m of ['model.layers.1', a]) {
      expect(got[`${m}.inputs.position_embeddings.0`]!.shape).toEqual([1, SEQ, dim])
      expect(relativeError(got[`${m}.inputs.position_embeddings.0`]!.data, cos)).toBeLessThanOrEqual(1e-6)
      expect(relativeError(got[`${m}.inputs.position_embeddings.1`]!.data, sin)).toBeLessThanOrEqual(1e-6)
    }
    // transformers' LlamaRotaryEmbedding output (the cos of the (cos, sin) pair it returns)
    expect(relativeError(got[`${a}.inputs.position_embeddings.0`]!.data, models['tiny-llama']!.refs!.get('p0.module.model.rotary_emb')!.data)).toBeLessThanOrEqual(1e-6)
  })

  test('GPT-NeoX (partial rotary, rotary_pct 0.25): cos and sin cover rotary_pct·head_dim features', async () => {
    const a = 'gpt_neox.layers.0.attention'
    const got = await readSites('neox-tiny', [`${a}.inputs.position_ids`, `${a}.inputs.position_embeddings.0`, `${a}.inputs.position_embeddings.1`])
    const { cos, sin, dim } = tables('neox-tiny', ARANGE)
    expect(dim).toBe(4)
    expect(got[`${a}.inputs.position_ids`]!.data).toEqual(ARANGE)
    expect(got[`${a}.inputs.position_embeddings.0`]!.shape).toEqual([1, SEQ, 4])
    expect(relativeError(got[`${a}.inputs.position_embeddings.0`]!.data, cos)).toBeLessThanOrEqual(1e-6)
    expect(relativeError(got[`${a}.inputs.position_embeddings.1`]!.data, sin)).toBeLessThanOrEqual(1e-6)
  })
})

describe('writing inputs by name, against the float64 oracle', () => {
  const logitsAfter = async (model: string, site: string, port: 'output' | 'input', values: number[]): Promise<Float32Array> => {
    const head = model === 'neox-tiny' ? 'embed_out' : 'lm_head'
    const saves = await run(model, [f32([SEQ], values), ['write', { site, port, invoke: 0 }, [0]], ['read', { site: head, port: 'output', invoke: 0 }, []], ['save', { name: 'logits' }, [2]]])
    return saves.logits!.data as Float32Array
  }
  const oracle = (model: string, options: { positions?: number[]; hook?: ReferenceHook }): Float64Array => {
    const { config, weights } = models[model]!
    return referenceForwardWeights(config, weights, P0, options).get('logits')!.data
  }

  test('demo-gpt2: wpe position_ids = 3…7 gives the oracle\'s logits at those positions', async () => {
    const got = await logitsAfter('demo-gpt2', 'transformer.wpe', 'input', [3, 4, 5, 6, 7])
    expect(relativeError(got, oracle('demo-gpt2', { positions: [3, 4, 5, 6, 7] }))).toBeLessThanOrEqual(1e-4)
    expect(relativeError(got, oracle('demo-gpt2', {}))).toBeGreaterThan(1e-2)
  })

  test('rotary_emb position_ids = 0,2,4,6,8 (every layer rotates there) gives the oracle\'s logits; a uniform shift changes nothing (rotary is relative)', async () => {
    for (const model of ['tiny-llama', 'neox-tiny']) {
      const site = model === 'tiny-llama' ? 'model.rotary_emb.inputs.position_ids' : 'gpt_neox.rotary_emb.inputs.position_ids'
      const stretched = await logitsAfter(model, site, 'output', [0, 2, 4, 6, 8])
      expect(relativeError(stretched, oracle(model, { positions: [0, 2, 4, 6, 8] })), model).toBeLessThanOrEqual(1e-4)
      expect(relativeError(stretched, oracle(model, {})), model).toBeGreaterThan(1e-3)
      const shifted = await logitsAfter(model, site, 'output', [7, 8, 9, 10, 11])
      expect(relativeError(shifted, oracle(model, {})), model).toBeLessThanOrEqual(1e-4)
    }
  })

  test('tiny-llama: layer 1\'s attention rotating with (cos, sin) at positions 0,2,4,6,8 matches the oracle with those tables in layer 1 only', async () => {
    const a = 'model.layers.1.self_attn'
    const { cos, sin, dim } = tables('tiny-llama', [0, 2, 4, 6, 8])
    const saves = await run('tiny-llama', [
      f32([SEQ, dim], cos), ['write', { site: `${a}.inputs.position_embeddings.0`, port: 'output', invoke: 0 }, [0]],
      f32([SEQ, dim], sin), ['write', { site: `${a}.inputs.position_embeddings.1`, port: 'output', invoke: 0 }, [2]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'logits' }, [4]],
      ['read', { site: 'model.layers.0.self_attn.q', port: 'output', invoke: 0 }, []], ['save', { name: 'q0' }, [6]],
    ])
    const hook: ReferenceHook = (path, value) => {
      if (path === `${a}.inputs.position_embeddings.0`) return { ...value, data: cos }
      if (path === `${a}.inputs.position_embeddings.1`) return { ...value, data: sin }
      return undefined
    }
    const expected = referenceForwardWeights(models['tiny-llama']!.config, models['tiny-llama']!.weights, P0, { hook })
    expect(relativeError(saves.logits!.data as Float32Array, expected.get('logits')!.data)).toBeLessThanOrEqual(1e-4)
    expect(relativeError(saves.logits!.data as Float32Array, oracle('tiny-llama', {}))).toBeGreaterThan(1e-3)
    expect(relativeError(saves.q0!.data as Float32Array, expected.get('model.layers.0.self_attn.q')!.data)).toBeLessThanOrEqual(1e-5)
  })

  test('demo-gpt2: a block\'s attention_mask reaches its attention: hiding key 1 in block 2 matches the oracle with those scores masked', async () => {
    const saves = await run('demo-gpt2', [
      f32([], [-3.4028234663852886e38]), ['write', { site: 'transformer.h.2.inputs.attention_mask', port: 'output', invoke: 0, index: [null, null, null, 1] }, [0]],
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'logits' }, [2]],
    ])
    const hook: ReferenceHook = (path, value) => {
      if (path !== 'transformer.h.2.attn.scores') return undefined
      const data = Float64Array.from(value.data)
      for (let r = 0; r < value.rows; r++) data[r * SEQ + 1] = -1e30
      return { ...value, data }
    }
    expect(relativeError(saves.logits!.data as Float32Array, oracle('demo-gpt2', { hook }))).toBeLessThanOrEqual(1e-4)
  })
})

describe('gradients w.r.t. inputs', () => {
  test.each([
    ['tiny-llama', 'model.layers.1.self_attn.inputs.position_embeddings.0', [3 * 16 + 2, 4 * 16 + 9]],
    ['tiny-llama', 'model.layers.1.self_attn.inputs.position_embeddings.1', [2 * 16 + 5, 4 * 16 + 12]],
    ['tiny-llama', 'model.layers.0.inputs.position_embeddings.1', [1 * 16 + 0, 3 * 16 + 7]],
    ['neox-tiny', 'gpt_neox.layers.1.attention.inputs.position_embeddings.0', [2 * 4 + 1, 4 * 4 + 3]],
  ] as [string, string, number[]][])('%s d loss/d %s against float64 central differences', async (model, site, coordinates) => {
    const vocab = models[model]!.config.vocab_size as number
    const nodes: ProgramNode[] = [
      ['read', { site: model === 'neox-tiny' ? 'embed_out' : 'lm_head', port: 'output', invoke: 0 }, []],
      ['index', { index: [0, [0, -1, null]] }, [0]],
      ['log_softmax', { axis: -1 }, [1]],
      ['const', { value: { dtype: 'float32', shape: [SEQ - 1, vocab], data: nextTokenOneHot(P0, vocab) } as never }, []],
      ['mul', {}, [2, 3]], ['sum', { axes: null }, [4]],
      f32([], [-1 / (SEQ - 1)]), ['mul', {}, [5, 6]],
      ['read', { site, port: 'output', invoke: 0 }, []], ['grad', {}, [7, 8]], ['save', { name: 'g' }, [9]],
    ]
    const grad = (await run(model, nodes)).g!.data as Float32Array
    const { config, weights } = models[model]!
    let nonzero = 0
    for (const at of coordinates) {
      const fd = siteLossDerivative(config, weights, P0, vocab, site, at)
      if (Math.abs(fd) > 1e-6) nonzero++
      expect(Math.abs(grad[at]! - fd), `${site}[${at}]: ${grad[at]} vs ${fd}`).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(fd), 1e-1))
    }
    expect(nonzero).toBeGreaterThan(0)
  })

  test('integer inputs are not differentiable: a grad w.r.t. position_ids is refused with a PROGRAM_INVALID naming the dtype', async () => {
    const error = await run('tiny-llama', [
      ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['sum', { axes: null }, [0]],
      ['read', { site: 'model.rotary_emb.inputs.position_ids', port: 'output', invoke: 0 }, []], ['grad', {}, [1, 2]], ['save', { name: 'g' }, [3]],
    ]).then(() => null, (e: unknown) => e)
    expect(error).toBeInstanceOf(WeftError)
    expect((error as WeftError).code).toBe('PROGRAM_INVALID')
    expect((error as WeftError).message).toContain('wrt must be a float value, got int64')
  })
})
