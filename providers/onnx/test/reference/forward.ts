/**
 * Plain-TypeScript float64 reference forward (the test oracle) for gpt2, llama, qwen2 and gpt_neox checkpoints,
 * following the transformers modeling code. Returns every module output keyed by HF module path (batch dim
 * squeezed, as in reference_activations.safetensors), the attention sites `<attention path>.q/.k/.v/.scores/.probs/.heads`, `<block>.resid_mid`,
 * the rotary `<layer or attention>.inputs.position_embeddings.0/.1` (cos, sin [seq, dim]) and `logits`. `positions` replaces
 * 0…n−1 (GPT-2's wpe rows, the rotary angles).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { WeftError } from '@weft/core'
import { readCheckpointWeights, type Tensor64 } from './safetensors.js'
import { activation, add, applyRope, columns, layerNorm, linear, map, mat, mul, rmsNorm, ropeTables, setColumns, type Mat } from './math.js'

export type Activations = Map<string, { shape: number[]; data: Float64Array }>
type Config = Record<string, any>

/** Weight access by HF parameter name with a clear error for a missing tensor. */
class Weights {
  constructor (private readonly tensors: Map<string, Tensor64>) {}
  get (name: string): Float64Array {
    const tensor = this.tensors.get(name)
    if (tensor === undefined) throw new WeftError('MODEL_LOAD_FAILED', `reference forward: checkpoint lacks ${name}`, { name })
    return tensor.data
  }
  maybe (name: string): Float64Array | null { return this.tensors.get(name)?.data ?? null }
  has (name: string): boolean { return this.tensors.has(name) }
}

/** Optional intervention hook: sees each recorded module output (rows × features) and may return a replacement. */
export type ReferenceHook = (path: string, value: Mat) => Mat | undefined
let activeHook: ReferenceHook | null = null

function record (out: Activations, path: string, m: Mat): Mat {
  const value = activeHook?.(path, m) ?? m
  out.set(path, { shape: [value.rows, value.cols], data: value.data })
  return value
}

function embed (table: Float64Array, width: number, ids: number[], vocab: number): Mat {
  const y = mat(ids.length, width)
  ids.forEach((id, row) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new WeftError('PROGRAM_INVALID', `token id ${id} is outside the vocabulary [0, ${vocab})`, { id })
    y.data.set(table.subarray(id * width, (id + 1) * width), row * width)
  })
  return y
}

interface AttentionResult { out: Mat }

/**
 * Multi-head (grouped-query when kvHeads < heads) causal attention of module `a` over per-head column blocks, as
 * transformers' eager attention computes it. Records (and lets the hook replace) the finer sites: `.q` [heads, seq, hd]
 * and `.k`, `.v` [kvHeads, seq, hd] after rotary, `.scores` [heads, seq, seq] = q·kᵀ/√hd before the causal mask,
 * `.probs`, and `.heads` [seq, heads, hd] (= `out`, the merged [seq, heads·hd] input of the output projection).
 */
