/** Linear algebra, reductions, scans and normalisations: matmul, einsum, sum/mean/max/min, argmax, topk, norm, cumsum, softmax. */
import type { Attrs } from '../ir/program.js'
import type { DType, Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import type { Dim, Kernel, OpDef, TensorOpDef, ValueType } from './types.js'
import { alongAxis, reduce } from '../reference/kernels.js'
import { broadcastMap, strides, values } from '../reference/views.js'
import { attr, isFloat, broadcastShapes, expectRank, fail, floatOf, fmtShape, normAxes, normAxis, numelEstimate, promote, reducedShape } from './rules.js'

function matmulShape (a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) fail('matmul', 'inputs must have rank ≥ 1')
  const a2 = a.length === 1 ? [1, a[0]!] : a
  const b2 = b.length === 1 ? [b[0]!, 1] : b
  const k1 = a2.at(-1)!
  const k2 = b2.at(-2)!
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) fail('matmul', `inner dims differ: ${fmtShape(a)} @ ${fmtShape(b)}`)
  const batch = broadcastShapes('matmul', [a2.slice(0, -2), b2.slice(0, -2)])
  const out: Dim[] = [...batch]
  if (a.length > 1) out.push(a2.at(-2)!)
  if (b.length > 1) out.push(b2.at(-1)!)
  return out
}

const matmul: TensorOpDef = {
  eval: matmulKernel,
  name: 'matmul',
  arity: 2,
  attrs: {},
  flags: ['linalg', 'differentiable'],
  infer: (_attrs, [a, b]) => ({ shape: matmulShape(a!.shape, b!.shape), dtype: promote([a!.dtype, b!.dtype], true) }),
  cost: (_attrs, [a, b]) => 2 * numelEstimate(matmulShape(a!.shape, b!.shape)) * numelEstimate([a!.shape.at(-1)!]),
  doc: 'numpy matmul: 1-D operands are promoted to matrices and the added dim removed; batch dims broadcast.',
  examples: [
    { name: 'matmul-2d', attrs: {}, inputs: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]], output: [[19, 22], [43, 50]] },
    { name: 'matmul-vector', attrs: {}, inputs: [[[1, 2], [3, 4]], [1, 1]], output: [3, 7] },
  ],
}

const reduceAttrs = {
  axes: { kind: 'axes', default: null, doc: 'axes to reduce; null = all' },
  keepdims: { kind: 'bool', default: false, doc: 'keep reduced dims as size 1' },
} as const

function reduction (name: string, doc: string, dtype: (x: DType) => DType, kernel: Kernel, examples: OpDef['examples']): TensorOpDef {
  return {
    name,
    eval: kernel,
    arity: 1,
    attrs: reduceAttrs,
    flags: ['reduction', 'differentiable'],
    infer: (attrs, [x]) => {
      const axes = normAxes(name, attrs.axes, x!.shape.length)
      return { shape: reducedShape(x!.shape, axes, attr(attrs, 'keepdims', false)), dtype: dtype(x!.dtype) }
    },
    cost: (_attrs, [x]) => numelEstimate(x!.shape),
    doc,
    examples,
  }
}

const sum = reduction('sum', 'Sum over axes (bool and integers sum in int64).', d => isFloat(d) ? d : 'int64', reduce(0, (acc, x) => acc + x), [
  { name: 'sum-axis', attrs: { axes: [1] }, inputs: [[[1, 2, 3], [4, 5, 6]]], output: [6, 15] },
  { name: 'sum-all-keepdims', attrs: { axes: null, keepdims: true }, inputs: [[[1, 2], [3, 4]]], output: [[10]] },
])
const mean = reduction('mean', 'Arithmetic mean over axes (integers give float32).', floatOf, reduce(0, (acc, x) => acc + x, (acc, count) => acc / count), [
  { name: 'mean-last', attrs: { axes: [-1] }, inputs: [[[1, 2], [3, 5]]], output: [1.5, 4] },
])
const max = reduction('max', 'Maximum over axes.', d => d, reduce(-Infinity, (acc, x) => Number.isNaN(x) || x > acc ? x : acc), [
  { name: 'max-axis0', attrs: { axes: [0] }, inputs: [[[1, 5], [3, 2]]], output: [3, 5] },
])
const min = reduction('min', 'Minimum over axes.', d => d, reduce(Infinity, (acc, x) => Number.isNaN(x) || x < acc ? x : acc), [
  { name: 'min-all', attrs: {}, inputs: [[[1, 5], [3, -2]]], output: -2 },
])

