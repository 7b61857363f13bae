/**
 * The linear-algebra rows of the ONNX op table (compile/onnx-ops.ts), with their VJP rules: MatMul (numpy batching
 * and 1-D operands), Gemm, Softmax/LogSoftmax, LayerNormalization (statistics recomputed from the input), Reduce*.
 */
import { ONNX_DTYPE } from '../dtypes.js'
import { intAttr, type Dim } from './dims.js'
import type { OnnxOpRow, Vjp, VjpRule } from './types.js'

const swapLast = (rank: number): number[] => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2]

function matmul (v: Vjp): (string | null)[] {
  const { b } = v
  const [a, w] = [v.x(0), v.x(1)]
  const g = v.g()!
  const as = v.info(a).shape
  const ws = v.info(w).shape
  const ys = v.info(v.y()).shape
  if (as === null || ws === null || ys === null) throw v.unsupported('MatMul with operands of unknown rank')
  const [ra, rw] = [as.length, ws.length]
  if (rw === 1) {
    const g1 = b.op('Unsqueeze', [g, b.int64([-1])])
    return [
      v.needs(0) ? b.op('Mul', [g1, w]) : null,
      v.needs(1) ? b.reduceSum(b.op('Mul', [a, g1]), Array.from({ length: ra - 1 }, (_, i) => i), false) : null,
    ]
  }
  if (ra === 1) {
    const g1 = b.op('Unsqueeze', [g, b.int64([-2])])
    const outer = b.shapes.define(b.op('Mul', [b.op('Unsqueeze', [a, b.int64([-1])]), g1]), { dtype: b.dtype(g), shape: [...ys.slice(0, -1), as[0]!, ys.at(-1)!] })
    return [
      v.needs(0) ? b.reduceSum(b.op('Mul', [g1, w]), [...Array.from({ length: rw - 2 }, (_, i) => i), rw - 1], false) : null,
      v.needs(1) ? b.unbroadcast(outer, w, outer) : null,
    ]
  }
  const batch = ys.slice(0, -2)
  let da: string | null = null
  if (v.needs(0)) {
    const raw = b.shapes.define(b.op('MatMul', [g, b.op('Transpose', [w], { perm: swapLast(rw) })]), { dtype: b.dtype(g), shape: [...batch, ...as.slice(-2)] })
    da = b.unbroadcast(raw, a, raw)
  }
  let dw: string | null = null
  if (v.needs(1)) {
    if (rw === 2 && ra > 2) {
      // weights shared by every row: one [K, rows]·[rows, N] product instead of a batched one and a sum
      const k = as.at(-1)!
      const n = ys.at(-1)!
      const flat = (x: string, d: Dim, like: string): string => b.op('Reshape', [x, typeof d === 'number' ? b.int64([-1, d]) : b.op('Concat', [b.int64([-1]), b.dim(like, -1)], { axis: 0 })])
      dw = b.op('MatMul', [b.op('Transpose', [flat(a, k, a)], { perm: [1, 0] }), flat(g, n, v.y())])
    } else {
      const raw = b.shapes.define(b.op('MatMul', [b.op('Transpose', [a], { perm: swapLast(ra) }), g]), { dtype: b.dtype(g), shape: [...batch, ...ws.slice(-2)] })
      dw = b.unbroadcast(raw, w, raw)
    }
  }
  return [da, dw]
}

function gemm (v: Vjp): (string | null)[] {
  const { b } = v
  const g0 = v.g()!
  const dtype = b.dtype(v.y())
  const alpha = Number(v.node.attribute.find(a => a.name === 'alpha')?.f ?? 1)
  const beta = Number(v.node.attribute.find(a => a.name === 'beta')?.f ?? 1)
  const [ta, tb] = [intAttr(v.node, 'transA', 0) === 1, intAttr(v.node, 'transB', 0) === 1]
  const g = alpha === 1 ? g0 : b.op('Mul', [g0, b.scalar(alpha, dtype)])
  const t = (x: string): string => b.op('Transpose', [x], { perm: [1, 0] })
  let da: string | null = null
  if (v.needs(0)) { const d = b.op('MatMul', [g, tb ? v.x(1) : t(v.x(1))]); da = ta ? t(d) : d }
  let db: string | null = null
  if (v.needs(1)) { const d = b.op('MatMul', [ta ? v.x(0) : t(v.x(0)), g]); db = tb ? t(d) : d }
  const dc = v.node.input.length > 2 && v.needs(2)
    ? b.unbroadcast(beta === 1 ? g0 : b.op('Mul', [g0, b.scalar(beta, dtype)]), v.x(2), v.y()) : null
  return [da, db, dc]
}

