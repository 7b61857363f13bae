/**
 * GPT2LMHeadModel as an ONNX graph: learned positions, pre-LN blocks, Conv1D ([in, out]) projections,
 * `gelu_new`, attention scaled by 1/√head_dim, causal + padding mask, tied lm_head.
 */
import { WeftError } from '@weft/core'
import { activation, attend, inputSites, layerNorm, linear, moduleScope, qkvSites, residMid, splitHeads, type BuildContext, type LayerInputs } from './layers.js'
import type { FamilyBuild } from './family.js'
import { withCache } from './kv-cache.js'
import { baseModelOutput, causalLmInputs, configNumbers, embedding, lmHead } from './causal-lm.js'

interface Gpt2Config { d: number; heads: number; layers: number; vocab: number; inner: number; eps: number; act: string; scaleAttn: boolean; inverseLayerScale: boolean; tied: boolean }

function readConfig (config: Record<string, unknown>): Gpt2Config {
  const num = configNumbers(config)
  const d = num('n_embd')
  return {
    d, heads: num('n_head'), layers: num('n_layer'), vocab: num('vocab_size'),
    inner: typeof config.n_inner === 'number' ? config.n_inner : 4 * d,
    eps: num('layer_norm_epsilon', 1e-5), act: String(config.activation_function ?? 'gelu_new'),
    scaleAttn: config.scale_attn_weights !== false, inverseLayerScale: config.scale_attn_by_inverse_layer_idx === true,
    tied: config.tie_word_embeddings !== false,
  }
}

/** Original OpenAI checkpoints omit the `transformer.` prefix: alias every key under it. */
function addPrefix (ctx: BuildContext): void {
  const tensors = ctx.w.checkpoint.tensors
  if (tensors.has('transformer.wte.weight') || !tensors.has('wte.weight')) return
  for (const [name, entry] of [...tensors]) if (name !== 'lm_head.weight') tensors.set(`transformer.${name}`, entry)
}

function block (ctx: BuildContext, c: Gpt2Config, i: number, x: string, given: LayerInputs): string {
  const { g } = ctx
  const p = `transformer.h.${i}`
  const hd = c.d / c.heads
  const shape = ['batch', 'seq', c.d] as const
  return moduleScope(ctx, p, { type: 'GPT2Block', callable: false, inShape: [...shape], outShape: [...shape] }, x, (input, out) => {
    // GPT2Model passes each block attention_mask and (transformers 5) position_ids; the block passes both on
    const blockInputs = inputSites(ctx, p, given)
    const ln1 = layerNorm(ctx, `${p}.ln_1`, input, c.d, c.eps)
    const attn = moduleScope(ctx, `${p}.attn`, { type: 'GPT2Attention', callable: false, inShape: [...shape], outShape: [...shape] }, ln1, (h) => {
      const { mask } = inputSites(ctx, `${p}.attn`, blockInputs)
      const qkv = linear(ctx, `${p}.attn.c_attn`, h, { type: 'Conv1D', inDim: c.d, outDim: 3 * c.d, transposeWeight: false, bias: true })
      const [q, k, v] = g.opN('Split', [qkv, g.i64([c.d, c.d, c.d])], { axis: -1 }, g.names('Split', 3))
      let scale = c.scaleAttn ? 1 / Math.sqrt(hd) : 1
      if (c.inverseLayerScale) scale /= i + 1
      const [qs, ks, vs] = qkvSites(ctx, `${p}.attn`, splitHeads(g, q!, c.heads, hd), splitHeads(g, k!, c.heads, hd), splitHeads(g, v!, c.heads, hd), c.heads, c.heads, hd)
      const [keys, values] = withCache(ctx, i, ks, vs, c.heads, hd)
      const context = attend(ctx, qs, keys, values, mask, scale, `${p}.attn`, c.heads, hd)
      return linear(ctx, `${p}.attn.c_proj`, context, { type: 'Conv1D', inDim: c.d, outDim: c.d, transposeWeight: false, bias: true })
    })
    const mid = residMid(ctx, p, g.op('Add', [input, attn]), c.d)
    const ln2 = layerNorm(ctx, `${p}.ln_2`, mid, c.d, c.eps)
    const mlp = moduleScope(ctx, `${p}.mlp`, { type: 'GPT2MLP', callable: true, inShape: [...shape], outShape: [...shape] }, ln2, (h) => {
      const fc = linear(ctx, `${p}.mlp.c_fc`, h, { type: 'Conv1D', inDim: c.d, outDim: c.inner, transposeWeight: false, bias: true })
      const act = moduleScope(ctx, `${p}.mlp.act`, { type: 'NewGELUActivation', callable: true, inShape: ['batch', 'seq', c.inner], outShape: ['batch', 'seq', c.inner] },
        fc, (z, name) => activation(g, c.act, z, name))
      return linear(ctx, `${p}.mlp.c_proj`, act, { type: 'Conv1D', inDim: c.inner, outDim: c.d, transposeWeight: false, bias: true })
    })
    return g.op('Add', [mid, mlp], {}, out)
  })
}

export function buildGpt2 (ctx: BuildContext, config: Record<string, unknown>): FamilyBuild {
  const c = readConfig(config)
  if (c.d % c.heads !== 0) throw new WeftError('MODEL_LOAD_FAILED', `n_embd ${c.d} is not divisible by n_head ${c.heads}`)
  addPrefix(ctx)
  const { g } = ctx
  const { ids, positions, bias } = causalLmInputs(ctx)
  const shape = ['batch', 'seq', c.d] as const
  const hidden = g.within('transformer', () => {
    const tokens = embedding(ctx, 'transformer.wte', ids, c.d)
    const pos = embedding(ctx, 'transformer.wpe', positions, c.d)
    let h = moduleScope(ctx, 'transformer.drop', { type: 'Dropout', callable: true, inShape: [...shape], outShape: [...shape] },
      g.op('Add', [tokens, pos]), (input) => input)
    for (let i = 0; i < c.layers; i++) h = block(ctx, c, i, h, { mask: bias, positions })
    ctx.m.add('transformer.h', { type: 'ModuleList' })
    return layerNorm(ctx, 'transformer.ln_f', h, c.d, c.eps)
  })
  const transformer = baseModelOutput(ctx, 'transformer', 'GPT2Model', hidden, c.d)
  const tiedHead = c.tied || !ctx.w.has('lm_head.weight')
  const out = lmHead(ctx, 'lm_head', transformer, c.d, c.vocab, tiedHead ? 'transformer.wte.weight' : undefined)
  return {
    logits: out, hasPositionIds: true, vocabSize: c.vocab,
    maxPositions: typeof config.n_positions === 'number' ? config.n_positions : null,
    isParameter: name => !/\.attn\.(masked_)?bias$/.test(name) && (name.startsWith('transformer.') || name === 'lm_head.weight'),
  }
}
