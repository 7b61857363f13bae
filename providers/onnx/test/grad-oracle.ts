/**
 * Float64 oracles for the gradient tests: the causal-LM loss and logit differences computed from reference logits,
 * central finite differences, and a GPT-2 forward whose attention probabilities can be edited (attribution patching).
 */
import type { Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights } from './reference/forward.js'
import { activation, add, causalAttention, columns, layerNorm, linear, map, mat, setColumns, type Mat } from './reference/math.js'

/** transformers' causal-LM loss: labels = ids shifted by one, mean cross-entropy over the first n − 1 positions. */
export function causalLmLoss (logits: Float64Array | Float32Array, ids: readonly number[], vocab: number): number {
  let total = 0
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits.subarray(t * vocab, (t + 1) * vocab)
    let max = -Infinity
    for (const v of row) max = Math.max(max, v)
    let sum = 0
    for (const v of row) sum += Math.exp(v - max)
    total -= row[ids[t + 1]!]! - max - Math.log(sum)
  }
  return total / (ids.length - 1)
}

/** (f(x + ε) − f(x − ε)) / 2ε */
export function centralDifference (f: (delta: number) => number, eps: number): number {
  return (f(eps) - f(-eps)) / (2 * eps)
}

/**
 * d(causal-LM loss of `ids`)/d(value at `site`)[at] by central differences (step `eps`) of the float64 reference
 * forward with that one element of the site's value nudged.
 */
export function siteLossDerivative (config: Parameters<typeof referenceForwardWeights>[0], weights: Map<string, Tensor64>, ids: number[], vocab: number, site: string, at: number, eps = 1e-3): number {
  return centralDifference(delta => {
    const hook = (path: string, value: Mat): Mat | undefined => {
      if (path !== site) return undefined
      const data = Float64Array.from(value.data); data[at] = data[at]! + delta
      return { ...value, data }
    }
    return causalLmLoss(referenceForwardWeights(config, weights, ids, { hook }).get('logits')!.data, ids, vocab)
  }, eps)
}

/** The one-hot [n − 1, vocab] float32 constant selecting each position's next token. */
export function nextTokenOneHot (ids: readonly number[], vocab: number): Float32Array {
  const data = new Float32Array((ids.length - 1) * vocab)
  for (let t = 0; t + 1 < ids.length; t++) data[t * vocab + ids[t + 1]!] = 1
  return data
}

/** Edits the probabilities [seq, seq] of one head of one layer in place (before they weight the values). */
export type ProbsHook = (layer: number, head: number, probs: Mat) => void

/** GPT-2 logits [seq, vocab] in float64 with an attention-probabilities hook (as transformers computes them). */
export function gpt2LogitsWithProbs (config: Record<string, any>, weights: Map<string, Tensor64>, ids: readonly number[], hook: ProbsHook): Mat {
  const w = (name: string): Float64Array => weights.get(name)!.data
  const d = config.n_embd as number
  const heads = config.n_head as number
  const hd = d / heads
  const eps = config.layer_norm_epsilon as number
  const act = activation(config.activation_function ?? 'gelu_new')
  const seq = ids.length
  let hidden = mat(seq, d)
  ids.forEach((id, t) => {
    for (let c = 0; c < d; c++) hidden.data[t * d + c] = w('transformer.wte.weight')[id * d + c]! + w('transformer.wpe.weight')[t * d + c]!
  })
  for (let l = 0; l < config.n_layer; l++) {
    const p = `transformer.h.${l}`
    const ln1 = layerNorm(hidden, w(`${p}.ln_1.weight`), w(`${p}.ln_1.bias`), eps)
    const qkv = linear(ln1, w(`${p}.attn.c_attn.weight`), 3 * d, w(`${p}.attn.c_attn.bias`), 'in_out')
    const merged = mat(seq, d)
    for (let h = 0; h < heads; h++) {
      const v = columns(qkv, 2 * d + h * hd, hd)
      const { probs } = causalAttention(columns(qkv, h * hd, hd), columns(qkv, d + h * hd, hd), v, 1 / Math.sqrt(hd))
      hook(l, h, probs)
      const out = mat(seq, hd)
      for (let i = 0; i < seq; i++) {
        for (let j = 0; j < seq; j++) for (let c = 0; c < hd; c++) out.data[i * hd + c] += probs.data[i * seq + j]! * v.data[j * hd + c]!
      }
      setColumns(merged, h * hd, out)
    }
    hidden = add(hidden, linear(merged, w(`${p}.attn.c_proj.weight`), d, w(`${p}.attn.c_proj.bias`), 'in_out'))
    const ln2 = layerNorm(hidden, w(`${p}.ln_2.weight`), w(`${p}.ln_2.bias`), eps)
    const fc = map(linear(ln2, w(`${p}.mlp.c_fc.weight`), 4 * d, w(`${p}.mlp.c_fc.bias`), 'in_out'), act)
    hidden = add(hidden, linear(fc, w(`${p}.mlp.c_proj.weight`), d, w(`${p}.mlp.c_proj.bias`), 'in_out'))
  }
  const final = layerNorm(hidden, w('transformer.ln_f.weight'), w('transformer.ln_f.bias'), eps)
  return linear(final, w('transformer.wte.weight'), config.vocab_size, null, 'out_in')
}
