/** Elementwise ops: arithmetic, unary math and activations, clamp, comparisons, logical ops, where, cast. numpy broadcasting throughout. */
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

const add = binary('add', 'a + b.', arith, (x, y) => x + y, [
  { name: 'add-broadcast', attrs: {}, inputs: [[[1, 2, 3], [4, 5, 6]], [10, 20, 30]], output: [[11, 22, 33], [14, 25, 36]] },
  { name: 'add-int-float', attrs: {}, inputs: [[1, 2], [0.5, 0.25]], inputDtypes: ['int64', 'float32'], output: [1.5, 2.25] },
], ['elementwise', 'differentiable'])
const sub = binary('sub', 'a − b.', arith, (x, y) => x - y, [
  { name: 'sub-scalar', attrs: {}, inputs: [[5, 6], 1], output: [4, 5] },
], ['elementwise', 'differentiable'])
const mul = binary('mul', 'a × b (e.g. ablation with a mask, scaling).', arith, (x, y) => x * y, [
  { name: 'mul-column', attrs: {}, inputs: [[[1, 2], [3, 4]], [[2], [0]]], output: [[2, 4], [0, 0]] },
], ['elementwise', 'differentiable'])
const div = binary('div', 'True division a / b: integer inputs give float32.', (a, b) => floatOf(arith(a, b)), (x, y) => x / y, [
  { name: 'div-int', attrs: {}, inputs: [[1, 3], [2, 2]], inputDtypes: ['int64', 'int64'], output: [0.5, 1.5] },
], ['elementwise', 'differentiable'])
const pow = binary('pow', 'a raised to b.', arith, (x, y) => x ** y, [
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

const neg = unary('neg', '−x.', keepInt, x => -x, [{ name: 'neg', attrs: {}, inputs: [[1, -2]], output: [-1, 2] }])
const exp = unary('exp', 'eˣ (integers compute in float32).', floatOf, Math.exp, [{ name: 'exp', attrs: {}, inputs: [[0]], output: [1] }])
const log = unary('log', 'Natural logarithm (log 0 = −∞, negative → NaN).', floatOf, Math.log, [{ name: 'log', attrs: {}, inputs: [[1]], output: [0] }])
const sqrt = unary('sqrt', 'Square root.', floatOf, Math.sqrt, [{ name: 'sqrt', attrs: {}, inputs: [[4, 9]], output: [2, 3] }])
const abs = unary('abs', '|x|.', keepInt, Math.abs, [{ name: 'abs', attrs: {}, inputs: [[-3, 2]], output: [3, 2] }])
const tanh = unary('tanh', 'Hyperbolic tangent.', floatOf, Math.tanh, [{ name: 'tanh-zero', attrs: {}, inputs: [[0]], output: [0] }])
const relu = unary('relu', 'max(x, 0).', keepInt, x => x > 0 ? x : 0, [{ name: 'relu', attrs: {}, inputs: [[-1, 0, 2]], output: [0, 0, 2] }])
const sin = unary('sin', 'Sine (radians).', floatOf, Math.sin, [{ name: 'sin', attrs: {}, inputs: [[0, Math.PI / 2]], output: [0, 1] }])
const cos = unary('cos', 'Cosine (radians).', floatOf, Math.cos, [{ name: 'cos', attrs: {}, inputs: [[0, Math.PI]], output: [1, -1] }])
const sigmoid = unary('sigmoid', 'Logistic sigmoid 1 / (1 + e⁻ˣ).', floatOf, x => 1 / (1 + Math.exp(-x)), [
  { name: 'sigmoid', attrs: {}, inputs: [[0, 2]], output: [0.5, 0.8807970779778823] },
])
const erf = unary('erf', 'The Gauss error function (2/√π)∫₀ˣ e^(−t²) dt.', floatOf, erfOf, [
  { name: 'erf', attrs: {}, inputs: [[0, 0.5, -1]], output: [0, 0.5204998778130465, -0.8427007929497149] },
])
const silu = unary('silu', 'SiLU (swish): x · sigmoid(x), as in Llama-style MLPs.', floatOf, x => x / (1 + Math.exp(-x)), [
  { name: 'silu', attrs: {}, inputs: [[0, 1, -2]], output: [0, 0.7310585786300049, -0.23840584404423515] },
])

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)
const gelu: TensorOpDef = {
  eval: (attrs, inputs, outShape) => elementwise(attrs.approximate === 'tanh'
    ? x => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    : x => 0.5 * x * (1 + erfOf(x / Math.SQRT2)))(attrs, inputs, outShape),
  name: 'gelu',
  arity: 1,
  attrs: { approximate: { kind: 'enum', values: ['none', 'tanh'], default: 'none', doc: "'none' = exact x·Φ(x) with erf; 'tanh' = GPT-2's gelu_new" } },
  flags: ['elementwise', 'differentiable'],
  infer: (_attrs, [x]) => ({ shape: [...x!.shape], dtype: floatOf(x!.dtype) }),
  cost: (_attrs, [x]) => 8 * numelEstimate(x!.shape),
  doc: "GELU x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (PyTorch's `gelu`); `approximate: 'tanh'` gives 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).",
  examples: [
    { name: 'gelu-exact', attrs: {}, inputs: [[0, 1, -1]], output: [0, 0.8413447460685429, -0.15865525393145707] },
    { name: 'gelu-tanh', attrs: { approximate: 'tanh' }, inputs: [[1, -1]], output: [0.8411919906082768, -0.15880800939172324] },
  ],
}

const clamp: TensorOpDef = {
  eval: (attrs, inputs, outShape) => {
    const lo = (attrs.min ?? -Infinity) as number
    const hi = (attrs.max ?? Infinity) as number
    return elementwise(x => Number.isNaN(x) ? x : Math.min(Math.max(x, lo), hi))(attrs, inputs, outShape)
  },
  name: 'clamp',
  arity: 1,
  attrs: {
    min: { kind: 'number', doc: 'lower bound (absent = none)' },
    max: { kind: 'number', doc: 'upper bound (absent = none)' },
  },
  flags: ['elementwise', 'differentiable'],
  infer: (attrs, [x]) => {
    if (attrs.min === undefined && attrs.max === undefined) fail('clamp', 'give min, max or both')
    if (typeof attrs.min === 'number' && typeof attrs.max === 'number' && attrs.min > attrs.max) fail('clamp', `min ${attrs.min} > max ${attrs.max}`)
    if (x!.dtype === 'bool') fail('clamp', 'cannot clamp bool values')
    return { shape: [...x!.shape], dtype: x!.dtype }
  },
  cost: (_attrs, [x]) => 2 * numelEstimate(x!.shape),
  doc: "min(max(x, min), max) (PyTorch's `clamp`); the gradient passes where min ≤ x ≤ max. The dtype is kept (bounds on integers compare as numbers, the result is truncated toward zero).",
  examples: [
    { name: 'clamp-both', attrs: { min: -1, max: 1 }, inputs: [[-3, 0.5, 2]], output: [-1, 0.5, 1] },
    { name: 'clamp-min', attrs: { min: 0 }, inputs: [[-3, 2]], output: [0, 2] },
  ],
}

/**
 * erf in float64 (|error| < 1e-13): the Maclaurin series below |x| = 3, the continued fraction of erfc above
 * (modified Lentz), both converging quickly in their ranges.
 */
function erfOf (x: number): number {
  if (Number.isNaN(x)) return x
  const ax = Math.abs(x)
  if (ax < 3) {
    let term = x
    let sum = x
    for (let n = 1; n < 200; n++) {
      term *= -x * x / n
      const next = term / (2 * n + 1)
      sum += next
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break
    }
    return 2 / Math.sqrt(Math.PI) * sum
  }
  if (ax > 6) return Math.sign(x)
  // erfc(x) = e^(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …))))
  const tiny = 1e-300
  let f = ax
  let c = ax
  let d = 0
  for (let n = 1; n < 300; n++) {
    const a = n / 2
    d = ax + a * d
    d = d === 0 ? tiny : d
    c = ax + a / c
    c = c === 0 ? tiny : c
    d = 1 / d
    const delta = c * d
    f *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f
  return Math.sign(x) * (1 - erfc)
}

function compare (name: string, symbol: string, fn: (a: number, b: number) => boolean, output: boolean[]): TensorOpDef {
  return binary(name, `a ${symbol} b, elementwise; result bool.`, () => 'bool', (x, y) => fn(x, y) ? 1 : 0, [
    { name: `${name}-broadcast`, attrs: {}, inputs: [[1, 2, 3], 2], output, outputDtype: 'bool' },
  ], ['compare'])
}

const eq = compare('eq', '=', (x, y) => x === y, [false, true, false])
const ne = compare('ne', '≠', (x, y) => x !== y, [true, false, true])
const lt = compare('lt', '<', (x, y) => x < y, [true, false, false])
const le = compare('le', '≤', (x, y) => x <= y, [true, true, false])
const gt = compare('gt', '>', (x, y) => x > y, [false, false, true])
const ge = compare('ge', '≥', (x, y) => x >= y, [false, true, true])

function logical (name: string, doc: string, arity: 1 | 2, fn: (a: boolean, b: boolean) => boolean, example: OpExample): TensorOpDef {
  return {
    name,
    eval: elementwise((x, y) => fn(x !== 0, y !== 0) ? 1 : 0),
    arity,
    attrs: {},
    flags: ['elementwise'],
    infer: (_attrs, inputs) => ({ shape: broadcastShapes(name, inputs.map(t => t.shape)), dtype: 'bool' }),
    cost: (_attrs, inputs) => numelEstimate(broadcastShapes(name, inputs.map(t => t.shape))),
    doc: `${doc} Inputs of any dtype count nonzero as true; result bool.`,
    examples: [example],
  }
}

const logicalAnd = logical('logical_and', 'a and b, elementwise with broadcasting.', 2, (a, b) => a && b,
  { name: 'logical_and', attrs: {}, inputs: [[true, true, false], [true, false, false]], output: [true, false, false], outputDtype: 'bool' })
const logicalOr = logical('logical_or', 'a or b, elementwise with broadcasting.', 2, (a, b) => a || b,
  { name: 'logical_or', attrs: {}, inputs: [[true, false, false], false], output: [true, false, false], outputDtype: 'bool' })
const logicalXor = logical('logical_xor', 'a xor b (exactly one true), elementwise with broadcasting.', 2, (a, b) => a !== b,
  { name: 'logical_xor', attrs: {}, inputs: [[true, true, false], [true, false, false]], output: [false, true, false], outputDtype: 'bool' })
const logicalNot = logical('logical_not', 'not x, elementwise.', 1, a => !a,
  { name: 'logical_not', attrs: {}, inputs: [[1, 0, -2]], inputDtypes: ['int64'], output: [false, true, false], outputDtype: 'bool' })

const where: TensorOpDef = {
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

const cast: TensorOpDef = {
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
  sin, cos, sigmoid, erf, gelu, silu, clamp,
  logical_and: logicalAnd, logical_or: logicalOr, logical_xor: logicalXor, logical_not: logicalNot,
} as const

export { DTYPES }
