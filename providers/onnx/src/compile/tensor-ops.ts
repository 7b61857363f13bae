/**
 * Lowerings of the pure tensor ops of Program v1 to ONNX nodes: one row per op (`satisfies Record<LoweredOpName, …>`:
 * a core op without a row fails `tsc`). Inputs arrive with their inferred types; each lowering casts to the dtype the
 * op table infers and returns the output value name. Lowerings emit through `LoweringEmitter`, so every ONNX op they
 * use has a row, with a VJP rule or no gradient, in the ONNX op table (onnx-ops.ts).
 */
import type { Attrs, DType, TensorOpName } from '@weft/core'
import { create } from '@bufbuild/protobuf'
import { onnx } from '../graph/onnx.js'
import type { LoweringEmitter, LowerableOnnxOp } from './onnx-ops.js'
import { NO_GRAD_KEY } from './no-grad.js'
import { lowerIndex } from './index-ops.js'

export interface ValueTypeLike { shape: readonly (number | string)[]; dtype: DType }
export interface Lowered { name: string; type: ValueTypeLike }
export type TensorLowering = (emit: LoweringEmitter, attrs: Attrs, inputs: Lowered[], out: ValueTypeLike) => string

const FLOATS: readonly DType[] = ['float64', 'float32', 'float16', 'bfloat16']
const INT_ORDER: readonly DType[] = ['bool', 'uint8', 'int8', 'int32', 'int64']

/** Common dtype for comparing/selecting (non-arithmetic promotion, as in the op table). */
export function commonDtype (dtypes: readonly DType[]): DType {
  for (const f of FLOATS) if (dtypes.includes(f)) return dtypes.includes('float16') && dtypes.includes('bfloat16') ? 'float32' : f
  let best = 0
  for (const d of dtypes) best = Math.max(best, INT_ORDER.indexOf(d))
  if (dtypes.includes('uint8') && dtypes.includes('int8') && best === 2) return 'int32'
  return INT_ORDER[best]!
}

const norm = (axis: number, rank: number): number => axis < 0 ? axis + rank : axis
const to = (emit: LoweringEmitter, x: Lowered, dtype: DType): string => emit.cast(x.name, x.type.dtype, dtype)

function binary (opType: LowerableOnnxOp): TensorLowering {
  return (emit, _attrs, [a, b], out) => emit.op(opType, [to(emit, a!, out.dtype), to(emit, b!, out.dtype)])
}

function compare (opType: LowerableOnnxOp, negate = false): TensorLowering {
  return (emit, _attrs, [a, b]) => {
    const dtype = commonDtype([a!.type.dtype, b!.type.dtype])
    const result = emit.op(opType, [to(emit, a!, dtype), to(emit, b!, dtype)])
    return negate ? emit.op('Not', [result]) : result
  }
}

function unary (opType: LowerableOnnxOp): TensorLowering {
  return (emit, _attrs, [x], out) => emit.op(opType, [to(emit, x!, out.dtype)])
}

function axesOf (attrs: Attrs, rank: number): number[] | null {
  const axes = attrs.axes
  if (axes === null || axes === undefined) return null
  return (axes as number[]).map(a => norm(a, rank))
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
  return (emit, attrs, [x], out) => emit.op(opType, [to(emit, x!, out.dtype)], { axis: norm((attrs.axis as number | undefined) ?? -1, x!.type.shape.length) })
}

export const TENSOR_LOWERINGS = {
  index: (emit, attrs, [x]) => lowerIndex(emit, x!.name, attrs.index as never),
  reshape: (emit, attrs, [x]) => emit.op('Reshape', [x!.name, emit.int64(attrs.shape as number[])], { allowzero: 1 }),
  transpose: (emit, attrs, [x]) => emit.op('Transpose', [x!.name], { perm: (attrs.perm as number[]).map(p => norm(p, x!.type.shape.length)) }),
  concat: (emit, attrs, inputs, out) => emit.op('Concat', inputs.map(x => to(emit, x, out.dtype)), { axis: norm(attrs.axis as number ?? 0, out.shape.length) }),
  stack: (emit, attrs, inputs, out) => {
    const axis = norm((attrs.axis as number | undefined) ?? 0, out.shape.length)
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
  sum: reduction('ReduceSum'),
  mean: reduction('ReduceMean'),
  max: reduction('ReduceMax'),
  min: reduction('ReduceMin'),
  argmax: (emit, attrs, [x]) => emit.op('ArgMax', [x!.type.dtype === 'bool' ? to(emit, x!, 'int32') : x!.name], {
    axis: norm((attrs.axis as number | undefined) ?? -1, x!.type.shape.length), keepdims: attrs.keepdims === true ? 1 : 0, select_last_index: 0,
  }),
  topk: (emit, attrs, [x]) => {
    const axis = norm((attrs.axis as number | undefined) ?? -1, x!.type.shape.length)
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
