/**
 * The test oracle is right: the float64 reference forward matches the transformers references of demo-gpt2 and
 * tiny-llama, and its NeoX/Qwen2 paths agree with those validated paths on converted weights.
 */
import { describe, expect, test } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { referenceForward, referenceForwardWeights, type Activations } from './reference/forward.js'
import { readCheckpointWeights, readSafetensors, type Tensor64 } from './reference/safetensors.js'
import { applyRope, layerNorm, mat, relativeError, ropeTables } from './reference/math.js'

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url))

/** Maps a reference key (`pN.module.x`, `pN.attentions.L`, `pN.logits`) to the oracle's key, or null to skip. */
function oracleKey (key: string, attention: string): string | null {
  const rest = key.slice(key.indexOf('.') + 1)
  if (rest.startsWith('module.')) return rest.slice('module.'.length)
  if (rest.startsWith('attentions.')) return attention.replace('L', rest.split('.')[1])
  if (rest === 'logits') return 'logits'
  return null
}

async function compareWithReference (model: string, attention: string): Promise<void> {
  const dir = join(MODELS, model)
  const reference = await readSafetensors(join(dir, 'reference_activations.safetensors'))
  const prompts = JSON.parse(readFileSync(join(dir, 'reference_activations.json'), 'utf8')).token_ids as number[][]
  let compared = 0
  for (const [p, ids] of prompts.entries()) {
    const out = await referenceForward(dir, ids)
    for (const [key, expected] of reference) {
      if (!key.startsWith(`p${p}.`)) continue
      const mine = oracleKey(key, attention)
      if (mine === null) continue
      expect(out.has(mine), `${model}: oracle lacks ${mine}`).toBe(true)
      expect(out.get(mine)!.shape.reduce((a, b) => a * b, 1)).toBe(expected.data.length)
      expect(relativeError(out.get(mine)!.data, expected.data), `${model} ${key}`).toBeLessThanOrEqual(1e-5)
      compared++
    }
  }
  expect(compared).toBeGreaterThan(prompts.length * 20)
}

describe('reference forward matches transformers', () => {
  test('demo-gpt2: every module output, attention probabilities and logits, all prompts', async () => {
    await compareWithReference('demo-gpt2', 'transformer.h.L.attn.probs')
  })
  test('tiny-llama: every module output, attention probabilities and logits, all prompts', async () => {
    await compareWithReference('tiny-llama', 'model.layers.L.self_attn.probs')
  })
})

function tensor (shape: number[], data: Float64Array): Tensor64 { return { shape, data } }
function transpose (t: Tensor64): Tensor64 {
  const [rows, cols] = t.shape
  const out = new Float64Array(rows * cols)
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c]
  return tensor([cols, rows], out)
}

/** GPT-2 weights re-laid out as a GPT-NeoX checkpoint (per-head fused q|k|v, nn.Linear orientation). */
function gpt2AsNeox (gpt2: Map<string, Tensor64>, layers: number, d: number, heads: number): Map<string, Tensor64> {
  const hd = d / heads
  const neox = new Map<string, Tensor64>([['gpt_neox.embed_in.weight', gpt2.get('transformer.wte.weight')!]])
  const copy = (from: string, to: string): void => { neox.set(to, gpt2.get(from)!) }
  for (let l = 0; l < layers; l++) {
    const [g, n] = [`transformer.h.${l}`, `gpt_neox.layers.${l}`]
    for (const part of ['weight', 'bias']) {
      copy(`${g}.ln_1.${part}`, `${n}.input_layernorm.${part}`)
      copy(`${g}.ln_2.${part}`, `${n}.post_attention_layernorm.${part}`)
    }
    const w = gpt2.get(`${g}.attn.c_attn.weight`)!.data
    const b = gpt2.get(`${g}.attn.c_attn.bias`)!.data
    const qkvW = new Float64Array(3 * d * d)
    const qkvB = new Float64Array(3 * d)
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < 3; t++) {
        for (let j = 0; j < hd; j++) {
          const row = (3 * h + t) * hd + j
          const column = t * d + h * hd + j
          qkvB[row] = b[column]
          for (let i = 0; i < d; i++) qkvW[row * d + i] = w[i * 3 * d + column]
        }
      }
    }
    neox.set(`${n}.attention.query_key_value.weight`, tensor([3 * d, d], qkvW))
    neox.set(`${n}.attention.query_key_value.bias`, tensor([3 * d], qkvB))
    neox.set(`${n}.attention.dense.weight`, transpose(gpt2.get(`${g}.attn.c_proj.weight`)!))
    copy(`${g}.attn.c_proj.bias`, `${n}.attention.dense.bias`)
    neox.set(`${n}.mlp.dense_h_to_4h.weight`, transpose(gpt2.get(`${g}.mlp.c_fc.weight`)!))
    copy(`${g}.mlp.c_fc.bias`, `${n}.mlp.dense_h_to_4h.bias`)
    neox.set(`${n}.mlp.dense_4h_to_h.weight`, transpose(gpt2.get(`${g}.mlp.c_proj.weight`)!))
    copy(`${g}.mlp.c_proj.bias`, `${n}.mlp.dense_4h_to_h.bias`)
  }
  copy('transformer.ln_f.weight', 'gpt_neox.final_layer_norm.weight')
  copy('transformer.ln_f.bias', 'gpt_neox.final_layer_norm.bias')
  copy('transformer.wte.weight', 'embed_out.weight')
  return neox
}

