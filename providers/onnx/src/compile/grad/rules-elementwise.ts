/**
 * The elementwise rows of the ONNX op table (compile/onnx-ops.ts): shape class, row-wise-ness and VJP rule of each
 * elementwise ONNX op (broadcasting binary ops sum the gradient back to each input's shape). The formulas are the
 * textbook derivatives; outputs `y` are reused where that saves work (exp, tanh, sigmoid).
 */
import { ONNX_DTYPE } from '../dtypes.js'
import type { OnnxOpRow, Vjp, VjpRule } from './types.js'
import { intAttr } from './dims.js'

/** Gradient of input `i` if needed: `make()` shaped like the output, summed back to the input's shape. */
function toInput (v: Vjp, i: number, make: () => string): string | null {
  return v.needs(i) ? v.b.unbroadcast(make(), v.x(i), v.y()) : null
}

/** Unary rule: dx = f(g, x, y). */
function unary (f: (v: Vjp, g: string) => string): VjpRule {
  return v => [v.needs(0) ? f(v, v.g()!) : null]
}

const one = (v: Vjp): string => v.b.scalar(1, v.b.dtype(v.y()))
const zero = (v: Vjp): string => v.b.scalar(0, v.b.dtype(v.y()))
/** Cast `x` to the output's dtype (Pow's exponent may have another). */
const asOut = (v: Vjp, x: string): string => v.b.dtype(x) === v.b.dtype(v.y()) ? x : v.b.op('Cast', [x], { to: ONNX_DTYPE[v.b.dtype(v.y())] })

/** Binary max/min: the winner takes the gradient; ties split it evenly (as PyTorch does). */
function minMax (win: 'Greater' | 'Less'): VjpRule {
  return (v) => {
    if (v.node.input.length !== 2) throw v.unsupported(`${v.node.opType} with ${v.node.input.length} inputs`)
    const { b } = v
    const g = v.g()!
    const dtype = b.dtype(v.y())
    const share = (first: string, second: string): string => b.op('Add', [
      b.op('Cast', [b.op(win, [first, second])], { to: ONNX_DTYPE[dtype] }),
      b.op('Mul', [b.op('Cast', [b.op('Equal', [first, second])], { to: ONNX_DTYPE[dtype] }), b.scalar(0.5, dtype)]),
    ])
    return [
      toInput(v, 0, () => b.op('Mul', [g, share(v.x(0), v.x(1))])),
      toInput(v, 1, () => b.op('Mul', [g, share(v.x(1), v.x(0))])),
    ]
  }
}

/** Clip(x, min?, max?): the gradient passes where min ≤ x ≤ max (PyTorch's clamp); the bounds get none. */
const clip: VjpRule = (v) => {
  if (!v.needs(0)) return [null, null, null]
  const { b } = v
  const x = v.x(0)
  const [min, max] = [v.node.input[1] ?? '', v.node.input[2] ?? '']
  const tests = [
    ...(min === '' ? [] : [b.op('GreaterOrEqual', [x, min])]),
    ...(max === '' ? [] : [b.op('LessOrEqual', [x, max])]),
  ]
  if (tests.length === 0) return [v.g()!, null, null]
  const inside = tests.length === 1 ? tests[0]! : b.op('And', tests)
  return [b.op('Where', [inside, v.g()!, zero(v)]), null, null]
}

const zeroGradient: VjpRule = v => v.node.input.map(() => null)

/** A same-shape elementwise op. */
const same = <V extends OnnxOpRow['vjp']>(vjp: V) => ({ shape: 'same', rowwise: 'elementwise', vjp }) as const
/** A broadcasting elementwise op. */
const bcast = <V extends OnnxOpRow['vjp']>(vjp: V) => ({ shape: 'broadcast', rowwise: 'elementwise', vjp }) as const
/** A comparison or logical op: bool out, no gradient. */
const test = (shape: 'same' | 'broadcast') => ({ shape, dtype: 'bool', rowwise: 'elementwise', vjp: 'no-gradient' }) as const

