/**
 * GPTNeoXForCausalLM as an ONNX graph: LayerNorm, fused `query_key_value` in HF's per-head [q | k | v] layout,
 * partial rotary (`rotary_pct` / `partial_rotary_factor`), parallel or sequential residual, `embed_out` head.
 */
import { WeftError } from '@weft/core'
import { activation, attend, inputSites, layerNorm, moduleScope, qkvSites, residMid, type BuildContext, type LayerInputs } from './layers.js'
import { applyRotary, overHeads, ropeSettings, rotaryTables, type RopeSettings } from './rotary.js'
import type { FamilyBuild } from './family.js'
import { withCache } from './kv-cache.js'
import { baseModelOutput, causalLmInputs, checkpointLinear, configNumbers, embedding, lmHead } from './causal-lm.js'

interface NeoxConfig { d: number; heads: number; headDim: number; layers: number; inner: number; vocab: number; eps: number; act: string; parallel: boolean; rope: RopeSettings }

function readConfig (config: Record<string, unknown>): NeoxConfig {
  const num = configNumbers(config)
  const d = num('hidden_size'); const heads = num('num_attention_heads')
  return {
    d, heads, headDim: d / heads, layers: num('num_hidden_layers'), inner: num('intermediate_size', 4 * d), vocab: num('vocab_size'),
    eps: num('layer_norm_eps', 1e-5), act: String(config.hidden_act ?? 'gelu'), parallel: config.use_parallel_residual !== false,
    rope: ropeSettings(config, 0.25),
  }
}

const dense = checkpointLinear

function layer (ctx: BuildContext, c: NeoxConfig, i: number, x: string, given: LayerInputs): string {
  const { g } = ctx
  const p = `gpt_neox.layers.${i}`
  const a = `${p}.attention`
  const shape = ['batch', 'seq', c.d] as const
  const rotary = Math.floor(c.headDim * c.rope.partial)
  return moduleScope(ctx, p, { type: 'GPTNeoXLayer', callable: false, inShape: [...shape], outShape: [...shape] }, x, (input, out) => {
    const layerInputs = inputSites(ctx, p, given)
    const h1 = layerNorm(ctx, `${p}.input_layernorm`, input, c.d, c.eps)
    const attn = moduleScope(ctx, a, { type: 'GPTNeoXAttention', callable: false, inShape: [...shape], outShape: [...shape] }, h1, (h) => {
      const { mask, rotary: r } = inputSites(ctx, a, layerInputs)
      const [cos, sin] = overHeads(g, r!.cos, r!.sin)
      const qkv = dense(ctx, `${a}.query_key_value`, h, c.d, 3 * c.d)
      // view(batch, seq, heads, 3·head_dim).transpose(1, 2).chunk(3, -1)
      const perHead = g.op('Transpose', [g.op('Reshape', [qkv, g.i64([0, 0, c.heads, 3 * c.headDim])])], { perm: [0, 2, 1, 3] })
      const [q, k, v] = g.opN('Split', [perHead, g.i64([c.headDim, c.headDim, c.headDim])], { axis: -1 }, g.names('Split', 3))
      const [qs, ks, vs] = qkvSites(ctx, a, applyRotary(g, q!, cos, sin, rotary, c.headDim), applyRotary(g, k!, cos, sin, rotary, c.headDim), v!,
        c.heads, c.heads, c.headDim)
      const [keys, values] = withCache(ctx, i, ks, vs, c.heads, c.headDim)
      const context = attend(ctx, qs, keys, values, mask, 1 / Math.sqrt(c.headDim), a, c.heads, c.headDim)
      return dense(ctx, `${a}.dense`, context, c.d, c.d)
    })
    // the parallel residual has no point between the halves: resid_mid exists only for the sequential one
    const mlpInput = c.parallel ? input : residMid(ctx, p, g.op('Add', [attn, input]), c.d)
    const h2 = layerNorm(ctx, `${p}.post_attention_layernorm`, mlpInput, c.d, c.eps)
    const mlp = moduleScope(ctx, `${p}.mlp`, { type: 'GPTNeoXMLP', callable: true, inShape: [...shape], outShape: [...shape] }, h2, (h) => {
      const up = dense(ctx, `${p}.mlp.dense_h_to_4h`, h, c.d, c.inner)
      const act = moduleScope(ctx, `${p}.mlp.act`, { type: 'GELUActivation', callable: true, inShape: ['batch', 'seq', c.inner], outShape: ['batch', 'seq', c.inner] },
        up, (z, name) => activation(g, c.act, z, name))
      return dense(ctx, `${p}.mlp.dense_4h_to_h`, act, c.inner, c.d)
    })
    return c.parallel ? g.op('Add', [g.op('Add', [mlp, attn]), input], {}, out) : g.op('Add', [mlp, mlpInput], {}, out)
  })
}

export function buildGptNeox (ctx: BuildContext, config: Record<string, unknown>): FamilyBuild {
  const c = readConfig(config)
  if (c.d % c.heads !== 0) throw new WeftError('MODEL_LOAD_FAILED', `hidden_size ${c.d} is not divisible by num_attention_heads ${c.heads}`)
  const { g } = ctx
  const { ids, positions, bias } = causalLmInputs(ctx)
  const hidden = g.within('gpt_neox', () => {
    let h = embedding(ctx, 'gpt_neox.embed_in', ids, c.d)
    const dim = Math.floor(c.headDim * c.rope.partial)
    const [cos, sin] = rotaryTables(ctx, 'gpt_neox.rotary_emb', 'GPTNeoXRotaryEmbedding', h, positions, c.d, dim, c.rope)
    for (let i = 0; i < c.layers; i++) h = layer(ctx, c, i, h, { mask: bias, positions, rotary: { cos, sin, dim } })
    ctx.m.add('gpt_neox.layers', { type: 'ModuleList' })
    return layerNorm(ctx, 'gpt_neox.final_layer_norm', h, c.d, c.eps)
  })
  const body = baseModelOutput(ctx, 'gpt_neox', 'GPTNeoXModel', hidden, c.d)
  const tied = !ctx.w.has('embed_out.weight')
  if (tied && config.tie_word_embeddings !== true) throw new WeftError('MODEL_LOAD_FAILED', 'checkpoint has no embed_out.weight and tie_word_embeddings is false')
  const out = lmHead(ctx, 'embed_out', body, c.d, c.vocab, tied ? 'gpt_neox.embed_in.weight' : undefined)
  return {
    logits: out, hasPositionIds: true, vocabSize: c.vocab,
    maxPositions: typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : null,
    isParameter: name => !/\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/.test(name),
  }
}