const argmax: TensorOpDef = {
  eval: (attrs, [x]) => alongAxis(x!, attrs.axis, line => [topkLine(1, true)(line)[0]!], 1),
  name: 'argmax',
  arity: 1,
  attrs: {
    axis: { kind: 'int', default: -1, doc: 'axis to search' },
    keepdims: { kind: 'bool', default: false, doc: 'keep the axis as size 1' },
  },
  flags: ['reduction'],
  infer: (attrs, [x]) => {
    expectRank('argmax', x!, 1)
    const axis = normAxis('argmax', attr(attrs, 'axis', -1), x!.shape.length)
    return { shape: reducedShape(x!.shape, [axis], attr(attrs, 'keepdims', false)), dtype: 'int64' }
  },
  cost: (_attrs, [x]) => numelEstimate(x!.shape),
  doc: 'Index of the largest value along an axis (first one on ties), int64.',
  examples: [{ name: 'argmax-tie', attrs: { axis: -1 }, inputs: [[[1, 3, 3], [7, 0, 2]]], output: [1, 0], outputDtype: 'int64' }],
}

const topk: TensorOpDef = {
  eval: (attrs, [x]) => alongAxis(x!, attrs.axis, topkLine(attrs.k as number, attrs.output === 'indices'), attrs.k as number),
  name: 'topk',
  arity: 1,
  attrs: {
    k: { kind: 'int', required: true, doc: 'how many' },
    axis: { kind: 'int', default: -1, doc: 'axis to search' },
    output: { kind: 'enum', values: ['values', 'indices'], default: 'values', doc: 'which result to return' },
  },
  flags: ['reduction', 'differentiable'],
  infer: (attrs, [x]) => {
    expectRank('topk', x!, 1)
    const axis = normAxis('topk', attr(attrs, 'axis', -1), x!.shape.length)
    const k = attrs.k as number
    const size = x!.shape[axis]!
    if (k < 1 || (typeof size === 'number' && k > size)) fail('topk', `k=${k} out of range for dim ${axis} of size ${size}`)
    const shape = [...x!.shape]
    shape[axis] = k
    return { shape, dtype: attr<string>(attrs, 'output', 'values') === 'indices' ? 'int64' : x!.dtype }
  },
  cost: (attrs, [x]) => numelEstimate(x!.shape) * Math.max(1, Math.log2(Number(attrs.k) + 1)),
  doc: 'The k largest values (or their int64 indices) along an axis, largest first; ties keep the lower index first.',
  examples: [
    { name: 'topk-values', attrs: { k: 2 }, inputs: [[1, 4, 2, 4]], output: [4, 4] },
    { name: 'topk-indices', attrs: { k: 2, output: 'indices' }, inputs: [[1, 4, 2, 4]], output: [1, 3], outputDtype: 'int64' },
  ],
}

const norm: TensorOpDef = {
  eval: (attrs, inputs, outShape) => (attrs.ord === 1
    ? reduce(0, (acc, x) => acc + Math.abs(x))
    : reduce(0, (acc, x) => acc + x * x, acc => Math.sqrt(acc)))(attrs, inputs, outShape),
  name: 'norm',
  arity: 1,
  attrs: { ...reduceAttrs, ord: { kind: 'enum', values: [1, 2], default: 2, doc: '1 = sum of |x|, 2 = Euclidean' } },
  flags: ['reduction', 'differentiable'],
  infer: (attrs, [x]): ValueType => {
    const axes = normAxes('norm', attrs.axes, x!.shape.length)
    return { shape: reducedShape(x!.shape, axes, attr(attrs, 'keepdims', false)), dtype: floatOf(x!.dtype) }
  },
  cost: (_attrs, [x]) => 2 * numelEstimate(x!.shape),
  doc: 'Vector norm over axes (null = all).',
  examples: [{ name: 'norm-l2', attrs: { axes: [-1] }, inputs: [[[3, 4], [0, 1]]], output: [5, 1] }],
}

