/**
 * The gradient op group: `grad(of, wrt)` = d(of)/d(wrt) at this forward pass (writes in force), where `of` is a
 * scalar float computed in the Program and `wrt` a `read` or `param` node; plus the graph-level rules validation adds.
 */
import type { Program } from '../ir/program.js'
import type { OpDef } from './types.js'
import { SYMBOLIC_DIM_ESTIMATE } from './types.js'
import { fail, fmtShape, isFloat } from './rules.js'

/** Ops a `grad` may differentiate with respect to. */
const GRAD_WRT_OPS: readonly string[] = ['read', 'param', 'trainable']

const grad: OpDef = {
  name: 'grad',
  arity: 2,
  attrs: {},
  flags: ['access'],
  infer: (_attrs, [of, wrt]) => {
    if (!isFloat(of!.dtype)) fail('grad', `of must be a float value, got ${of!.dtype}`)
    if (!of!.shape.every(d => d === 1)) fail('grad', `of must be a scalar (shape [] or all dims 1), got ${fmtShape(of!.shape)}: reduce it first (sum, mean, index)`)
    if (!isFloat(wrt!.dtype)) fail('grad', `wrt must be a float value, got ${wrt!.dtype}`)
    return { shape: [...wrt!.shape], dtype: wrt!.dtype }
  },
  cost: (_attrs, _inputs, ctx) => {
    if (ctx === undefined) return 0
    let tokens: number
    try {
      const seq = ctx.seqLen(0)
      tokens = typeof seq === 'number' ? seq : SYMBOLIC_DIM_ESTIMATE
    } catch { tokens = SYMBOLIC_DIM_ESTIMATE }
    return 2 * (2 * ctx.manifest.parameters * tokens)
  },
  doc: 'd(of)/d(wrt) at the values of this forward pass, with every `write` in force (the gradient through the edited graph, as PyTorch computes it). ' +
    '`of` (input 0) must be a scalar float (shape [] or all dims 1) computed in the Program; `wrt` (input 1) must be a `read` node (one site of one invoke; ' +
    'its gradient is that row of the batch tensor, padding excluded) or a `param` node (all uses of the weight, tied copies included, in HF layout). ' +
    'The result has `wrt`\'s shape and dtype. Zero when `of` does not depend on `wrt` through differentiable ops. `grad` nodes sharing `of` share one ' +
    'backward pass. `of` must not depend on a `grad` (no higher-order gradients) and no `write` may depend on one (it is known only after the whole forward). ' +
    'Cost ≈ 2× the forward. Example: `spec/vectors/programs/pass-gradient-attribution.json` (a logit difference w.r.t. a block input and a LayerNorm weight).',
  examples: [],
}

export const GRAD_OPS = { grad } as const

/** Graph-level rules for `grad` nodes (what `infer` cannot see): wrt's op, no gradient under `of`, trace mode only. */
export function gradIssues (program: Program): { node: number; op: string; message: string }[] {
  const issues: { node: number; op: string; message: string }[] = []
  const fromGrad: boolean[] = []
  program.nodes.forEach(([op, , inputs], i) => {
    const valid = inputs.filter(n => Number.isInteger(n) && n >= 0 && n < i)
    fromGrad.push(op === 'grad' || valid.some(n => fromGrad[n] === true))
    if (op !== 'grad' || inputs.length !== 2) return
    const [of, wrt] = inputs as [number, number]
    const wrtOp = program.nodes[wrt]?.[0]
    if (wrtOp !== undefined && wrt < i && !GRAD_WRT_OPS.includes(wrtOp)) {
      issues.push({ node: i, op, message: `grad: wrt (node ${wrt}) must be a read, param or trainable node, got ${wrtOp}; take the gradient of the whole site and index the result` })
    }
    if (of < i && fromGrad[of] === true) issues.push({ node: i, op, message: `grad: of (node ${of}) depends on a gradient; higher-order gradients are not supported` })
    if (program.mode !== 'trace') issues.push({ node: i, op, message: `grad: only trace-mode Programs take gradients (mode is '${program.mode}')` })
  })
  return issues
}