describe('NeoX and Qwen2 paths agree with the validated paths', () => {
  const ids = [328, 1180, 1077, 286, 1336, 78, 289]

  test('GPT-NeoX (sequential residual, no rotary) on GPT-2 weights = GPT-2 without position embeddings', async () => {
    const gpt2Dir = join(MODELS, 'demo-gpt2')
    const config = JSON.parse(readFileSync(join(gpt2Dir, 'config.json'), 'utf8'))
    const weights = await readCheckpointWeights(gpt2Dir)
    const zeroPositions = new Map(weights)
    zeroPositions.set('transformer.wpe.weight', tensor(weights.get('transformer.wpe.weight')!.shape, new Float64Array(weights.get('transformer.wpe.weight')!.data.length)))
    const expected = referenceForwardWeights(config, zeroPositions, ids)
    const neoxConfig = {
      model_type: 'gpt_neox', hidden_size: 256, num_attention_heads: 8, num_hidden_layers: 6, intermediate_size: 1024, vocab_size: 4096,
      layer_norm_eps: 1e-5, hidden_act: 'gelu_new', use_parallel_residual: false, tie_word_embeddings: false,
      rope_parameters: { rope_theta: 10000, partial_rotary_factor: 0, rope_type: 'default' },
    }
    const actual = referenceForwardWeights(neoxConfig, gpt2AsNeox(weights, 6, 256, 8), ids)
    const pairs: Array<[string, string]> = [['logits', 'logits'], ['transformer.h.3', 'gpt_neox.layers.3'],
      ['transformer.h.2.attn', 'gpt_neox.layers.2.attention'], ['transformer.h.2.attn.probs', 'gpt_neox.layers.2.attention.probs'],
      ['transformer.h.5.mlp', 'gpt_neox.layers.5.mlp'], ['transformer.h.1.mlp.act', 'gpt_neox.layers.1.mlp.act']]
    for (const [g, n] of pairs) expect(relativeError(actual.get(n)!.data, expected.get(g)!.data), n).toBeLessThan(1e-12)
  })

  test('partial rotary rotates pairs (i, i + r/2) of the first r dims by p·θ^(-2i/r) and passes the rest through', () => {
    const headDim = 16
    const rotary = 4
    const x = mat(3, headDim, Float64Array.from({ length: 3 * headDim }, (_, i) => Math.sin(i + 1)))
    const { cos, sin } = ropeTables(3, rotary, 10000)
    const y = applyRope(x, cos, sin)
    for (let p = 0; p < 3; p++) {
      for (let i = 0; i < rotary / 2; i++) {
        const angle = p * 10000 ** (-(2 * i) / rotary)
        const [a, b] = [x.data[p * headDim + i], x.data[p * headDim + i + rotary / 2]]
        expect(y.data[p * headDim + i]).toBeCloseTo(a * Math.cos(angle) - b * Math.sin(angle), 14)
        expect(y.data[p * headDim + i + rotary / 2]).toBeCloseTo(b * Math.cos(angle) + a * Math.sin(angle), 14)
      }
      for (let i = rotary; i < headDim; i++) expect(y.data[p * headDim + i]).toBe(x.data[p * headDim + i])
    }
  })

  test('parallel residual: layer = x + attention(ln1(x)) + mlp(ln2(x)); probabilities are causal and sum to 1', async () => {
    const { ensurePresetCheckpoint } = await import('../scripts/presets.js')
    const dir = ensurePresetCheckpoint('neox-tiny')
    const out = await referenceForward(dir, ids)
    const weights = await readCheckpointWeights(dir)
    const input = out.get('gpt_neox.layers.0')!
    const ln2 = layerNorm(mat(ids.length, 64, input.data), weights.get('gpt_neox.layers.1.post_attention_layernorm.weight')!.data,
      weights.get('gpt_neox.layers.1.post_attention_layernorm.bias')!.data, 1e-5)
    expect(relativeError(out.get('gpt_neox.layers.1.post_attention_layernorm')!.data, ln2.data)).toBeLessThan(1e-14)
    const sum = input.data.map((v, i) => v + out.get('gpt_neox.layers.1.attention')!.data[i] + out.get('gpt_neox.layers.1.mlp')!.data[i])
    expect(relativeError(out.get('gpt_neox.layers.1')!.data, sum)).toBeLessThan(1e-14)
    const probs = out.get('gpt_neox.layers.1.attention.probs')!
    const seq = ids.length
    for (let h = 0; h < 4; h++) {
      for (let i = 0; i < seq; i++) {
        const row = probs.data.subarray((h * seq + i) * seq, (h * seq + i + 1) * seq)
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12)
        for (let j = i + 1; j < seq; j++) expect(row[j]).toBe(0)
      }
    }
    const sequential = await referenceForward(ensurePresetCheckpoint('neox-tiny-sequential'), ids)
    expect(relativeError(sequential.get('logits')!.data, out.get('logits')!.data)).toBeGreaterThan(1e-3)
  })

  test('Qwen2 with zero q/k/v biases on tiny-llama weights reproduces the transformers Llama reference', async () => {
    const dir = join(MODELS, 'tiny-llama')
    const llama = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
    const weights = await readCheckpointWeights(dir)
    for (let l = 0; l < 2; l++) {
      for (const [name, width] of [['q_proj', 64], ['k_proj', 32], ['v_proj', 32]] as const) {
        weights.set(`model.layers.${l}.self_attn.${name}.bias`, tensor([width], new Float64Array(width)))
      }
    }
    const qwen = { ...llama, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], rope_parameters: { rope_theta: 10000, rope_type: 'default' } }
    const reference = await readSafetensors(join(dir, 'reference_activations.safetensors'))
    const prompt = JSON.parse(readFileSync(join(dir, 'reference_activations.json'), 'utf8')).token_ids[1] as number[]
    const out: Activations = referenceForwardWeights(qwen, weights, prompt)
    expect(relativeError(out.get('logits')!.data, reference.get('p1.logits')!.data)).toBeLessThan(1e-5)
  })
})