function softmaxLike (name: string, doc: string, line: (values: number[]) => number[], examples: OpDef['examples']): TensorOpDef {
  return {
    name,
    eval: (attrs, [x]) => alongAxis(x!, attrs.axis, line),
    arity: 1,
    attrs: { axis: { kind: 'int', default: -1, doc: 'axis to normalise' } },
    flags: ['nn', 'differentiable'],
    infer: (attrs, [x]) => {
      expectRank(name, x!, 1)
      normAxis(name, attr(attrs, 'axis', -1), x!.shape.length)
      return { shape: [...x!.shape], dtype: floatOf(x!.dtype) }
    },
    cost: (_attrs, [x]) => 4 * numelEstimate(x!.shape),
    doc,
    examples,
  }
}

const softmax = softmaxLike('softmax', 'exp(x) / sum(exp(x)) along an axis (numerically stable).', softmaxLine, [
  { name: 'softmax-uniform', attrs: {}, inputs: [[[0, 0], [5, 5]]], output: [[0.5, 0.5], [0.5, 0.5]] },
])
const logSoftmax = softmaxLike('log_softmax', 'x − logsumexp(x) along an axis.', logSoftmaxLine, [
  { name: 'log_softmax-uniform', attrs: {}, inputs: [[2, 2]], output: [-0.6931471805599453, -0.6931471805599453] },
])

const cumsum: TensorOpDef = {
  eval: (attrs, [x]) => alongAxis(x!, attrs.axis, line => {
    const order = attrs.reverse === true ? [...line].reverse() : line
    let total = 0
    const out = order.map(v => { const before = total; total += v; return attrs.exclusive === true ? before : total })
    return attrs.reverse === true ? out.reverse() : out
  }),
  name: 'cumsum',
  arity: 1,
  attrs: {
    axis: { kind: 'int', required: true, doc: 'axis to accumulate along' },
    exclusive: { kind: 'bool', default: false, doc: 'leave out the element itself (the first sum is 0)' },
    reverse: { kind: 'bool', default: false, doc: 'accumulate from the end of the axis' },
  },
  flags: ['reduction', 'differentiable'],
  infer: (attrs, [x]) => {
    expectRank('cumsum', x!, 1)
    normAxis('cumsum', attrs.axis as number, x!.shape.length)
    return { shape: [...x!.shape], dtype: isFloat(x!.dtype) ? x!.dtype : 'int64' }
  },
  cost: (_attrs, [x]) => numelEstimate(x!.shape),
  doc: 'Running sum along an axis (bool and integers sum in int64); `exclusive` starts from 0, `reverse` runs from the end.',
  examples: [
    { name: 'cumsum', attrs: { axis: -1 }, inputs: [[[1, 2, 3], [4, 5, 6]]], output: [[1, 3, 6], [4, 9, 15]] },
    { name: 'cumsum-exclusive-reverse', attrs: { axis: 0, exclusive: true, reverse: true }, inputs: [[1, 2, 3]], output: [5, 3, 0] },
  ],
}

/** A parsed einsum equation: one subscript string per operand and the output's. */
interface EinsumEquation { inputs: string[]; output: string }

/**
 * Parses the supported einsum subset: `'<term>,<term>...-><term>'` with an explicit output; terms are lowercase
 * letters a–z, one per dim (no `...`); no letter twice within a term (no diagonals); every output letter appears
 * in some input. Letters in the inputs but not in the output are summed over.
 */