export const ELEMENTWISE_ONNX_OPS = {
  Identity: same(unary((_v, g) => g)),
  Dropout: { shape: 'same', rowwise: false, vjp: (v) => [v.needs(0) && v.g(0) !== null ? v.g(0) : null, null, null] },
  Neg: same(unary((v, g) => v.b.op('Neg', [g]))),
  Exp: same(unary((v, g) => v.b.op('Mul', [g, v.y()]))),
  Log: same(unary((v, g) => v.b.op('Div', [g, v.x(0)]))),
  Sqrt: same(unary((v, g) => v.b.op('Div', [v.b.op('Mul', [g, v.b.scalar(0.5, v.b.dtype(v.y()))]), v.y()]))),
  Reciprocal: same(unary((v, g) => v.b.op('Neg', [v.b.op('Mul', [g, v.b.op('Mul', [v.y(), v.y()])])]))),
  Tanh: same(unary((v, g) => v.b.op('Mul', [g, v.b.op('Sub', [one(v), v.b.op('Mul', [v.y(), v.y()])])]))),
  Sigmoid: same(unary((v, g) => v.b.op('Mul', [g, v.b.op('Mul', [v.y(), v.b.op('Sub', [one(v), v.y()])])]))),
  Erf: same(unary((v, g) => {
    const x = v.x(0)
    const bump = v.b.op('Exp', [v.b.op('Neg', [v.b.op('Mul', [x, x])])])
    return v.b.op('Mul', [g, v.b.op('Mul', [bump, v.b.scalar(2 / Math.sqrt(Math.PI), v.b.dtype(x))])])
  })),
  Relu: same(unary((v, g) => v.b.op('Where', [v.b.op('Greater', [v.x(0), zero(v)]), g, zero(v)]))),
  Abs: same(unary((v, g) => v.b.op('Mul', [g, v.b.op('Sign', [v.x(0)])]))),
  Sin: same(unary((v, g) => v.b.op('Mul', [g, v.b.op('Cos', [v.x(0)])]))),
  Cos: same(unary((v, g) => v.b.op('Neg', [v.b.op('Mul', [g, v.b.op('Sin', [v.x(0)])])]))),
  Cast: {
    shape: 'same',
    dtype: 'cast-to',
    rowwise: 'elementwise',
    vjp: unary((v, g) => {
      const from = v.info(v.x(0)).dtype
      if (from === null) throw v.unsupported('Cast from an unknown dtype')
      return v.b.dtype(v.y()) === from ? g : v.b.op('Cast', [g], { to: ONNX_DTYPE[from] })
    }),
  },
  Floor: same(zeroGradient),
  Ceil: same(zeroGradient),
  Round: same(zeroGradient),
  Sign: same(zeroGradient),
  // no rules yet: importers' activations (FastGelu is com.microsoft's)
  Gelu: same('none'),
  FastGelu: same('none'),
  Softplus: same('none'),
  Add: bcast(v => [toInput(v, 0, () => v.g()!), toInput(v, 1, () => v.g()!)]),
  Sub: bcast(v => [toInput(v, 0, () => v.g()!), toInput(v, 1, () => v.b.op('Neg', [v.g()!]))]),
  Mul: bcast(v => [toInput(v, 0, () => v.b.op('Mul', [v.g()!, v.x(1)])), toInput(v, 1, () => v.b.op('Mul', [v.g()!, v.x(0)]))]),
  Div: bcast(v => [
    toInput(v, 0, () => v.b.op('Div', [v.g()!, v.x(1)])),
    toInput(v, 1, () => v.b.op('Neg', [v.b.op('Mul', [v.g()!, v.b.op('Div', [v.y(), v.x(1)])])])),
  ]),
  Pow: bcast((v) => {
    const { b } = v
    const g = v.g()!
    const e = asOut(v, v.x(1))
    return [
      toInput(v, 0, () => b.op('Mul', [g, b.op('Mul', [e, b.op('Pow', [v.x(0), b.op('Sub', [e, one(v)])])])])),
      toInput(v, 1, () => {
        // y·ln(x), taken as 0 where y = 0 (PyTorch's convention: no NaN from 0^e)
        const grad = b.op('Mul', [g, b.op('Mul', [v.y(), b.op('Log', [v.x(0)])])])
        return b.op('Where', [b.op('Equal', [v.y(), zero(v)]), zero(v), grad])
      }),
    ]
  }),
  Where: {
    shape: 'broadcast',
    dtype: 'input1',
    rowwise: 'elementwise',
    vjp: v => [
      null,
      toInput(v, 1, () => v.b.op('Where', [v.x(0), v.g()!, zero(v)])),
      toInput(v, 2, () => v.b.op('Where', [v.x(0), zero(v), v.g()!])),
    ],
  },
  Max: bcast(minMax('Greater')),
  Min: bcast(minMax('Less')),
  Sum: bcast(v => v.node.input.map((_, i) => toInput(v, i, () => v.g()!))),
  Mean: bcast('none'),
  Equal: test('broadcast'),
  Less: test('broadcast'),
  LessOrEqual: test('broadcast'),
  Greater: test('broadcast'),
  GreaterOrEqual: test('broadcast'),
  And: test('broadcast'),
  Or: test('broadcast'),
  Xor: test('broadcast'),
  Not: test('same'),
  IsNaN: test('same'),
  IsInf: test('same'),
  Clip: same(clip),
  // the sum of the gradient over every output that includes x: a cumsum running the other way
  CumSum: {
    shape: 'same',
    rowwise: false,
    vjp: v => [v.needs(0) ? v.b.op('CumSum', [v.g()!, v.x(1)], { exclusive: intAttr(v.node, 'exclusive', 0), reverse: 1 - intAttr(v.node, 'reverse', 0) }) : null, null],
  },
} as const satisfies Record<string, OnnxOpRow>
