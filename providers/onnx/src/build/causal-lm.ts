/**
 * The model-assembly steps every family builder shares: reading numeric config.json fields, the three int64 inputs
 * and the attention bias, the token embedding, checkpoint-biased projections, the base-model output and the LM head.
 */
import { WeftError } from '@weft/core'
import { INT64 } from './graph-builder.js'
import { linear, moduleScope, type BuildContext } from './layers.js'
import { attentionBias } from './kv-cache.js'

/** `num(key, fallback?)`: config.json's `key` (or `fallback` when absent), which must be a number. */
export function configNumbers (config: Record<string, unknown>): (key: string, fallback?: number) => number {
  return (key, fallback) => {
    const value = config[key] ?? fallback
    if (typeof value !== 'number') throw new WeftError('MODEL_LOAD_FAILED', `config.json: '${key}' must be a number`, { key })
    return value
  }
}

/** The graph inputs `input_ids`, `attention_mask` ([batch, ctx] in the KV-cache variant), `position_ids`, and the attention bias. */
export function causalLmInputs (ctx: BuildContext): { ids: string; mask: string; positions: string; bias: string } {
  const { g } = ctx
  const ids = g.input('input_ids', INT64, ['batch', 'seq'])
  const mask = g.input('attention_mask', INT64, ['batch', ctx.kv === undefined ? 'seq' : 'ctx'])
  const positions = g.input('position_ids', INT64, ['batch', 'seq'])
  const bias = attentionBias(ctx, ids, mask, positions)
  return { ids, mask, positions, bias }
}

/** nn.Embedding module `path`: a Gather of `<path>.weight` rows at `index` ([batch, seq] int64 → [batch, seq, d]). */
export function embedding (ctx: BuildContext, path: string, index: string, d: number): string {
  const { g } = ctx
  return moduleScope(ctx, path, { type: 'Embedding', callable: true, inShape: ['batch', 'seq'], inDtype: 'int64', outShape: ['batch', 'seq', d] }, index,
    (input, out) => g.op('Gather', [ctx.w.tensor(`${path}.weight`), input], { axis: 0 }, out))
}

/** nn.Linear module `path` with a bias exactly when the checkpoint has `<path>.bias`. */
export function checkpointLinear (ctx: BuildContext, path: string, x: string, inDim: number, outDim: number): string {
  return linear(ctx, path, x, { type: 'Linear', inDim, outDim, transposeWeight: true, bias: ctx.w.has(`${path}.bias`) })
}

/** Names the final hidden state `hidden` as the base model's output (value `path`, module `path` of class `type`). */
export function baseModelOutput (ctx: BuildContext, path: string, type: string, hidden: string, d: number): string {
  const body = ctx.g.within(path, () => ctx.g.op('Identity', [hidden], {}, path))
  ctx.m.add(path, { type, output: { value: body, shape: ['batch', 'seq', d] } })
  return body
}

/**
 * The bias-free LM head `path` on `body`, its weight shared with the embedding `tiedTo` when given; the result is
 * the graph output `logits` [batch, seq, vocab], whose value name is returned.
 */
export function lmHead (ctx: BuildContext, path: string, body: string, d: number, vocab: number, tiedTo: string | undefined): string {
  const { g } = ctx
  const logits = linear(ctx, path, body, {
    type: 'Linear', inDim: d, outDim: vocab, transposeWeight: true, bias: false, ...(tiedTo !== undefined ? { weight: tiedTo } : {}),
  })
  if (tiedTo !== undefined) ctx.w.alias(`${path}.weight`, tiedTo)
  const out = g.op('Identity', [logits], {}, 'logits')
  g.output(out, 1, ['batch', 'seq', vocab])
  return out
}