function attention (out: Activations, a: string, q: Mat, k: Mat, v: Mat, heads: number, kvHeads: number, headDim: number, rotate: (x: Mat) => Mat): AttentionResult {
  const seq = q.rows
  const scale = 1 / Math.sqrt(headDim)
  const group = heads / kvHeads
  const stacked = (x: Mat, count: number, rot: boolean): Mat => {
    const y = mat(count * seq, headDim)
    for (let h = 0; h < count; h++) {
      const block = columns(x, h * headDim, headDim)
      y.data.set((rot ? rotate(block) : block).data, h * seq * headDim)
    }
    return y
  }
  const qs = site(out, `${a}.q`, stacked(q, heads, true), [heads, seq, headDim])
  const ks = site(out, `${a}.k`, stacked(k, kvHeads, true), [kvHeads, seq, headDim])
  const vs = site(out, `${a}.v`, stacked(v, kvHeads, false), [kvHeads, seq, headDim])
  const raw = mat(heads * seq, seq)
  for (let h = 0; h < heads; h++) {
    const kv = Math.floor(h / group)
    for (let i = 0; i < seq; i++) {
      for (let j = 0; j < seq; j++) {
        let dot = 0
        for (let c = 0; c < headDim; c++) dot += qs.data[(h * seq + i) * headDim + c]! * ks.data[(kv * seq + j) * headDim + c]!
        raw.data[(h * seq + i) * seq + j] = dot * scale
      }
    }
  }
  const scores = site(out, `${a}.scores`, raw, [heads, seq, seq])
  const weights = mat(heads * seq, seq)
  for (let r = 0; r < heads * seq; r++) {
    const i = r % seq
    let max = -Infinity
    for (let j = 0; j <= i; j++) max = Math.max(max, scores.data[r * seq + j]!)
    let total = 0
    for (let j = 0; j <= i; j++) total += (weights.data[r * seq + j] = Math.exp(scores.data[r * seq + j]! - max))
    for (let j = 0; j <= i; j++) weights.data[r * seq + j]! /= total
  }
  const probs = site(out, `${a}.probs`, weights, [heads, seq, seq])
  const merged = mat(seq, heads * headDim)
  for (let h = 0; h < heads; h++) {
    const kv = Math.floor(h / group)
    for (let i = 0; i < seq; i++) {
      for (let j = 0; j <= i; j++) {
        const p = probs.data[(h * seq + i) * seq + j]!
        for (let c = 0; c < headDim; c++) merged.data[i * heads * headDim + h * headDim + c]! += p * vs.data[(kv * seq + j) * headDim + c]!
      }
    }
  }
  return { out: site(out, `${a}.heads`, merged, [seq, heads, headDim]) }
}

/** Like `record`, for a finer site whose value has more than two dims (the hook still sees rows × features). */
function site (out: Activations, path: string, m: Mat, shape: number[]): Mat {
  const value = activeHook?.(path, m) ?? m
  out.set(path, { shape, data: value.data })
  return value
}

/** The positions the model embeds / rotates at: 0…n−1 unless the caller gives others (a written position_ids). */
let activePositions: number[] | null = null
const positionsOf = (ids: number[]): number[] => activePositions ?? ids.map((_, i) => i)

/** A layer's and then its attention's `position_embeddings` input sites (hookable), as transformers passes them on. */
function rotaryInputs (out: Activations, layer: string, attention: string, cos: Mat, sin: Mat): { cos: Mat; sin: Mat } {
  const shape = [cos.rows, cos.cols]
  const lc = site(out, `${layer}.inputs.position_embeddings.0`, cos, shape)
  const ls = site(out, `${layer}.inputs.position_embeddings.1`, sin, shape)
  return { cos: site(out, `${attention}.inputs.position_embeddings.0`, lc, shape), sin: site(out, `${attention}.inputs.position_embeddings.1`, ls, shape) }
}

