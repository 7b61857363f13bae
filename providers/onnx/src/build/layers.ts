/**
 * Layers shared by the family builders, written in the graph DSL: module scoping (input/output naming and
 * manifest entries), Linear, LayerNorm, RMSNorm, activations, the padding-aware causal mask and attention.
 */
import type { DType, SymDim } from '@weft/core'
import { BOOL, float, type GraphBuilder } from './graph-builder.js'
import type { BuildContext } from './context.js'
export type { BuildContext } from './context.js'

export interface ModuleOptions {
  type: string
  callable: boolean
  inShape: SymDim[]
  outShape: SymDim[]
  inDtype?: DType
  owns?: string[]
}

/**
 * Runs `body` as module `path`: its first input becomes the value `<path>:input` (an Identity in the module's
 * scope, so a write to the input reaches only this module), its output is the value named `path`.
 */
export function moduleScope (ctx: BuildContext, path: string, options: ModuleOptions, x: string,
  body: (x: string, out: string) => string): string {
  const { g } = ctx
  return g.within(path, () => {
    const input = g.op('Identity', [x], {}, `${path}:input`)
    const result = body(input, path)
    const out = result === path ? path : g.op('Identity', [result], {}, path)
    ctx.m.add(path, {
      type: options.type, callable: options.callable, owns: options.owns,
      output: { value: out, shape: options.outShape }, input: { value: input, shape: options.inShape, dtype: options.inDtype },
    })
    return out
  })
}

/** A finer hook point: names `value` as site `path` (an Identity so writes can rewire it). */
export function site (ctx: BuildContext, path: string, type: string, value: string, shape: SymDim[], dtype?: DType): string {
  const out = ctx.g.op('Identity', [value], {}, path)
  ctx.m.add(path, { type, kind: 'site', callable: false, output: { value: out, shape, ...(dtype !== undefined ? { dtype } : {}) } })
  return out
}

/**
 * What transformers passes a decoder layer / attention module beside `hidden_states`, by argument name:
 * `attention_mask` (the additive mask), `position_ids` and, in rotary families, `position_embeddings` (the
 * `(cos, sin)` pair from `rotary_emb`, each [batch, seq, rotary_dim]).
 */
export interface LayerInputs { mask: string; positions: string; rotary?: { cos: string; sin: string; dim: number } }

/**
 * Sites `<module>.inputs.<name>` for `inputs`, created where the module starts (before anything inside it), so a
 * write replaces what this module (and the modules it passes them on to) receives. Returns the site values.
 * The pair `position_embeddings` becomes `.inputs.position_embeddings.0` (cos) and `.1` (sin).
 */
export function inputSites (ctx: BuildContext, module: string, inputs: LayerInputs): LayerInputs {
  const named = (name: string, value: string, shape: SymDim[], dtype?: DType): string =>
    site(ctx, `${module}.inputs.${name}`, `input:${name}`, value, shape, dtype)
  const mask = named('attention_mask', inputs.mask, ['batch', 1, 'seq', 'seq'])
  const positions = named('position_ids', inputs.positions, ['batch', 'seq'], 'int64')
  const r = inputs.rotary
  if (r === undefined) return { mask, positions }
  const cos = named('position_embeddings.0', r.cos, ['batch', 'seq', r.dim])
  const sin = named('position_embeddings.1', r.sin, ['batch', 'seq', r.dim])
  return { mask, positions, rotary: { cos, sin, dim: r.dim } }
}

export interface LinearOptions {
  type: string
  inDim: number
  outDim: number
  /** true for nn.Linear ([out, in] weights), false for GPT-2's Conv1D ([in, out]) */
  transposeWeight: boolean
  bias: boolean
  weight?: string
}

/** nn.Linear / Conv1D as MatMul (+ Add) on an [in, out] initializer. */
export function linear (ctx: BuildContext, path: string, x: string, options: LinearOptions): string {
  const weightName = options.weight ?? `${path}.weight`
  return moduleScope(ctx, path, {
    type: options.type, callable: true, inShape: ['batch', 'seq', options.inDim], outShape: ['batch', 'seq', options.outDim],
    owns: options.weight !== undefined ? [options.weight] : undefined,
  }, x, (input, out) => {
    const weight = options.transposeWeight ? ctx.w.transposed(weightName) : ctx.w.tensor(weightName)
    if (!options.bias) return ctx.g.op('MatMul', [input, weight], {}, out)
    const product = ctx.g.op('MatMul', [input, weight])
    return ctx.g.op('Add', [product, ctx.w.tensor(`${path}.bias`)], {}, out)
  })
}

export function layerNorm (ctx: BuildContext, path: string, x: string, dim: number, eps: number, type = 'LayerNorm'): string {
  return moduleScope(ctx, path, { type, callable: true, inShape: ['batch', 'seq', dim], outShape: ['batch', 'seq', dim] }, x,
    (input, out) => ctx.g.op('LayerNormalization', [input, ctx.w.tensor(`${path}.weight`), ctx.w.tensor(`${path}.bias`)],
      { axis: -1, epsilon: float(eps) }, out))
}