function softmaxAxis (v: Vjp): number {
  const axis = intAttr(v.node, 'axis', -1)
  const rank = v.info(v.x(0)).shape?.length
  if (v.b.emit.opset < 13 && !(axis === -1 || axis === (rank ?? 0) - 1)) throw v.unsupported('opset < 13 Softmax over a non-last axis')
  return axis
}

function layerNorm (v: Vjp): (string | null)[] {
  if (v.g(1) !== null || v.g(2) !== null) throw v.unsupported('gradients of LayerNormalization statistics')
  const { b } = v
  const x = v.x(0)
  const g = v.g()!
  const dtype = b.dtype(x)
  const rank = v.info(x).shape?.length
  const axis = intAttr(v.node, 'axis', -1)
  if (axis >= 0 && rank === undefined) throw v.unsupported('LayerNormalization with a positive axis on an input of unknown rank')
  const first = axis < 0 ? axis : axis - rank!
  const axes = Array.from({ length: -first }, (_, i) => first + i)
  const eps = Number(v.node.attribute.find(a => a.name === 'epsilon')?.f ?? 1e-5)
  const mean = (t: string): string => b.emit.reduce('ReduceMean', t, axes, true)
  const centred = b.op('Sub', [x, mean(x)])
  const rstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [centred, centred])), b.scalar(eps, dtype)])])])
  const xhat = b.op('Mul', [centred, rstd])
  const scale = v.x(1)
  let dx: string | null = null
  if (v.needs(0)) {
    const dxhat = b.op('Mul', [g, scale])
    const inner = b.op('Sub', [b.op('Sub', [dxhat, mean(dxhat)]), b.op('Mul', [xhat, mean(b.op('Mul', [dxhat, xhat]))])])
    dx = b.op('Mul', [rstd, inner])
  }
  return [
    dx,
    v.needs(1) ? b.unbroadcast(b.op('Mul', [g, xhat]), scale, v.y()) : null,
    v.node.input.length > 2 && v.needs(2) ? b.unbroadcast(g, v.x(2), v.y()) : null,
  ]
}

/** A Reduce* rule from `local(v, gKept, yKept)`: the gradient with the reduced dims kept as size 1. */
function reduce (local: (v: Vjp, g: string, y: string, axes: number[] | null) => string): VjpRule {
  return (v) => {
    if (!v.needs(0)) return [null]
    const { b } = v
    const listed = b.shapes.axesOf(v.node)
    if (listed === undefined && v.node.input[1] !== undefined && v.node.input[1] !== '') throw v.unsupported(`${v.node.opType} with axes computed at run time`)
    if (listed !== undefined && listed.length === 0 && intAttr(v.node, 'noop_with_empty_axes', 0) === 1) return [v.g()!]
    const axes = listed === undefined || listed.length === 0 ? null : listed
    const keep = intAttr(v.node, 'keepdims', 1) === 1
    const kept = (t: string): string => keep || axes === null ? t : b.op('Unsqueeze', [t, b.int64(axes)])
    return [local(v, kept(v.g()!), kept(v.y()), axes)]
  }
}

/** Max/min: the gradient goes to the extreme elements, split evenly between ties. */
const extremum = reduce((v, g, y, axes) => {
  const { b } = v
  const mask = cast(v, b.op('Equal', [v.x(0), y]))
  const ties = axes === null ? b.op('ReduceSum', [mask], { keepdims: 1 }) : b.reduceSum(mask, axes, true)
  return b.op('Div', [b.op('Mul', [mask, g]), ties])
})

/** The subscripts of an Einsum node, when in the subset the rule handles (explicit output, a-z, no repeats). */
export function einsumTerms (equation: string): { inputs: string[]; output: string } | null {
  const m = /^([a-z,]*)->([a-z]*)$/.exec(equation.replace(/\s+/g, ''))
  if (m === null) return null
  const inputs = m[1]!.split(',')
  return [...inputs, m[2]!].every(t => new Set(t).size === t.length) ? { inputs, output: m[2]! } : null
}

/**
 * Einsum: the gradient of operand i is the einsum of the output gradient with the other operands, onto operand i's
 * letters; letters only operand i has (summed inside it) are broadcast back.
 */
