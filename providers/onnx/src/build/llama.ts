/**
 * LlamaForCausalLM (and Qwen2ForCausalLM, which adds q/k/v biases) as an ONNX graph: RMSNorm, rotary
 * embeddings, grouped-query attention, SwiGLU MLP, tied or untied lm_head. Biases follow weight presence.
 */
import { WeftError } from '@weft/core'
import { activation, attend, inputSites, moduleScope, qkvSites, residMid, rmsNorm, splitHeads, type BuildContext, type LayerInputs } from './layers.js'
import { applyRotary, overHeads, ropeSettings, rotaryTables, type RopeSettings } from './rotary.js'
import type { FamilyBuild } from './family.js'
import { withCache } from './kv-cache.js'
import { baseModelOutput, causalLmInputs, checkpointLinear, configNumbers, embedding, lmHead } from './causal-lm.js'

/** HF class-name prefix per family (`Llama` → LlamaAttention, LlamaRMSNorm, …). */
export interface LlamaFlavour { prefix: string }

interface LlamaConfig { d: number; heads: number; kvHeads: number; headDim: number; layers: number; inner: number; vocab: number; eps: number; act: string; tied: boolean; rope: RopeSettings }

function readConfig (config: Record<string, unknown>): LlamaConfig {
  const num = configNumbers(config)
  const d = num('hidden_size'); const heads = num('num_attention_heads')
  const c = {
    d, heads, kvHeads: num('num_key_value_heads', heads), headDim: num('head_dim', d / heads), layers: num('num_hidden_layers'),
    inner: num('intermediate_size'), vocab: num('vocab_size'), eps: num('rms_norm_eps', 1e-6), act: String(config.hidden_act ?? 'silu'),
    tied: config.tie_word_embeddings === true, rope: ropeSettings(config, 1),
  }
  if (c.heads % c.kvHeads !== 0) throw new WeftError('MODEL_LOAD_FAILED', `num_attention_heads ${c.heads} is not a multiple of num_key_value_heads ${c.kvHeads}`)
  return c
}

/** repeat_kv: [batch, kvHeads, seq, dim] → [batch, heads, seq, dim], each kv head serving `heads/kvHeads` query heads. */
function repeatKv (ctx: BuildContext, x: string, c: LlamaConfig): string {
  if (c.kvHeads === c.heads) return x
  const { g } = ctx
  const shape = g.op('Shape', [x])
  const outer = g.op('Slice', [shape, g.i64([0]), g.i64([2])])
  const inner = g.op('Slice', [shape, g.i64([2]), g.i64([4])])
  const target = g.op('Concat', [outer, g.i64([c.heads / c.kvHeads]), inner], { axis: 0 })
  const expanded = g.op('Expand', [g.op('Unsqueeze', [x, g.i64([2])]), target])
  return g.op('Reshape', [expanded, g.i64([0, c.heads, -1, c.headDim])])
}

const proj = checkpointLinear

