/**
 * Rotary position embeddings as HF computes them: inv_freq = 1/θ^(2i/d), cos/sin tables [batch, seq, d] from
 * position_ids (the `rotary_emb` module's output is the cos table), rotate_half on the first `d` dims of a head.
 */
import { WeftError } from '@weft/core'
import { FLOAT, type GraphBuilder } from './graph-builder.js'
import { moduleScope, site, type BuildContext } from './layers.js'

export interface RopeSettings { theta: number; partial: number; factor: number }

/** rope_theta / partial rotary factor / linear scaling from `rope_parameters`, `rope_scaling` or top-level keys. */
export function ropeSettings (config: Record<string, unknown>, defaultPartial: number): RopeSettings {
  const parameters = (config.rope_parameters ?? config.rope_scaling ?? {}) as Record<string, unknown>
  const type = String(parameters.rope_type ?? parameters.type ?? 'default')
  if (type !== 'default' && type !== 'linear') {
    throw new WeftError('MODEL_LOAD_FAILED', `rope_type '${type}' is not supported (default, linear)`, { ropeType: type })
  }
  const number = (...values: unknown[]): number | undefined => values.find((v): v is number => typeof v === 'number')
  return {
    theta: number(parameters.rope_theta, config.rope_theta, config.rotary_emb_base) ?? 10000,
    partial: number(parameters.partial_rotary_factor, config.partial_rotary_factor, config.rotary_pct) ?? defaultPartial,
    factor: type === 'linear' ? number(parameters.factor) ?? 1 : 1,
  }
}

/**
 * The `rotary_emb` module (HF `forward(x, position_ids)`): returns [cos, sin] as [batch, seq, dim], the pair HF
 * passes every layer as `position_embeddings`. Exposes site `<path>.inputs.position_ids` (a write moves the rotary
 * positions of every layer, not the cache slots or the causal mask).
 */
export function rotaryTables (ctx: BuildContext, path: string, type: string, hidden: string, positions: string,
  width: number, dim: number, rope: RopeSettings): [string, string] {
  const { g } = ctx
  let sin = ''
  const cos = moduleScope(ctx, path, { type, callable: false, inShape: ['batch', 'seq', width], outShape: ['batch', 'seq', dim] }, hidden, (_x, out) => {
    const ids = site(ctx, `${path}.inputs.position_ids`, 'input:position_ids', positions, ['batch', 'seq'], 'int64')
    const inverse: number[] = []
    for (let i = 0; i < dim; i += 2) inverse.push(1 / (rope.theta ** (i / dim)) / rope.factor)
    const angles = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [ids], { to: FLOAT }), g.i64([-1])]), g.f32(inverse, [inverse.length])])
    const both = g.op('Concat', [angles, angles], { axis: -1 })
    sin = g.op('Sin', [both], {}, `${path}/sin`)
    return g.op('Cos', [both], {}, out)
  })
  return [cos, sin]
}

/** cos, sin [batch, seq, dim] → [batch, 1, seq, dim], broadcasting over heads (HF's `unsqueeze_dim=1`). */
export function overHeads (g: GraphBuilder, cos: string, sin: string): [string, string] {
  return [g.op('Unsqueeze', [cos, g.i64([1])]), g.op('Unsqueeze', [sin, g.i64([1])])]
}

/** x·cos + rotate_half(x)·sin on the first `dim` of `headDim` features of x [batch, heads, seq, headDim]. */
export function applyRotary (g: GraphBuilder, x: string, cos: string, sin: string, dim: number, headDim: number): string {
  const half = dim / 2
  const partial = dim < headDim
  const sizes = partial ? [half, half, headDim - dim] : [half, half]
  const parts = g.opN('Split', [x, g.i64(sizes)], { axis: -1 }, g.names('Split', sizes.length))
  const rotated = g.op('Concat', [g.op('Neg', [parts[1]!]), parts[0]!], { axis: -1 })
  const first = partial ? g.op('Concat', [parts[0]!, parts[1]!], { axis: -1 }) : x
  const embedded = g.op('Add', [g.op('Mul', [first, cos]), g.op('Mul', [rotated, sin])])
  return partial ? g.op('Concat', [embedded, parts[2]!], { axis: -1 }) : embedded
}
