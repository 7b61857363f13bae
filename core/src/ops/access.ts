/** Model-access and control ops: read, write, module_call, param, const, stop, save. */
import type { Tensor } from '../tensor/tensor.js'
import type { OpDef, TensorOpDef, ValueType } from './types.js'
import { identity } from '../reference/kernels.js'
import { broadcastShapes, fail, fmtShape, numelEstimate, isFloat } from './rules.js'
import { findModule, siteType, featureRank, concreteShape } from './sites.js'
import { indexedShape } from './index-spec.js'

const siteAttrs = {
  site: { kind: 'string', required: true, doc: 'module or site path from the manifest, e.g. `transformer.h.3.mlp`' },
  port: { kind: 'enum', values: ['output', 'input'], default: 'output', doc: "`output` (primary output) or `input` (first positional input)" },
  invoke: { kind: 'int', default: 0, doc: 'which invoke (batch row) of the Program' },
  step: { kind: 'step', default: 0, doc: "generate mode only: 0 = the prompt pass; k ≥ 1 = the forward that feeds new token k (its `seq` dims are 1, attention keys span prompt + k); `'all'` = every step (see program.md, Generation)" },
} as const

const read: OpDef = {
  name: 'read',
  arity: 0,
  attrs: siteAttrs,
  flags: ['access', 'differentiable'],
  infer: (attrs, _inputs, ctx) => siteType('read', ctx, attrs),
  cost: () => 0,
  doc: "The value at a site for one invoke's row, shape `[1, seq, …]`. Sees every earlier `write` to the same site and invoke.",
  examples: [],
}

const write: OpDef = {
  name: 'write',
  arity: 1,
  attrs: { ...siteAttrs, index: { kind: 'index_spec', doc: 'optional region to assign into (numpy basic indexing); absent = the whole value' } },
  flags: ['access', 'differentiable'],
  infer: (attrs, [value], ctx) => {
    const site = siteType('write', ctx, attrs)
    const region = attrs.index === undefined ? site.shape : indexedShape('write', site.shape, attrs.index)
    const target = broadcastShapes('write', [region, value!.shape])
    if (target.length !== region.length || target.some((d, i) => d !== region[i] && typeof region[i] === 'number')) {
      fail('write', `value ${fmtShape(value!.shape)} does not broadcast to the target ${fmtShape(region)} of '${String(attrs.site)}'`)
    }
    if (value!.dtype === 'bool' && site.dtype !== 'bool') fail('write', `cannot write a bool value into ${site.dtype} site '${String(attrs.site)}'`)
    return site
  },
  cost: (_attrs, [value]) => numelEstimate(value!.shape),
  doc: 'Replaces the value at a site (or assigns into `site[index]`, broadcasting) for one invoke. The value is cast to the site dtype. Result: the new site value. Causality: the value may depend only on sites computed no later than this one.',
  examples: [],
}

const moduleCall: OpDef = {
  name: 'module_call',
  arity: 1,
  attrs: { module: { kind: 'string', required: true, doc: 'path of a callable module, e.g. `lm_head` or `transformer.ln_f`' } },
  flags: ['access', 'reads_weights', 'differentiable'],
  infer: (attrs, [x], ctx) => {
    const entry = findModule('module_call', ctx, attrs.module)
    if (!entry.callable || entry.input === undefined || entry.output === undefined) {
      fail('module_call', `module '${entry.path}' (${entry.type}) is not callable on arbitrary tensors`)
    }
    const k = featureRank(entry.input)
    const want = entry.input.shape.slice(entry.input.shape.length - k)
    const got = x!.shape.slice(x!.shape.length - k)
    if (x!.shape.length < k || got.some((d, i) => typeof d === 'number' && d !== want[i])) {
      fail('module_call', `'${entry.path}' expects [..., ${want.join(',')}], got ${fmtShape(x!.shape)}`)
    }
    if (!isFloat(x!.dtype)) fail('module_call', `'${entry.path}' expects a float tensor, got ${x!.dtype}`)
    const lead = x!.shape.slice(0, x!.shape.length - k)
    const outTail = concreteShape(entry.output, 'seq').slice(entry.output.shape.length - featureRank(entry.output))
    return { shape: [...lead, ...outTail], dtype: entry.output.dtype }
  },
  cost: (attrs, [x], ctx) => {
    if (ctx === undefined) return 0
    const entry = ctx.manifest.modules.find(m => m.path === attrs.module)
    const rows = numelEstimate(x!.shape) / Math.max(1, Number(x!.shape.at(-1) ?? 1))
    return 2 * (entry?.parameters ?? 0) * rows
  },
  doc: "Applies a module (with the model's weights) to any tensor whose trailing dims match the module's input signature; leading dims are kept (logit lens: `module_call(lm_head, module_call(transformer.ln_f, h))`).",
  examples: [],
}

const param: OpDef = {
  name: 'param',
  arity: 0,
  attrs: { name: { kind: 'string', required: true, doc: 'HF parameter name, e.g. `lm_head.weight`' } },
  flags: ['access', 'reads_weights'],
  infer: (attrs, _inputs, ctx) => {
    const params = ctx.manifest.params
    if (params === undefined) fail('param', `model '${ctx.manifest.name}' exposes no parameters`)
    const entry = params.find(p => p.name === attrs.name)
    if (entry === undefined) fail('param', `unknown parameter '${String(attrs.name)}'`)
    return { shape: [...entry.shape], dtype: entry.dtype }
  },
  cost: (attrs, _inputs, ctx) => {
    const entry = ctx?.manifest.params?.find(p => p.name === attrs.name)
    return entry === undefined ? 0 : numelEstimate(entry.shape)
  },
  doc: 'A weight tensor of the model. Flag `reads_weights`: hosts of closed models usually forbid it.',
  examples: [],
}

const constant: TensorOpDef = {
  eval: (attrs) => attrs.value as unknown as Tensor,
  name: 'const',
  arity: 0,
  attrs: { value: { kind: 'tensor', required: true, doc: 'the constant tensor' } },
  flags: ['access'],
  infer: (attrs) => {
    const value = attrs.value as unknown as Tensor
    return { shape: [...value.shape], dtype: value.dtype }
  },
  cost: (attrs) => numelEstimate((attrs.value as unknown as Tensor).shape),
  doc: 'A constant tensor carried in the Program (RFC 8746 typed array). Engines feed constants as graph inputs so programs differing only in constants share a compiled graph.',
  examples: [],
}

const stop: OpDef = {
  name: 'stop',
  arity: 0,
  attrs: {},
  flags: ['control'],
  infer: (): ValueType => ({ shape: [], dtype: 'bool' }),
  cost: () => 0,
  doc: 'Ends the forward pass as soon as every saved value is computed. Its value (a rank-0 bool) must not be used.',
  examples: [],
}

const save: TensorOpDef = {
  eval: identity,
  name: 'save',
  arity: 1,
  attrs: { name: { kind: 'string', required: true, doc: 'result name, unique in the Program' } },
  flags: ['control', 'differentiable'],
  infer: (_attrs, [x]) => x!,
  cost: () => 0,
  doc: 'Identity that marks its input as a result under `name`. Only saved values leave the provider.',
  examples: [{ name: 'save-identity', attrs: { name: 'h' }, inputs: [[1, 2]], output: [1, 2] }],
}

export const ACCESS_OPS = { read, write, module_call: moduleCall, param, const: constant, stop, save } as const
