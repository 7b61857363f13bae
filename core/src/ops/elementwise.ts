/** Elementwise ops: arithmetic, unary math, comparisons, where, cast. numpy broadcasting throughout. */
import type { DType } from '../tensor/tensor.js'
import type { OpDef, OpExample, TensorOpDef, ValueType } from './types.js'
import { broadcastShapes, fail, floatOf, numelEstimate, promote } from './rules.js'
import { elementwise } from '../reference/kernels.js'

const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int8', 'uint8', 'bool']

function binary (name: string, doc: string, dtype: (a: DType, b: DType) => DType, fn: (a: number, b: number) => number, examples: OpExample[], flags: OpDef['flags']): TensorOpDef {
  return {
    name,
    eval: elementwise(fn),
    arity: 2,
    attrs: {},
    flags,
    infer: (_attrs, [a, b]) => ({ shape: broadcastShapes(name, [a!.shape, b!.shape]), dtype: dtype(a!.dtype, b!.dtype) }),
    cost: (_attrs, inputs) => numelEstimate(broadcastShapes(name, inputs.map(t => t.shape))),
    doc,
    examples,
  }
}

const arith = (a: DType, b: DType): DType => promote([a, b], true)

export const add = binary('add', 'a + b.', arith, (x, y) => x + y, [
  { name: 'add-broadcast', attrs: {}, inputs: [[[1, 2, 3], [4, 5, 6]], [10, 20, 30]], output: [[11, 22, 33], [14, 25, 36]] },
  { name: 'add-int-float', attrs: {}, inputs: [[1, 2], [0.5, 0.25]], inputDtypes: ['int64', 'float32'], output: [1.5, 2.25] },
], ['elementwise', 'differentiable'])
export const sub = binary('sub', 'a − b.', arith, (x, y) => x - y, [
  { name: 'sub-scalar', attrs: {}, inputs: [[5, 6], 1], output: [4, 5] },
], ['elementwise', 'differentiable'])
export const mul = binary('mul', 'a × b (e.g. ablation with a mask, scaling).', arith, (x, y) => x * y, [
  { name: 'mul-column', attrs: {}, inputs: [[[1, 2], [3, 4]], [[2], [0]]], output: [[2, 4], [0, 0]] },
], ['elementwise', 'differentiable'])
export const div = binary('div', 'True division a / b: integer inputs give float32.', (a, b) => floatOf(arith(a, b)), (x, y) => x / y, [
  { name: 'div-int', attrs: {}, inputs: [[1, 3], [2, 2]], inputDtypes: ['int64', 'int64'], output: [0.5, 1.5] },
], ['elementwise', 'differentiable'])
export const pow = binary('pow', 'a raised to b.', arith, (x, y) => x ** y, [
  { name: 'pow-square', attrs: {}, inputs: [[1, 2, 3], 2], output: [1, 4, 9] },
], ['elementwise', 'differentiable'])

function unary (name: string, doc: string, dtype: (x: DType) => DType, fn: (x: number) => number, examples: OpExample[]): TensorOpDef {
  return {
    name,
    eval: elementwise(fn),
    arity: 1,
    attrs: {},
    flags: ['elementwise', 'differentiable'],
    infer: (_attrs, [x]) => ({ shape: [...x!.shape], dtype: dtype(x!.dtype) }),
    cost: (_attrs, [x]) => numelEstimate(x!.shape),
    doc,
    examples,
  }
}

const keepInt = (x: DType): DType => x === 'bool' ? 'int64' : x

export const neg = unary('neg', '−x.', keepInt, x => -x, [{ name: 'neg', attrs: {}, inputs: [[1, -2]], output: [-1, 2] }])
export const exp = unary('exp', 'eˣ (integers compute in float32).', floatOf, Math.exp, [{ name: 'exp', attrs: {}, inputs: [[0]], output: [1] }])
export const log = unary('log', 'Natural logarithm (log 0 = −∞, negative → NaN).', floatOf, Math.log, [{ name: 'log', attrs: {}, inputs: [[1]], output: [0] }])
export const sqrt = unary('sqrt', 'Square root.', floatOf, Math.sqrt, [{ name: 'sqrt', attrs: {}, inputs: [[4, 9]], output: [2, 3] }])
export const abs = unary('abs', '|x|.', keepInt, Math.abs, [{ name: 'abs', attrs: {}, inputs: [[-3, 2]], output: [3, 2] }])
export const tanh = unary('tanh', 'Hyperbolic tangent.', floatOf, Math.tanh, [{ name: 'tanh-zero', attrs: {}, inputs: [[0]], output: [0] }])
export const relu = unary('relu', 'max(x, 0).', keepInt, x => x > 0 ? x : 0, [{ name: 'relu', attrs: {}, inputs: [[-1, 0, 2]], output: [0, 0, 2] }])

function compare (name: string, symbol: string, fn: (a: number, b: number) => boolean, output: boolean[]): TensorOpDef {
  return binary(name, `a ${symbol} b, elementwise; result bool.`, () => 'bool', (x, y) => fn(x, y) ? 1 : 0, [
    { name: `${name}-broadcast`, attrs: {}, inputs: [[1, 2, 3], 2], output, outputDtype: 'bool' },
  ], ['compare'])
}

export const eq = compare('eq', '=', (x, y) => x === y, [false, true, false])
export const ne = compare('ne', '≠', (x, y) => x !== y, [true, false, true])
export const lt = compare('lt', '<', (x, y) => x < y, [true, false, false])
export const le = compare('le', '≤', (x, y) => x <= y, [true, true, false])
export const gt = compare('gt', '>', (x, y) => x > y, [false, false, true])
export const ge = compare('ge', '≥', (x, y) => x >= y, [false, true, true])

export const where: TensorOpDef = {
  eval: elementwise((c, x, y) => c !== 0 ? x : y),
  name: 'where',
  arity: 3,
  attrs: {},
  flags: ['elementwise', 'differentiable'],
  infer: (_attrs, [cond, a, b]) => {
    if (cond!.dtype !== 'bool') fail('where', `condition must be bool, got ${cond!.dtype}`)
    return { shape: broadcastShapes('where', [cond!.shape, a!.shape, b!.shape]), dtype: promote([a!.dtype, b!.dtype], false) }
  },
  cost: (_attrs, inputs) => numelEstimate(broadcastShapes('where', inputs.map(t => t.shape))),
  doc: 'cond ? a : b, elementwise with broadcasting over all three.',
  examples: [{ name: 'where-mask', attrs: {}, inputs: [[true, false], [1, 2], 0], output: [1, 0] }],
}

export const cast: TensorOpDef = {
  eval: elementwise(x => x),
  name: 'cast',
  arity: 1,
  attrs: { dtype: { kind: 'dtype', required: true, doc: `target dtype: ${DTYPES.join(', ')}` } },
  flags: ['elementwise', 'differentiable'],
  infer: (attrs, [x]): ValueType => ({ shape: [...x!.shape], dtype: attrs.dtype as DType }),
  cost: (_attrs, [x]) => numelEstimate(x!.shape),
  doc: 'Converts the dtype. Floats to integers truncate toward zero; anything nonzero to bool is true.',
  examples: [{ name: 'cast-truncate', attrs: { dtype: 'int64' }, inputs: [[1.7, -1.7]], output: [1, -1], outputDtype: 'int64' }],
}

export const ELEMENTWISE_OPS = {
  add, sub, mul, div, pow, neg, exp, log, sqrt, abs, tanh, relu,
  eq, ne, lt, le, gt, ge, where, cast,
} as const

export { DTYPES }
