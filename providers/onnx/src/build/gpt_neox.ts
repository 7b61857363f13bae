/**
 * GPTNeoXForCausalLM as an ONNX graph: LayerNorm, fused `query_key_value` in HF's per-head [q | k | v] layout,
 * partial rotary (`rotary_pct` / `partial_rotary_factor`), parallel or sequential residual, `embed_out` head.
 */
import { WeftError } from '@weft/core'
import { INT64 } from './graph-builder.js'
import { activation, attend, layerNorm, linear, mergeHeads, moduleScope, type BuildContext } from './layers.js'
import { applyRotary, ropeSettings, rotaryTables, type RopeSettings } from './rotary.js'
import type { FamilyBuild } from './family.js'
import { attentionBias, withCache } from './kv-cache.js'

interface NeoxConfig { d: number; heads: number; headDim: number; layers: number; inner: number; vocab: number; eps: number; act: string; parallel: boolean; rope: RopeSettings }

function readConfig (config: Record<string, unknown>): NeoxConfig {
  const num = (key: string, fallback?: number): number => {
    const value = config[key] ?? fallback
    if (typeof value !== 'number') throw new WeftError('MODEL_LOAD_FAILED', `config.json: '${key}' must be a number`, { key })
    return value
  }
  const d = num('hidden_size'); const heads = num('num_attention_heads')
  return {
    d, heads, headDim: d / heads, layers: num('num_hidden_layers'), inner: num('intermediate_size', 4 * d), vocab: num('vocab_size'),
    eps: num('layer_norm_eps', 1e-5), act: String(config.hidden_act ?? 'gelu'), parallel: config.use_parallel_residual !== false,
    rope: ropeSettings(config, 0.25),
  }
}

function dense (ctx: BuildContext, path: string, x: string, inDim: number, outDim: number): string {
  return linear(ctx, path, x, { type: 'Linear', inDim, outDim, transposeWeight: true, bias: ctx.w.has(`${path}.bias`) })
}

function layer (ctx: BuildContext, c: NeoxConfig, i: number, x: string, bias: string, cos: string, sin: string): string {
  const { g } = ctx
  const p = `gpt_neox.layers.${i}`
  const a = `${p}.attention`
  const shape = ['batch', 'seq', c.d] as const
  const rotary = Math.floor(c.headDim * c.rope.partial)
  return moduleScope(ctx, p, { type: 'GPTNeoXLayer', callable: false, inShape: [...shape], outShape: [...shape] }, x, (input, out) => {
    const h1 = layerNorm(ctx, `${p}.input_layernorm`, input, c.d, c.eps)
    const attn = moduleScope(ctx, a, { type: 'GPTNeoXAttention', callable: false, inShape: [...shape], outShape: [...shape] }, h1, (h) => {
      const qkv = dense(ctx, `${a}.query_key_value`, h, c.d, 3 * c.d)
      // view(batch, seq, heads, 3·head_dim).transpose(1, 2).chunk(3, -1)
      const perHead = g.op('Transpose', [g.op('Reshape', [qkv, g.i64([0, 0, c.heads, 3 * c.headDim])])], { perm: [0, 2, 1, 3] })
      const [q, k, v] = g.opN('Split', [perHead, g.i64([c.headDim, c.headDim, c.headDim])], { axis: -1 }, g.names('Split', 3))
      const [keys, values] = withCache(ctx, i, applyRotary(g, k!, cos, sin, rotary, c.headDim), v!, c.heads, c.headDim)
      const context = attend(ctx, applyRotary(g, q!, cos, sin, rotary, c.headDim), keys, values, bias, 1 / Math.sqrt(c.headDim), `${a}.probs`, c.heads)
      return dense(ctx, `${a}.dense`, mergeHeads(g, context, c.d), c.d, c.d)
    })
    const mlpInput = c.parallel ? input : g.op('Add', [attn, input])
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
  const ids = g.input('input_ids', INT64, ['batch', 'seq'])
  const mask = g.input('attention_mask', INT64, ['batch', ctx.kv === undefined ? 'seq' : 'ctx'])
  const positions = g.input('position_ids', INT64, ['batch', 'seq'])
  const bias = attentionBias(ctx, ids, mask, positions)
  const shape = ['batch', 'seq', c.d] as const
  const hidden = g.within('gpt_neox', () => {
    let h = moduleScope(ctx, 'gpt_neox.embed_in', { type: 'Embedding', callable: true, inShape: ['batch', 'seq'], inDtype: 'int64', outShape: [...shape] }, ids,
      (input, out) => g.op('Gather', [ctx.w.tensor('gpt_neox.embed_in.weight'), input], { axis: 0 }, out))
    const [cos, sin] = rotaryTables(ctx, 'gpt_neox.rotary_emb', 'GPTNeoXRotaryEmbedding', h, positions, c.d, Math.floor(c.headDim * c.rope.partial), c.rope)
    for (let i = 0; i < c.layers; i++) h = layer(ctx, c, i, h, bias, cos, sin)
    ctx.m.add('gpt_neox.layers', { type: 'ModuleList' })
    return layerNorm(ctx, 'gpt_neox.final_layer_norm', h, c.d, c.eps)
  })
  const body = g.within('gpt_neox', () => g.op('Identity', [hidden], {}, 'gpt_neox'))
  ctx.m.add('gpt_neox', { type: 'GPTNeoXModel', output: { value: body, shape: [...shape] } })
  const tied = !ctx.w.has('embed_out.weight')
  if (tied && config.tie_word_embeddings !== true) throw new WeftError('MODEL_LOAD_FAILED', 'checkpoint has no embed_out.weight and tie_word_embeddings is false')
  const logits = linear(ctx, 'embed_out', body, {
    type: 'Linear', inDim: c.d, outDim: c.vocab, transposeWeight: true, bias: false, ...(tied ? { weight: 'gpt_neox.embed_in.weight' } : {}),
  })
  if (tied) ctx.w.alias('embed_out.weight', 'gpt_neox.embed_in.weight')
  const out = g.op('Identity', [logits], {}, 'logits')
  g.output(out, 1, ['batch', 'seq', c.vocab])
  return {
    logits: out, hasPositionIds: true, vocabSize: c.vocab,
    maxPositions: typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : null,
    isParameter: name => !/\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/.test(name),
  }
}