function parseEinsum (equation: unknown, operands: number): EinsumEquation {
  if (typeof equation !== 'string') fail('einsum', 'equation must be a string')
  const text = equation.replace(/\s+/g, '')
  const arrow = text.split('->')
  if (arrow.length !== 2) fail('einsum', `equation '${equation}' needs exactly one '->' and an explicit output (e.g. 'bij,bjk->bik')`)
  const inputs = arrow[0]!.split(',')
  const output = arrow[1]!
  if (inputs.length !== operands) fail('einsum', `equation '${equation}' has ${inputs.length} input terms for ${operands} operands`)
  for (const term of [...inputs, output]) {
    if (!/^[a-z]*$/.test(term)) fail('einsum', `term '${term}' of '${equation}': only lowercase letters a-z (no '...' or capitals)`)
    if (new Set(term).size !== term.length) fail('einsum', `term '${term}' of '${equation}' repeats a letter (diagonals are not supported)`)
  }
  for (const letter of output) if (!inputs.some(t => t.includes(letter))) fail('einsum', `output letter '${letter}' of '${equation}' is in no input`)
  return { inputs, output }
}

/** The size of every letter of an einsum, checked across operands (symbols match anything, checked at run time). */
function einsumSizes (eq: EinsumEquation, inputs: readonly ValueType[]): Map<string, Dim> {
  const sizes = new Map<string, Dim>()
  eq.inputs.forEach((term, k) => {
    const shape = inputs[k]!.shape
    if (shape.length !== term.length) fail('einsum', `operand ${k} has rank ${shape.length}, its term '${term}' names ${term.length} dims`)
    ;[...term].forEach((letter, i) => {
      const d = shape[i]!
      const known = sizes.get(letter)
      if (known === undefined || typeof known === 'string') sizes.set(letter, d)
      else if (typeof d === 'number' && d !== known) fail('einsum', `letter '${letter}' has size ${known} and ${d}`)
    })
  })
  return sizes
}

const einsum: TensorOpDef = {
  eval: einsumKernel,
  name: 'einsum',
  arity: 'variadic',
  attrs: { equation: { kind: 'string', required: true, doc: "e.g. 'bij,bjk->bik'; explicit output, letters a-z, no '...', no repeated letter within a term" } },
  flags: ['linalg', 'differentiable'],
  infer: (attrs, inputs) => {
    const eq = parseEinsum(attrs.equation, inputs.length)
    const sizes = einsumSizes(eq, inputs)
    return { shape: [...eq.output].map(l => sizes.get(l)!), dtype: promote(inputs.map(t => t.dtype), true) }
  },
  cost: (attrs, inputs) => {
    const sizes = einsumSizes(parseEinsum(attrs.equation, inputs.length), inputs)
    return 2 * numelEstimate([...sizes.values()]) * Math.max(1, inputs.length - 1)
  },
  doc: "Einstein summation over one or more operands (a subset of numpy's): `'<term>,…-><term>'` with an explicit output; " +
    'each term names the dims of its operand with lowercase letters a-z, one per dim; letters shared by operands must ' +
    'have equal sizes; letters missing from the output are summed over. Not supported: `...` (ellipsis), an implicit ' +
    "output (no '->'), a letter repeated within one term (diagonals/traces), broadcasting of size-1 dims. Examples: " +
    "'bij,bjk->bik' (batched matmul), 'bhqd,bhkd->bhqk' (attention scores), 'ij->ji', 'ij->' (sum), 'i,j->ij' (outer).",
  examples: [
    { name: 'einsum-matmul', attrs: { equation: 'ij,jk->ik' }, inputs: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]], output: [[19, 22], [43, 50]] },
    { name: 'einsum-outer', attrs: { equation: 'i,j->ij' }, inputs: [[1, 2], [3, 4, 5]], output: [[3, 4, 5], [6, 8, 10]] },
    { name: 'einsum-transpose-sum', attrs: { equation: 'ijk->ki' }, inputs: [[[[1, 2], [3, 4]], [[5, 6], [7, 8]]]], output: [[4, 12], [6, 14]] },
  ],
}

