/**
 * The KV-cache variant of the built graphs (for generation): per layer a `past_key.<i>`/`past_value.<i>` input
 * [batch, kvHeads, ctx, headDim] and `present_key.<i>`/`present_value.<i>` outputs; new keys/values are written into
 * the cache at their positions (slot = position), the attention mask [batch, ctx] marks the slots holding tokens.
 */
import { BOOL, FLOAT, type GraphBuilder } from './graph-builder.js'
import type { BuildContext } from './context.js'
import { causalPaddingBias } from './layers.js'

/**
 * The additive attention bias. Without a cache: causal AND key-is-real over [batch, 1, seq, seq]. With one:
 * a query at position p sees cache slot j when j ≤ p and `attention_mask[b, j]` = 1, giving [batch, 1, seq, ctx].
 */
export function attentionBias (ctx: BuildContext, ids: string, mask: string, positions: string): string {
  const { g } = ctx
  if (ctx.kv === undefined) return causalPaddingBias(g, ids, mask)
  const ctxLength = g.op('Gather', [g.op('Shape', [mask]), g.i64([1], [])], { axis: 0 })
  const slots = g.op('Unsqueeze', [g.op('Range', [g.i64([0], []), ctxLength, g.i64([1], [])]), g.i64([0, 1])])   // [1, 1, ctx]
  const queries = g.op('Unsqueeze', [positions, g.i64([2])])                                                      // [batch, seq, 1]
  const causal = g.op('LessOrEqual', [slots, queries])                                                            // [batch, seq, ctx]
  const real = g.op('Unsqueeze', [g.op('Cast', [mask], { to: BOOL }), g.i64([1])])                               // [batch, 1, ctx]
  const allowed = g.op('Unsqueeze', [g.op('And', [causal, real]), g.i64([1])])                                   // [batch, 1, seq, ctx]
  return g.op('Where', [allowed, g.f32(0), g.f32(-3.4028234663852886e38)], {}, 'attention_bias')
}

/**
 * Layer `layer`'s keys and values for attention: without a cache the new ones ([batch, kvHeads, seq, headDim]);
 * with one, the cache input with the new ones scattered in at their positions (also the layer's present outputs).
 */
export function withCache (ctx: BuildContext, layer: number, k: string, v: string, kvHeads: number, headDim: number): [string, string] {
  const kv = ctx.kv
  if (kv === undefined) return [k, v]
  const { g } = ctx
  kv.kvHeads = kvHeads
  kv.headDim = headDim
  const dims = ['batch', kvHeads, 'ctx', headDim]
  const pastKey = g.input(`past_key.${layer}`, FLOAT, dims)
  const pastValue = g.input(`past_value.${layer}`, FLOAT, dims)
  // indices [batch, kvHeads, seq, headDim] holding each new row's position along the ctx axis
  const slots = g.op('Expand', [g.op('Unsqueeze', [kv.positions, g.i64([1, 3])]), g.op('Shape', [k])])
  const presentKey = scatter(g, pastKey, slots, k, `present_key.${layer}`)
  const presentValue = scatter(g, pastValue, slots, v, `present_value.${layer}`)
  g.output(presentKey, FLOAT, dims)
  g.output(presentValue, FLOAT, dims)
  kv.layers.push({ pastKey, pastValue, presentKey, presentValue })
  return [presentKey, presentValue]
}

function scatter (g: GraphBuilder, past: string, slots: string, update: string, name: string): string {
  return g.op('ScatterElements', [past, slots, update], { axis: 2 }, name)
}