/** HF RMSNorm: x * rsqrt(mean(x²) + eps) * weight, in float32. */
export function rmsNorm (ctx: BuildContext, path: string, x: string, dim: number, eps: number, type: string): string {
  const { g } = ctx
  return moduleScope(ctx, path, { type, callable: true, inShape: ['batch', 'seq', dim], outShape: ['batch', 'seq', dim] }, x,
    (input, out) => {
      const meanSquare = g.op('ReduceMean', [g.op('Mul', [input, input]), g.i64([-1])], { keepdims: 1 })
      const inverse = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.f32(eps)])])])
      return g.op('Mul', [ctx.w.tensor(`${path}.weight`), g.op('Mul', [input, inverse])], {}, out)
    })
}

/** Activation functions by HF name (`hidden_act` / `activation_function`). */
export function activation (g: GraphBuilder, name: string, x: string, out?: string): string {
  switch (name) {
    case 'gelu_new': case 'gelu_pytorch_tanh': case 'gelu_fast': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      const cube = g.op('Mul', [g.op('Mul', [x, x]), x])
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, g.f32(0.044715)])]), g.f32(Math.sqrt(2 / Math.PI))])
      return g.op('Mul', [g.op('Mul', [x, g.f32(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.f32(1)])], {}, out)
    }
    case 'gelu': {
      const erf = g.op('Erf', [g.op('Mul', [x, g.f32(Math.SQRT1_2)])])
      return g.op('Mul', [g.op('Mul', [x, g.f32(0.5)]), g.op('Add', [erf, g.f32(1)])], {}, out)
    }
    case 'silu': case 'swish':
      return g.op('Mul', [x, g.op('Sigmoid', [x])], {}, out)
    case 'relu':
      return g.op('Relu', [x], {}, out)
    default:
      throw new Error(`activation '${name}' is not supported`)
  }
}


/**
 * Additive attention bias [batch, 1, seq, seq]: 0 where the key is at or before the query and is a real token
 * (attention_mask = 1), the float32 minimum elsewhere. Built once in the root scope.
 */
export function causalPaddingBias (g: GraphBuilder, inputIds: string, attentionMask: string): string {
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.i64([1], [])], { axis: 0 })
  const positions = g.op('Range', [g.i64([0], []), seq, g.i64([1], [])])
  const keys = g.op('Unsqueeze', [positions, g.i64([0])])
  const queries = g.op('Unsqueeze', [positions, g.i64([1])])
  const causal = g.op('LessOrEqual', [keys, queries])
  const real = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: BOOL }), g.i64([1, 2])])
  const allowed = g.op('And', [causal, real])
  return g.op('Where', [allowed, g.f32(0), g.f32(-3.4028234663852886e38)], {}, 'attention_bias')
}

/** [batch, seq, heads·dim] → [batch, heads, seq, dim] */
export function splitHeads (g: GraphBuilder, x: string, heads: number, headDim: number): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.i64([0, 0, heads, headDim])])], { perm: [0, 2, 1, 3] })
}


/**
 * softmax(q·kᵀ·scale + mask)·v for the attention module `attnPath`, merged to [batch, seq, heads·headDim]; `mask` is
 * the module's `attention_mask` input site (see inputSites). Exposes sites `<attnPath>.scores` (q·kᵀ·scale before the
 * mask), `.probs` and `.heads` (the per-head output [batch, seq, heads, headDim], HF eager attention's `attn_output`
 * before the reshape and output projection).
 */
export function attend (ctx: BuildContext, q: string, k: string, v: string, mask: string, scale: number,
  attnPath: string, heads: number, headDim: number): string {
  const { g } = ctx
  const raw = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), g.f32(scale)])
  const scores = site(ctx, `${attnPath}.scores`, 'attention_scores', raw, ['batch', heads, 'seq', 'seq'])
  const probs = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 })
  const named = site(ctx, `${attnPath}.probs`, 'attention_probs', probs, ['batch', heads, 'seq', 'seq'])
  const perHead = g.op('Transpose', [g.op('MatMul', [named, v])], { perm: [0, 2, 1, 3] })
  const output = site(ctx, `${attnPath}.heads`, 'attention_heads', perHead, ['batch', 'seq', heads, headDim])
  return g.op('Reshape', [output, g.i64([0, 0, heads * headDim])])
}

/** Sites `<attnPath>.q`, `.k`, `.v`: per-head projections [batch, heads, seq, headDim] (after rotary where applied). */
export function qkvSites (ctx: BuildContext, attnPath: string, q: string, k: string, v: string,
  heads: number, kvHeads: number, headDim: number): [string, string, string] {
  return [
    site(ctx, `${attnPath}.q`, 'attention_query', q, ['batch', heads, 'seq', headDim]),
    site(ctx, `${attnPath}.k`, 'attention_key', k, ['batch', kvHeads, 'seq', headDim]),
    site(ctx, `${attnPath}.v`, 'attention_value', v, ['batch', kvHeads, 'seq', headDim]),
  ]
}

/** Site `<block>.resid_mid`: the residual stream between a block's attention and MLP halves. */
export function residMid (ctx: BuildContext, block: string, x: string, width: number): string {
  return site(ctx, `${block}.resid_mid`, 'residual', x, ['batch', 'seq', width])
}
