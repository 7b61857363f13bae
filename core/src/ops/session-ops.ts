/** Session ops: `trainable` (a param the Program declares), `from` (a value of an earlier trace of the session), `detach` (a gradient edit). */
import type { OpDef, TensorOpDef } from './types.js'
import { identity } from '../reference/kernels.js'
import { fail, numelEstimate } from './rules.js'

const trainable: OpDef = {
  name: 'trainable',
  arity: 0,
  attrs: { name: { kind: 'string', required: true, doc: "name of a param declared in the Program's `params`" } },
  flags: ['access', 'differentiable'],
  infer: (attrs, _inputs, ctx) => {
    const decl = ctx.params?.[attrs.name as string]
    if (decl === undefined || !Object.hasOwn(ctx.params!, attrs.name as string)) fail('trainable', `'${String(attrs.name)}' is not a declared param (declare it in the Program's params)`)
    return { shape: [...decl.shape], dtype: decl.dtype }
  },
  cost: (attrs, _inputs, ctx) => {
    const decl = ctx?.params?.[attrs.name as string]
    return decl === undefined ? 0 : numelEstimate(decl.shape)
  },
  doc: "The current value of a param the Program declares (`params`): its initial value, or during training the value of the current step; in a later trace of a session, the final (trained) value. Usable anywhere a tensor is; `grad` may differentiate with respect to it.",
  examples: [],
}

const from: OpDef = {
  name: 'from',
  arity: 0,
  attrs: {
    trace: { kind: 'int', required: true, doc: 'an earlier trace of the session (0 = the Program itself, k = then[k-1])' },
    node: { kind: 'int', required: true, doc: 'a node of that trace' },
  },
  flags: ['access'],
  infer: (attrs, _inputs, ctx) => {
    if (ctx.fromValue === undefined) fail('from', 'only later traces of a session (then[…]) may use values of earlier traces')
    return ctx.fromValue(attrs.trace as number, attrs.node as number)
  },
  cost: () => 0,
  doc: "A value computed by an earlier trace of the same session (`then`), used without leaving the host: it moves no bytes and is not charged as egress unless saved. The earlier trace must be a trace-mode trace; the node must have a value (not `stop`).",
  examples: [],
}

const detach: TensorOpDef = {
  name: 'detach',
  arity: 1,
  attrs: {},
  flags: ['elementwise'],
  infer: (_attrs, [x]) => x!,
  cost: () => 0,
  eval: identity,
  doc: "Identity in the forward pass whose gradient is zero (PyTorch's `x.detach()`): a gradient edit. `write(site, detach(read(site)))` zeroes the gradient " +
    'flowing back through that site to everything computed before it; `add(detach(x), mul(sub(x, detach(x)), s))` keeps the value of `x` and scales its gradient by `s`.',
  examples: [{ name: 'detach-identity', attrs: {}, inputs: [[1, -2]], output: [1, -2] }],
}

export const SESSION_OPS = { trainable, from, detach } as const