export const REDUCE_OPS = { matmul, einsum, sum, mean, max, min, argmax, topk, norm, cumsum, softmax, log_softmax: logSoftmax } as const

function einsumKernel (attrs: Attrs, inputs: Tensor[], outShape: number[]): Float64Array {
  const eq = parseEinsum(attrs.equation, inputs.length)
  const sizes = einsumSizes(eq, inputs.map(t => ({ shape: [...t.shape], dtype: t.dtype }))) as Map<string, number>
  const letters = [...sizes.keys()]
  const dims = letters.map(l => sizes.get(l)!)
  const stridesOf = (term: string, shape: readonly number[]): number[] => {
    const own = strides(shape)
    return letters.map(l => term.includes(l) ? own[term.indexOf(l)]! : 0)
  }
  const inStrides = eq.inputs.map((term, k) => stridesOf(term, inputs[k]!.shape))
  const outStrides = stridesOf(eq.output, outShape)
  const vals = inputs.map(values)
  const out = new Float64Array(numel(outShape))
  const counter = new Array<number>(letters.length).fill(0)
  const total = numel(dims)
  for (let flat = 0; flat < total; flat++) {
    let rest = flat
    for (let i = letters.length - 1; i >= 0; i--) { counter[i] = rest % dims[i]!; rest = Math.floor(rest / dims[i]!) }
    let product = 1
    for (let k = 0; k < vals.length; k++) {
      let at = 0
      for (let i = 0; i < letters.length; i++) at += counter[i]! * inStrides[k]![i]!
      product *= vals[k]![at]!
    }
    let o = 0
    for (let i = 0; i < letters.length; i++) o += counter[i]! * outStrides[i]!
    out[o] += product
  }
  return out
}

function matmulKernel (_attrs: Attrs, [a, b]: Tensor[], outShape: number[]): Float64Array {
  const aShape = a!.shape.length === 1 ? [1, a!.shape[0]!] : [...a!.shape]
  const bShape = b!.shape.length === 1 ? [b!.shape[0]!, 1] : [...b!.shape]
  const [m, k] = aShape.slice(-2) as [number, number]
  const n = bShape.at(-1)!
  const batchShape = outShape.slice(0, outShape.length - (a!.shape.length > 1 ? 1 : 0) - (b!.shape.length > 1 ? 1 : 0))
  const aMap = broadcastMap(aShape.slice(0, -2), batchShape)
  const bMap = broadcastMap(bShape.slice(0, -2), batchShape)
  const av = values(a!)
  const bv = values(b!)
  const out = new Float64Array(numel(batchShape) * m * n)
  for (let batch = 0; batch < numel(batchShape); batch++) {
    const ao = aMap[batch]! * m * k
    const bo = bMap[batch]! * k * n
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0
        for (let p = 0; p < k; p++) acc += av[ao + i * k + p]! * bv[bo + p * n + j]!
        out[(batch * m + i) * n + j] = acc
      }
    }
  }
  return out
}

/** The k largest of a line (or their indices), largest first; ties keep the lower index first. */
function topkLine (k: number, wantIndices: boolean) {
  return (line: number[]): number[] => {
    const order = line.map((_, i) => i).sort((p, q) => (line[q]! - line[p]!) || p - q).slice(0, k)
    return wantIndices ? order : order.map(i => line[i]!)
  }
}

function softmaxLine (line: number[]): number[] {
  const top = Math.max(...line)
  const exps = line.map(x => Math.exp(x - top))
  const total = exps.reduce((s, x) => s + x, 0)
  return exps.map(x => x / total)
}

function logSoftmaxLine (line: number[]): number[] {
  const top = Math.max(...line)
  const lse = top + Math.log(line.reduce((s, x) => s + Math.exp(x - top), 0))
  return line.map(x => x - lse)
}