function gpt2Forward (config: Config, w: Weights, ids: number[]): Activations {
  const out: Activations = new Map()
  const d = config.n_embd as number
  const heads = config.n_head as number
  const eps = config.layer_norm_epsilon as number
  const inner = (config.n_inner as number | null) ?? 4 * d
  const act = activation(config.activation_function ?? 'gelu_new')
  const positions = positionsOf(ids)
  const tokens = record(out, 'transformer.wte', embed(w.get('transformer.wte.weight'), d, ids, config.vocab_size))
  const pos = record(out, 'transformer.wpe', embed(w.get('transformer.wpe.weight'), d, positions, config.n_positions))
  let hidden = add(tokens, pos)
  for (let l = 0; l < config.n_layer; l++) {
    const p = `transformer.h.${l}`
    const ln1 = record(out, `${p}.ln_1`, layerNorm(hidden, w.get(`${p}.ln_1.weight`), w.get(`${p}.ln_1.bias`), eps))
    const qkv = record(out, `${p}.attn.c_attn`, linear(ln1, w.get(`${p}.attn.c_attn.weight`), 3 * d, w.get(`${p}.attn.c_attn.bias`), 'in_out'))
    const attended = attention(out, `${p}.attn`, columns(qkv, 0, d), columns(qkv, d, d), columns(qkv, 2 * d, d), heads, heads, d / heads, (x) => x)
    const merged = attended.out
    const attn = record(out, `${p}.attn`, record(out, `${p}.attn.c_proj`, linear(merged, w.get(`${p}.attn.c_proj.weight`), d, w.get(`${p}.attn.c_proj.bias`), 'in_out')))
    hidden = record(out, `${p}.resid_mid`, add(hidden, attn))
    const ln2 = record(out, `${p}.ln_2`, layerNorm(hidden, w.get(`${p}.ln_2.weight`), w.get(`${p}.ln_2.bias`), eps))
    const fc = record(out, `${p}.mlp.c_fc`, linear(ln2, w.get(`${p}.mlp.c_fc.weight`), inner, w.get(`${p}.mlp.c_fc.bias`), 'in_out'))
    const mlp = record(out, `${p}.mlp`, record(out, `${p}.mlp.c_proj`, linear(record(out, `${p}.mlp.act`, map(fc, act)), w.get(`${p}.mlp.c_proj.weight`), d, w.get(`${p}.mlp.c_proj.bias`), 'in_out')))
    hidden = record(out, p, add(hidden, mlp))
  }
  const final = record(out, 'transformer.ln_f', layerNorm(hidden, w.get('transformer.ln_f.weight'), w.get('transformer.ln_f.bias'), eps))
  const head = w.maybe('lm_head.weight') ?? w.get('transformer.wte.weight')
  record(out, 'lm_head', linear(final, head, config.vocab_size, null, 'out_in'))
  out.set('logits', out.get('lm_head')!)
  return out
}

/** rope_theta and partial rotary factor from a transformers 5.x `rope_parameters` or the older top-level keys. */
export function ropeSettings (config: Config, defaultPartial: number): { theta: number; partial: number } {
  const parameters = (config.rope_parameters ?? config.rope_scaling ?? {}) as Record<string, any>
  const type = parameters.rope_type ?? parameters.type ?? 'default'
  if (type !== 'default') throw new Error(`reference forward: rope_type ${type} is not implemented`)
  const theta = parameters.rope_theta ?? config.rope_theta ?? config.rotary_emb_base ?? 10000
  const partial = parameters.partial_rotary_factor ?? config.partial_rotary_factor ?? config.rotary_pct ?? defaultPartial
  return { theta, partial }
}