function einsum (v: Vjp): (string | null)[] {
  const { b } = v
  const raw = v.node.attribute.find(a => a.name === 'equation')?.s
  const terms = einsumTerms(raw === undefined ? '' : new TextDecoder().decode(raw))
  if (terms === null) throw v.unsupported('Einsum outside the subset (explicit output, letters a-z, no ellipsis, no repeated letter)')
  const g = v.g()!
  return terms.inputs.map((own, i) => {
    if (!v.needs(i)) return null
    const subs: string[] = []
    const ins: string[] = []
    if (terms.output !== '') { subs.push(terms.output); ins.push(g) }
    terms.inputs.forEach((t, k) => { if (k !== i) { subs.push(t); ins.push(v.x(k)) } })
    const known = new Set(subs.join(''))
    const keep = [...own].filter(l => known.has(l)).join('')
    let grad = ins.length === 0 ? g : b.op('Einsum', ins, { equation: `${subs.join(',')}->${keep}` })
    if (terms.output === '' && ins.length > 0) grad = b.op('Mul', [grad, g])
    const missing = [...own].flatMap((l, d) => known.has(l) ? [] : [d])
    return missing.length === 0 ? grad : b.op('Expand', [b.op('Unsqueeze', [grad, b.int64(missing)]), b.shape(v.x(i))])
  })
}

function cast (v: Vjp, x: string): string { return v.b.op('Cast', [x], { to: ONNX_DTYPE[v.b.dtype(v.x(0))] }) }

/** A row-wise-on-the-last-axis op with a rule. */
const lastAxis = <V extends OnnxOpRow['vjp']>(shape: 'same' | 'reduce', vjp: V) => ({ shape, rowwise: 'last-axis', vjp }) as const

export const LINALG_ONNX_OPS = {
  MatMul: { shape: 'own', rowwise: 'weights', vjp: matmul },
  Gemm: { shape: 'own', rowwise: false, vjp: gemm },
  Einsum: { shape: 'own', rowwise: false, vjp: einsum },
  Softmax: lastAxis('same', (v) => {
    const { b } = v
    const gy = b.op('Mul', [v.g()!, v.y()])
    return [b.op('Mul', [v.y(), b.op('Sub', [v.g()!, b.reduceSum(gy, [softmaxAxis(v)], true)])])]
  }),
  LogSoftmax: lastAxis('same', (v) => {
    const { b } = v
    return [b.op('Sub', [v.g()!, b.op('Mul', [b.op('Exp', [v.y()]), b.reduceSum(v.g()!, [softmaxAxis(v)], true)])])]
  }),
  LayerNormalization: lastAxis('same', layerNorm),
  ReduceSum: lastAxis('reduce', reduce((v, g) => v.b.op('Expand', [g, v.b.shape(v.x(0))]))),
  ReduceMean: lastAxis('reduce', reduce((v, g, _y, axes) => {
    const { b } = v
    const xs = v.info(v.x(0)).shape
    const reduced = xs === null ? null : axes === null ? xs : axes.map(a => xs.at(a))
    const count = reduced !== null && reduced.every(d => typeof d === 'number')
      ? b.scalar((reduced as number[]).reduce((p, d) => p * d, 1), b.dtype(v.x(0)))
      : b.op('Div', [cast(v, b.op('Size', [v.x(0)])), cast(v, b.op('Size', [v.y()]))])
    return b.op('Div', [b.op('Expand', [g, b.shape(v.x(0))]), count])
  })),
  ReduceMax: lastAxis('reduce', extremum),
  ReduceMin: lastAxis('reduce', extremum),
  ReduceL1: lastAxis('reduce', reduce((v, g) => v.b.op('Mul', [g, v.b.op('Sign', [v.x(0)])]))),
  ReduceL2: lastAxis('reduce', reduce((v, g, y) => {
    const { b } = v
    const zero = b.scalar(0, b.dtype(v.x(0)))
    return b.op('Mul', [g, b.op('Where', [b.op('Equal', [y, zero]), zero, b.op('Div', [v.x(0), y])])])
  })),
  ReduceSumSquare: lastAxis('reduce', reduce((v, g) => v.b.op('Mul', [g, v.b.op('Mul', [v.x(0), v.b.scalar(2, v.b.dtype(v.x(0)))])]))),
  ReduceLogSumExp: lastAxis('reduce', reduce((v, g, y) => v.b.op('Mul', [g, v.b.op('Exp', [v.b.op('Sub', [v.x(0), y])])]))),
  ReduceProd: lastAxis('reduce', 'none'),
  ArgMax: { shape: 'reduce', dtype: 'int64', rowwise: false, vjp: 'no-gradient' },
  ArgMin: { shape: 'reduce', dtype: 'int64', rowwise: false, vjp: 'no-gradient' },
} as const satisfies Record<string, OnnxOpRow>