function layer (ctx: BuildContext, c: LlamaConfig, f: LlamaFlavour, i: number, x: string, given: LayerInputs): string {
  const { g } = ctx
  const p = `model.layers.${i}`
  const a = `${p}.self_attn`
  const shape = ['batch', 'seq', c.d] as const
  const rotary = Math.floor(c.headDim * c.rope.partial)
  return moduleScope(ctx, p, { type: `${f.prefix}DecoderLayer`, callable: false, inShape: [...shape], outShape: [...shape] }, x, (input, out) => {
    const layerInputs = inputSites(ctx, p, given)
    const h1 = rmsNorm(ctx, `${p}.input_layernorm`, input, c.d, c.eps, `${f.prefix}RMSNorm`)
    const attn = moduleScope(ctx, a, { type: `${f.prefix}Attention`, callable: false, inShape: [...shape], outShape: [...shape] }, h1, (h) => {
      const { mask, rotary: r } = inputSites(ctx, a, layerInputs)
      const [cos, sin] = overHeads(g, r!.cos, r!.sin)
      const q = splitHeads(g, proj(ctx, `${a}.q_proj`, h, c.d, c.heads * c.headDim), c.heads, c.headDim)
      const k = splitHeads(g, proj(ctx, `${a}.k_proj`, h, c.d, c.kvHeads * c.headDim), c.kvHeads, c.headDim)
      const v = splitHeads(g, proj(ctx, `${a}.v_proj`, h, c.d, c.kvHeads * c.headDim), c.kvHeads, c.headDim)
      const [qs, ks, vs] = qkvSites(ctx, a, applyRotary(g, q, cos, sin, rotary, c.headDim), applyRotary(g, k, cos, sin, rotary, c.headDim), v,
        c.heads, c.kvHeads, c.headDim)
      const [keys, values] = withCache(ctx, i, ks, vs, c.kvHeads, c.headDim)
      const context = attend(ctx, qs, repeatKv(ctx, keys, c), repeatKv(ctx, values, c), mask, 1 / Math.sqrt(c.headDim), a, c.heads, c.headDim)
      return proj(ctx, `${a}.o_proj`, context, c.heads * c.headDim, c.d)
    })
    const mid = residMid(ctx, p, g.op('Add', [input, attn]), c.d)
    const h2 = rmsNorm(ctx, `${p}.post_attention_layernorm`, mid, c.d, c.eps, `${f.prefix}RMSNorm`)
    const mlp = moduleScope(ctx, `${p}.mlp`, { type: `${f.prefix}MLP`, callable: true, inShape: [...shape], outShape: [...shape] }, h2, (h) => {
      const gate = proj(ctx, `${p}.mlp.gate_proj`, h, c.d, c.inner)
      const act = moduleScope(ctx, `${p}.mlp.act_fn`, { type: c.act === 'silu' ? 'SiLUActivation' : 'Activation', callable: true, inShape: ['batch', 'seq', c.inner], outShape: ['batch', 'seq', c.inner] },
        gate, (z, name) => activation(g, c.act, z, name))
      const up = proj(ctx, `${p}.mlp.up_proj`, h, c.d, c.inner)
      return proj(ctx, `${p}.mlp.down_proj`, g.op('Mul', [act, up]), c.inner, c.d)
    })
    return g.op('Add', [mid, mlp], {}, out)
  })
}

export function buildLlamaLike (ctx: BuildContext, config: Record<string, unknown>, flavour: LlamaFlavour): FamilyBuild {
  const c = readConfig(config)
  const { g } = ctx
  const { ids, positions, bias } = causalLmInputs(ctx)
  const hidden = g.within('model', () => {
    let h = embedding(ctx, 'model.embed_tokens', ids, c.d)
    const dim = Math.floor(c.headDim * c.rope.partial)
    const [cos, sin] = rotaryTables(ctx, 'model.rotary_emb', `${flavour.prefix}RotaryEmbedding`, h, positions, c.d, dim, c.rope)
    for (let i = 0; i < c.layers; i++) h = layer(ctx, c, flavour, i, h, { mask: bias, positions, rotary: { cos, sin, dim } })
    ctx.m.add('model.layers', { type: 'ModuleList' })
    return rmsNorm(ctx, 'model.norm', h, c.d, c.eps, `${flavour.prefix}RMSNorm`)
  })
  const model = baseModelOutput(ctx, 'model', `${flavour.prefix}Model`, hidden, c.d)
  const tied = !ctx.w.has('lm_head.weight')
  if (tied && !c.tied) throw new WeftError('MODEL_LOAD_FAILED', 'checkpoint has no lm_head.weight and tie_word_embeddings is false')
  const out = lmHead(ctx, 'lm_head', model, c.d, c.vocab, tied ? 'model.embed_tokens.weight' : undefined)
  return {
    logits: out, hasPositionIds: true, vocabSize: c.vocab,
    maxPositions: typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : null,
    isParameter: name => !name.endsWith('.rotary_emb.inv_freq'),
  }
}

export const buildLlama = (ctx: BuildContext, config: Record<string, unknown>): FamilyBuild => buildLlamaLike(ctx, config, { prefix: 'Llama' })