/** Llama and Qwen2 (Qwen2 = Llama with q/k/v biases); optional `attention_bias` / `mlp_bias` are honoured by weight presence. */
function llamaForward (config: Config, w: Weights, ids: number[]): Activations {
  const out: Activations = new Map()
  const d = config.hidden_size as number
  const heads = config.num_attention_heads as number
  const kvHeads = (config.num_key_value_heads as number | undefined) ?? heads
  const headDim = (config.head_dim as number | undefined) ?? d / heads
  const eps = config.rms_norm_eps as number
  const act = activation(config.hidden_act ?? 'silu')
  const { theta, partial } = ropeSettings(config, 1)
  const { cos, sin } = ropeTables(ids.length, Math.floor(headDim * partial), theta, positionsOf(ids))
  record(out, 'model.rotary_emb', cos)
  let hidden = record(out, 'model.embed_tokens', embed(w.get('model.embed_tokens.weight'), d, ids, config.vocab_size))
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`
    const a = `${p}.self_attn`
    const rope = rotaryInputs(out, p, a, cos, sin)
    const x = record(out, `${p}.input_layernorm`, rmsNorm(hidden, w.get(`${p}.input_layernorm.weight`), eps))
    const q = record(out, `${a}.q_proj`, linear(x, w.get(`${a}.q_proj.weight`), heads * headDim, w.maybe(`${a}.q_proj.bias`), 'out_in'))
    const k = record(out, `${a}.k_proj`, linear(x, w.get(`${a}.k_proj.weight`), kvHeads * headDim, w.maybe(`${a}.k_proj.bias`), 'out_in'))
    const v = record(out, `${a}.v_proj`, linear(x, w.get(`${a}.v_proj.weight`), kvHeads * headDim, w.maybe(`${a}.v_proj.bias`), 'out_in'))
    const attended = attention(out, a, q, k, v, heads, kvHeads, headDim, (head) => applyRope(head, rope.cos, rope.sin))
    const merged = attended.out
    const attn = record(out, a, record(out, `${a}.o_proj`, linear(merged, w.get(`${a}.o_proj.weight`), d, w.maybe(`${a}.o_proj.bias`), 'out_in')))
    hidden = record(out, `${p}.resid_mid`, add(hidden, attn))
    const y = record(out, `${p}.post_attention_layernorm`, rmsNorm(hidden, w.get(`${p}.post_attention_layernorm.weight`), eps))
    const inner = config.intermediate_size as number
    const gate = record(out, `${p}.mlp.gate_proj`, linear(y, w.get(`${p}.mlp.gate_proj.weight`), inner, w.maybe(`${p}.mlp.gate_proj.bias`), 'out_in'))
    const up = record(out, `${p}.mlp.up_proj`, linear(y, w.get(`${p}.mlp.up_proj.weight`), inner, w.maybe(`${p}.mlp.up_proj.bias`), 'out_in'))
    const gated = mul(record(out, `${p}.mlp.act_fn`, map(gate, act)), up)
    const mlp = record(out, `${p}.mlp`, record(out, `${p}.mlp.down_proj`, linear(gated, w.get(`${p}.mlp.down_proj.weight`), d, w.maybe(`${p}.mlp.down_proj.bias`), 'out_in')))
    hidden = record(out, p, add(hidden, mlp))
  }
  const final = record(out, 'model.norm', rmsNorm(hidden, w.get('model.norm.weight'), eps))
  const tied = config.tie_word_embeddings === true && !w.has('lm_head.weight')
  record(out, 'lm_head', linear(final, w.get(tied ? 'model.embed_tokens.weight' : 'lm_head.weight'), config.vocab_size, null, 'out_in'))
  out.set('logits', out.get('lm_head')!)
  return out
}

/** GPT-NeoX: fused query_key_value laid out per head as [q | k | v], partial rotary, parallel or sequential residual. */
function neoxForward (config: Config, w: Weights, ids: number[]): Activations {
  const out: Activations = new Map()
  const d = config.hidden_size as number
  const heads = config.num_attention_heads as number
  const headDim = d / heads
  const eps = config.layer_norm_eps as number
  const act = activation(config.hidden_act ?? 'gelu')
  const { theta, partial } = ropeSettings(config, 0.25)
  const { cos, sin } = ropeTables(ids.length, Math.floor(headDim * partial), theta, positionsOf(ids))
  record(out, 'gpt_neox.rotary_emb', cos)
  let hidden = record(out, 'gpt_neox.embed_in', embed(w.get('gpt_neox.embed_in.weight'), d, ids, config.vocab_size))
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `gpt_neox.layers.${l}`
    const rope = rotaryInputs(out, p, `${p}.attention`, cos, sin)
    const rotate = (head: Mat): Mat => applyRope(head, rope.cos, rope.sin)
    const ln1 = record(out, `${p}.input_layernorm`, layerNorm(hidden, w.get(`${p}.input_layernorm.weight`), w.get(`${p}.input_layernorm.bias`), eps))
    const qkv = record(out, `${p}.attention.query_key_value`, linear(ln1, w.get(`${p}.attention.query_key_value.weight`), 3 * d, w.maybe(`${p}.attention.query_key_value.bias`), 'out_in'))
    // view(seq, heads, 3*headDim): head h owns columns [3h·hd, 3(h+1)·hd) = [q_h | k_h | v_h]
    const q = mat(ids.length, d)
    const k = mat(ids.length, d)
    const v = mat(ids.length, d)
    for (let h = 0; h < heads; h++) {
      setColumns(q, h * headDim, columns(qkv, 3 * h * headDim, headDim))
      setColumns(k, h * headDim, columns(qkv, (3 * h + 1) * headDim, headDim))
      setColumns(v, h * headDim, columns(qkv, (3 * h + 2) * headDim, headDim))
    }
    const attended = attention(out, `${p}.attention`, q, k, v, heads, heads, headDim, rotate)
    const merged = attended.out
    const attn = record(out, `${p}.attention`, record(out, `${p}.attention.dense`, linear(merged, w.get(`${p}.attention.dense.weight`), d, w.maybe(`${p}.attention.dense.bias`), 'out_in')))
    const mlpInput = config.use_parallel_residual === false ? record(out, `${p}.resid_mid`, add(attn, hidden)) : hidden
    const ln2 = record(out, `${p}.post_attention_layernorm`, layerNorm(mlpInput, w.get(`${p}.post_attention_layernorm.weight`), w.get(`${p}.post_attention_layernorm.bias`), eps))
    const up = record(out, `${p}.mlp.dense_h_to_4h`, linear(ln2, w.get(`${p}.mlp.dense_h_to_4h.weight`), config.intermediate_size, w.get(`${p}.mlp.dense_h_to_4h.bias`), 'out_in'))
    const down = linear(record(out, `${p}.mlp.act`, map(up, act)), w.get(`${p}.mlp.dense_4h_to_h.weight`), d, w.get(`${p}.mlp.dense_4h_to_h.bias`), 'out_in')
    const mlp = record(out, `${p}.mlp`, record(out, `${p}.mlp.dense_4h_to_h`, down))
    hidden = record(out, p, config.use_parallel_residual === false ? add(mlp, mlpInput) : add(add(mlp, attn), hidden))
  }
  const final = record(out, 'gpt_neox.final_layer_norm', layerNorm(hidden, w.get('gpt_neox.final_layer_norm.weight'), w.get('gpt_neox.final_layer_norm.bias'), eps))
  const tied = config.tie_word_embeddings === true && !w.has('embed_out.weight')
  record(out, 'embed_out', linear(final, w.get(tied ? 'gpt_neox.embed_in.weight' : 'embed_out.weight'), config.vocab_size, null, 'out_in'))
  out.set('logits', out.get('embed_out')!)
  return out
}

/** Runs the reference forward on already-loaded weights. */
export function referenceForwardWeights (config: Config, weights: Map<string, Tensor64>, ids: number[], options: { hook?: ReferenceHook; positions?: number[] } = {}): Activations {
  if (ids.length === 0) throw new WeftError('PROGRAM_INVALID', 'reference forward needs at least one token id')
  if (options.positions !== undefined && options.positions.length !== ids.length) throw new Error('reference forward: one position per token id')
  activeHook = options.hook ?? null
  activePositions = options.positions ?? null
  try { return forwardFamily(config, new Weights(weights), ids) } finally { activeHook = null; activePositions = null }
}

function forwardFamily (config: Config, w: Weights, ids: number[]): Activations {
  switch (config.model_type) {
    case 'gpt2': return gpt2Forward(config, w, ids)
    case 'llama':
    case 'qwen2': return llamaForward(config, w, ids)
    case 'gpt_neox': return neoxForward(config, w, ids)
    default:
      throw new WeftError('MODEL_LOAD_FAILED', `reference forward: model_type ${String(config.model_type)} is not supported (gpt2, llama, qwen2, gpt_neox)`, { modelType: config.model_type })
  }
}

/** Reads `config.json` + safetensors weights (single or sharded, any float dtype) from `dir` and runs the oracle. */
export async function referenceForward (dir: string, ids: number[], options: { hook?: ReferenceHook } = {}): Promise<Activations> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Config
  return referenceForwardWeights(config, await readCheckpointWeights(dir), ids, options)
}
