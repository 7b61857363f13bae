/**
 * Lowerings of the pure tensor ops of Program v1 to ONNX nodes: one row per op (`satisfies Record<LoweredOpName, …>`:
 * a core op without a row fails `tsc`). Inputs arrive with their inferred types; each lowering casts to the dtype the
 * op table infers and returns the output value name. Lowerings emit through `LoweringEmitter`, so every ONNX op they
 * use has a row, with a VJP rule or no gradient, in the ONNX op table (onnx-ops.ts).
 */
import { promote, wrapAxis, type Attrs, type DType, type TensorOpName } from '@weft/core'
import { create } from '@bufbuild/protobuf'
import { onnx } from '../graph/onnx.js'
import type { LoweringEmitter, LowerableOnnxOp } from './onnx-ops.js'
import type { AttrSpec } from './emitter.js'
import { NO_GRAD_KEY } from './no-grad.js'
import { lowerIndex } from './index-ops.js'
import { ONNX_DTYPE } from './dtypes.js'

export interface ValueTypeLike { shape: readonly (number | string)[]; dtype: DType }
export interface Lowered { name: string; type: ValueTypeLike }
export type TensorLowering = (emit: LoweringEmitter, attrs: Attrs, inputs: Lowered[], out: ValueTypeLike) => string

const to = (emit: LoweringEmitter, x: Lowered, dtype: DType): string => emit.cast(x.name, x.type.dtype, dtype)

function binary (opType: LowerableOnnxOp): TensorLowering {
  return (emit, _attrs, [a, b], out) => emit.op(opType, [to(emit, a!, out.dtype), to(emit, b!, out.dtype)])
}

function compare (opType: LowerableOnnxOp, negate = false): TensorLowering {
  return (emit, _attrs, [a, b]) => {
    const dtype = promote([a!.type.dtype, b!.type.dtype], false) // the op table's comparison dtype
    const result = emit.op(opType, [to(emit, a!, dtype), to(emit, b!, dtype)])
    return negate ? emit.op('Not', [result]) : result
  }
}

function unary (opType: LowerableOnnxOp): TensorLowering {
  return (emit, _attrs, [x], out) => emit.op(opType, [to(emit, x!, out.dtype)])
}

/** A rank-0 constant of `dtype` (float32/float64 stored as is, other dtypes cast from float64). */
function scalar (emit: LoweringEmitter, value: number, dtype: DType): string {
  const stored: DType = dtype === 'float32' ? 'float32' : 'float64'
  const name = emit.fresh(`c${stored === 'float32' ? 32 : 64}`)
  const raw = stored === 'float32' ? new Uint8Array(Float32Array.of(value).buffer) : new Uint8Array(Float64Array.of(value).buffer)
  emit.initializers.push(create(onnx.TensorProtoSchema, { name, dims: [], dataType: ONNX_DTYPE[stored], rawData: raw }))
  return emit.cast(name, stored, dtype)
}

function logical (opType: 'And' | 'Or' | 'Xor' | 'Not'): TensorLowering {
  return (emit, _attrs, inputs) => emit.op(opType, inputs.map(x => to(emit, x, 'bool')))
}

/** GELU: 0.5·x·(1 + erf(x/√2)), or with `approximate: 'tanh'` 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
const gelu: TensorLowering = (emit, attrs, [input], out) => {
  const x = to(emit, input!, out.dtype)
  const c = (value: number): string => scalar(emit, value, out.dtype)
  const inner = attrs.approximate === 'tanh'
    ? emit.op('Tanh', [emit.op('Mul', [c(Math.sqrt(2 / Math.PI)), emit.op('Add', [x, emit.op('Mul', [c(0.044715), emit.op('Mul', [x, emit.op('Mul', [x, x])])])])])])
    : emit.op('Erf', [emit.op('Mul', [x, c(Math.SQRT1_2)])])
  return emit.op('Mul', [emit.op('Mul', [x, c(0.5)]), emit.op('Add', [inner, c(1)])])
}

function axesOf (attrs: Attrs, rank: number): number[] | null {
  const axes = attrs.axes
  if (axes === null || axes === undefined) return null
  return (axes as number[]).map(a => wrapAxis(a, rank))
}

function reduction (opType: LowerableOnnxOp & `Reduce${string}`): TensorLowering {
  return (emit, attrs, [x], out) => {
    const axes = axesOf(attrs, x!.type.shape.length)
    const keepdims = attrs.keepdims === true
    const compute: DType = opType === 'ReduceMax' || opType === 'ReduceMin' ? (x!.type.dtype === 'bool' ? 'int32' : x!.type.dtype) : out.dtype
    const reduced = emit.reduce(opType, to(emit, x!, compute), axes, keepdims)
    return emit.cast(reduced, compute, out.dtype)
  }
}

function softmaxLike (opType: LowerableOnnxOp): TensorLowering {
  return (emit, attrs, [x], out) => emit.op(opType, [to(emit, x!, out.dtype)], { axis: wrapAxis((attrs.axis as number | undefined) ?? -1, x!.type.shape.length) })
}

export const TENSOR_LOWERINGS = {
  index: (emit, attrs, [x]) => lowerIndex(emit, x!.name, attrs.index as never),
  reshape: (emit, attrs, [x]) => emit.op('Reshape', [x!.name, emit.int64(attrs.shape as number[])], { allowzero: 1 }),
  transpose: (emit, attrs, [x]) => emit.op('Transpose', [x!.name], { perm: (attrs.perm as number[]).map(p => wrapAxis(p, x!.type.shape.length)) }),
  concat: (emit, attrs, inputs, out) => emit.op('Concat', inputs.map(x => to(emit, x, out.dtype)), { axis: wrapAxis(attrs.axis as number ?? 0, out.shape.length) }),
  stack: (emit, attrs, inputs, out) => {
    const axis = wrapAxis((attrs.axis as number | undefined) ?? 0, out.shape.length)
    return emit.op('Concat', inputs.map(x => emit.unsqueeze(to(emit, x, out.dtype), [axis])), { axis })
  },
  add: binary('Add'),
  sub: binary('Sub'),
  mul: binary('Mul'),
  div: binary('Div'),
  pow: binary('Pow'),
  neg: unary('Neg'),
  exp: unary('Exp'),
  log: unary('Log'),
  sqrt: unary('Sqrt'),
  abs: unary('Abs'),
  tanh: unary('Tanh'),
  relu: unary('Relu'),
  sin: unary('Sin'),
  cos: unary('Cos'),
  sigmoid: unary('Sigmoid'),
  erf: unary('Erf'),
  gelu,
  silu: (emit, _attrs, [input], out) => {
    const x = to(emit, input!, out.dtype)
    return emit.op('Mul', [x, emit.op('Sigmoid', [x])])
  },
  clamp: (emit, attrs, [x], out) => {
    const bound = (value: unknown): string => typeof value === 'number' ? scalar(emit, value, out.dtype) : ''
    const max = bound(attrs.max)
    return emit.op('Clip', [x!.name, bound(attrs.min), ...(max === '' ? [] : [max])])
  },
  logical_and: logical('And'),
  logical_or: logical('Or'),
  logical_xor: logical('Xor'),
  logical_not: logical('Not'),
  eq: compare('Equal'),
  ne: compare('Equal', true),
  lt: compare('Less'),
  le: compare('LessOrEqual'),
  gt: compare('Greater'),
  ge: compare('GreaterOrEqual'),
  where: (emit, _attrs, [cond, a, b], out) => emit.op('Where', [to(emit, cond!, 'bool'), to(emit, a!, out.dtype), to(emit, b!, out.dtype)]),
  cast: (emit, _attrs, [x], out) => {
    if (x!.type.dtype === out.dtype) return emit.op('Identity', [x!.name])
    return to(emit, x!, out.dtype)
  },
  matmul: binary('MatMul'),
  einsum: (emit, attrs, inputs, out) => emit.op('Einsum', inputs.map(x => to(emit, x, out.dtype)), { equation: (attrs.equation as string).replace(/\s+/g, '') }),
  cumsum: (emit, attrs, [x], out) => emit.op('CumSum', [to(emit, x!, out.dtype), emit.int64([wrapAxis(attrs.axis as number, x!.type.shape.length)], [])], {
    exclusive: attrs.exclusive === true ? 1 : 0, reverse: attrs.reverse === true ? 1 : 0,
  }),
  gather: (emit, attrs, [x, idx]) => emit.op('GatherElements', [x!.name, to(emit, idx!, 'int64')], { axis: wrapAxis(attrs.axis as number, x!.type.shape.length) }),
  scatter: (emit, attrs, [x, idx, src], out) => {
    const index = to(emit, idx!, 'int64')
    const values = emit.op('Expand', [to(emit, src!, out.dtype), emit.op('Shape', [index])])
    const spec: Record<string, AttrSpec> = { axis: wrapAxis(attrs.axis as number, x!.type.shape.length) }
    if (attrs.reduction === 'add') spec.reduction = 'add' // opset 16+; plain writes stay valid in older opsets
    return emit.op('ScatterElements', [x!.name, index, values], spec)
  },
  sum: reduction('ReduceSum'),
  mean: reduction('ReduceMean'),
  max: reduction('ReduceMax'),
  min: reduction('ReduceMin'),
  argmax: (emit, attrs, [x]) => emit.op('ArgMax', [x!.type.dtype === 'bool' ? to(emit, x!, 'int32') : x!.name], {
    axis: wrapAxis((attrs.axis as number | undefined) ?? -1, x!.type.shape.length), keepdims: attrs.keepdims === true ? 1 : 0, select_last_index: 0,
  }),
  topk: (emit, attrs, [x]) => {
    const axis = wrapAxis((attrs.axis as number | undefined) ?? -1, x!.type.shape.length)
    const [values, indices] = emit.node('TopK', [x!.name, emit.int64([attrs.k as number])], { axis, largest: 1, sorted: 1 }, 2)
    return attrs.output === 'indices' ? indices! : values!
  },
  norm: (emit, attrs, [x], out) => {
    const axes = axesOf(attrs, x!.type.shape.length)
    return emit.reduce(attrs.ord === 1 ? 'ReduceL1' : 'ReduceL2', to(emit, x!, out.dtype), axes, attrs.keepdims === true)
  },
  softmax: softmaxLike('Softmax'),
  log_softmax: softmaxLike('LogSoftmax'),
  // an Identity the backward pass does not differentiate through (grad/backward.ts: NO_GRAD_KEY)
  detach: (emit, _attrs, [x]) => {
    const [out] = emit.node('Identity', [x!.name])
    const node: onnx.NodeProto = emit.nodes.at(-1)!
    node.metadataProps.push(create(onnx.StringStringEntryProtoSchema, { key: NO_GRAD_KEY, value: '1' }))
    return out!
  },
} satisfies Record<LoweredOpName, TensorLowering>

/** Every pure tensor op except `const` and `save`, which the compiler handles itself (graph input, output). */
export type LoweredOpName = Exclude<TensorOpName, 'const' | 'save'>
