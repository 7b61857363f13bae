/** Shape and data-movement ops: index, reshape, transpose, concat, stack, gather and scatter by an index tensor. */
import type { Attrs } from '../ir/program.js'
import type { Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import type { Dim, TensorOpDef, ValueType } from './types.js'
import { broadcastShapes, fail, fmtShape, normAxis, numelEstimate, promote } from './rules.js'
import { indexedShape, sliceRange } from './index-spec.js'
import { aroundAxis, broadcastMap, strides, values } from '../reference/views.js'
import { WeftError } from '../errors/weft-error.js'

const copyCost = (_attrs: unknown, inputs: ValueType[]): number => inputs.reduce((n, t) => n + numelEstimate(t.shape), 0)

const index: TensorOpDef = {
  eval: indexKernel,
  name: 'index',
  arity: 1,
  attrs: { index: { kind: 'index_spec', required: true, doc: 'one item per leading dim: int (drops the dim), `[start, stop, step]` (each may be null), or null (`:`)' } },
  flags: ['shape', 'differentiable'],
  infer: (attrs, [x]) => ({ shape: indexedShape('index', x!.shape, attrs.index), dtype: x!.dtype }),
  cost: () => 0,
  doc: 'numpy basic indexing. Negative indices and slice bounds count from the end; dims past the list are kept.',
  examples: [
    { name: 'index-last-token', attrs: { index: [0, -1] }, inputs: [[[[1, 2], [3, 4], [5, 6]]]], output: [5, 6] },
    { name: 'index-slice-step', attrs: { index: [[null, null, 2]] }, inputs: [[0, 1, 2, 3, 4]], output: [0, 2, 4] },
    { name: 'index-negative-slice', attrs: { index: [null, [-2, null, null]] }, inputs: [[[1, 2, 3], [4, 5, 6]]], output: [[2, 3], [5, 6]] },
  ],
}

function symbolicProduct (dims: readonly Dim[]): { known: number; symbols: string[] } {
  let known = 1
  const symbols: string[] = []
  for (const d of dims) typeof d === 'number' ? known *= d : symbols.push(d)
  return { known, symbols }
}

function inferReshape (target: unknown, x: ValueType): Dim[] {
  if (!Array.isArray(target) || !target.every(d => Number.isInteger(d) && d >= -1)) fail('reshape', 'shape must be a list of non-negative integers with at most one -1')
  const wild = target.filter(d => d === -1).length
  if (wild > 1) fail('reshape', `only one -1 allowed in ${fmtShape(target)}`)
  const input = symbolicProduct(x.shape)
  const fixed = target.filter(d => d !== -1).reduce((a: number, b: number) => a * b, 1)
  if (input.symbols.length === 0) {
    if (wild === 0 && fixed !== input.known) fail('reshape', `cannot reshape ${fmtShape(x.shape)} (${input.known} elements) to ${fmtShape(target)}`)
    if (wild === 1 && (fixed === 0 || input.known % fixed !== 0)) fail('reshape', `cannot reshape ${fmtShape(x.shape)} to ${fmtShape(target)}`)
    return target.map(d => d === -1 ? input.known / fixed : d)
  }
  if (wild === 0) fail('reshape', `input ${fmtShape(x.shape)} has symbolic dims: use -1 for the dim that absorbs them`)
  if (fixed === 0 || input.known % fixed !== 0) fail('reshape', `cannot reshape ${fmtShape(x.shape)} to ${fmtShape(target)}`)
  const ratio = input.known / fixed
  const sym = input.symbols.join('*')
  return target.map(d => d === -1 ? (ratio === 1 ? sym : `${sym}*${ratio}`) : d)
}

const reshape: TensorOpDef = {
  eval: (_attrs, [x]) => values(x!),
  name: 'reshape',
  arity: 1,
  attrs: { shape: { kind: 'ints', required: true, doc: 'target shape; one entry may be -1 (inferred)' } },
  flags: ['shape', 'differentiable'],
  infer: (attrs, [x]) => ({ shape: inferReshape(attrs.shape, x!), dtype: x!.dtype }),
  cost: () => 0,
  doc: 'Row-major reshape. With symbolic input dims the -1 entry absorbs them.',
  examples: [{ name: 'reshape-heads', attrs: { shape: [2, -1] }, inputs: [[1, 2, 3, 4, 5, 6]], output: [[1, 2, 3], [4, 5, 6]] }],
}

const transpose: TensorOpDef = {
  eval: transposeKernel,
  name: 'transpose',
  arity: 1,
  attrs: { perm: { kind: 'ints', required: true, doc: 'a permutation of the axes' } },
  flags: ['shape', 'differentiable'],
  infer: (attrs, [x]) => {
    const perm = attrs.perm as number[]
    const rank = x!.shape.length
    const axes = perm.map(a => normAxis('transpose', a, rank))
    if (perm.length !== rank || new Set(axes).size !== rank) fail('transpose', `perm ${fmtShape(perm)} is not a permutation of ${rank} axes`)
    return { shape: axes.map(a => x!.shape[a]!), dtype: x!.dtype }
  },
  cost: copyCost,
  doc: 'Permutes axes: output dim i is input dim perm[i].',
  examples: [{ name: 'transpose-2d', attrs: { perm: [1, 0] }, inputs: [[[1, 2, 3], [4, 5, 6]]], output: [[1, 4], [2, 5], [3, 6]] }],
}

function sameDims (op: string, inputs: ValueType[], skip: number | null): void {
  const first = inputs[0]!.shape
  for (const t of inputs.slice(1)) {
    const bad = t.shape.length !== first.length || t.shape.some((d, i) => i !== skip && d !== first[i] && typeof d === 'number' && typeof first[i] === 'number')
    if (bad) fail(op, `shapes ${fmtShape(first)} and ${fmtShape(t.shape)} differ${skip === null ? '' : ` outside axis ${skip}`}`)
  }
}

const concat: TensorOpDef = {
  eval: concatKernel,
  name: 'concat',
  arity: 'variadic',
  attrs: { axis: { kind: 'int', required: true, doc: 'axis to join along' } },
  flags: ['shape', 'differentiable'],
  infer: (attrs, inputs) => {
    const rank = inputs[0]!.shape.length
    if (rank === 0) fail('concat', 'cannot concatenate rank-0 values')
    const axis = normAxis('concat', attrs.axis as number, rank)
    sameDims('concat', inputs, axis)
    const dims = inputs.map(t => t.shape[axis]!)
    const total: Dim = dims.every(d => typeof d === 'number') ? (dims as number[]).reduce((a, b) => a + b, 0) : dims.join('+')
    const shape = [...inputs[0]!.shape]
    shape[axis] = total
    return { shape, dtype: promote(inputs.map(t => t.dtype), false) }
  },
  cost: copyCost,
  doc: 'Joins one or more values along an existing axis; other dims must match. Dtypes promote.',
  examples: [{ name: 'concat-rows', attrs: { axis: 0 }, inputs: [[[1, 2]], [[3, 4], [5, 6]]], output: [[1, 2], [3, 4], [5, 6]] }],
}

const stack: TensorOpDef = {
  eval: stackKernel,
  name: 'stack',
  arity: 'variadic',
  attrs: { axis: { kind: 'int', required: true, doc: 'position of the new axis' } },
  flags: ['shape', 'differentiable'],
  infer: (attrs, inputs) => {
    const rank = inputs[0]!.shape.length
    const axis = normAxis('stack', attrs.axis as number, rank + 1)
    sameDims('stack', inputs, null)
    const shape = [...inputs[0]!.shape]
    shape.splice(axis, 0, inputs.length)
    return { shape, dtype: promote(inputs.map(t => t.dtype), false) }
  },
  cost: copyCost,
  doc: 'Stacks one or more values of equal shape along a new axis.',
  examples: [{ name: 'stack-last', attrs: { axis: -1 }, inputs: [[1, 2], [3, 4]], output: [[1, 3], [2, 4]] }],
}

const INDEX_DTYPES = ['int64', 'int32', 'int8', 'uint8']

/** Checks an index tensor for gather/scatter along `axis` of `x`: an integer dtype, x's rank, x's sizes off the axis. */
function checkIndexTensor (op: string, x: ValueType, idx: ValueType, axis: number): void {
  if (!INDEX_DTYPES.includes(idx.dtype)) fail(op, `index must be an integer tensor, got ${idx.dtype}`)
  if (idx.shape.length !== x.shape.length) fail(op, `index has rank ${idx.shape.length}, the input ${x.shape.length}: they must match`)
  idx.shape.forEach((d, i) => {
    const xd = x.shape[i]!
    if (i !== axis && typeof d === 'number' && typeof xd === 'number' && d !== xd) {
      fail(op, `index ${fmtShape(idx.shape)} and input ${fmtShape(x.shape)} differ at dim ${i} (only the axis ${axis} may differ)`)
    }
  })
}

/** Visits every element of the index tensor: its flat position and the flat position in `x` it addresses. */
function eachIndexed (op: string, x: Tensor, idx: Tensor, axisAttr: unknown, visit: (i: number, target: number) => void): void {
  const axis = normAxis(op, axisAttr as number, x.shape.length)
  const iv = values(idx)
  const xs = strides(x.shape)
  const is = strides(idx.shape)
  const size = x.shape[axis]!
  for (let i = 0; i < iv.length; i++) {
    let k = iv[i]!
    if (k < -size || k >= size) throw new WeftError('PROGRAM_INVALID', `${op}: index ${k} out of range for dim ${axis} of size ${size}`, { op })
    if (k < 0) k += size
    let target = 0
    for (let d = 0; d < x.shape.length; d++) target += (d === axis ? k : Math.floor(i / is[d]!) % idx.shape[d]!) * xs[d]!
    visit(i, target)
  }
}

const gather: TensorOpDef = {
  eval: (attrs, [x, idx]) => {
    const v = values(x!)
    const out = new Float64Array(idx!.data.length)
    eachIndexed('gather', x!, idx!, attrs.axis, (i, target) => { out[i] = v[target]! })
    return out
  },
  name: 'gather',
  arity: 2,
  attrs: { axis: { kind: 'int', required: true, doc: 'axis the index tensor indexes' } },
  flags: ['shape', 'differentiable'],
  infer: (attrs, [x, idx]) => {
    const axis = normAxis('gather', attrs.axis as number, x!.shape.length)
    checkIndexTensor('gather', x!, idx!, axis)
    return { shape: [...idx!.shape], dtype: x!.dtype }
  },
  cost: (_attrs, [, idx]) => numelEstimate(idx!.shape),
  doc: "PyTorch's `gather` (ONNX GatherElements): out[i][j] = x[index[i][j]][j] along axis 0 (likewise for any axis). " +
    "The index is an integer tensor of x's rank, equal to x off the axis; the result has the index's shape. Negative " +
    'indices count from the end; an index out of range is an error. E.g. the log-probability of each target token: ' +
    'logp [b, s, vocab] gathered on axis -1 with targets [b, s, 1].',
  examples: [
    { name: 'gather-last-axis', attrs: { axis: 1 }, inputs: [[[1, 2, 3], [4, 5, 6]], [[2, 0], [-1, 1]]], inputDtypes: ['float32', 'int64'], output: [[3, 1], [6, 5]] },
    { name: 'gather-rows', attrs: { axis: 0 }, inputs: [[[1, 2], [3, 4], [5, 6]], [[2, 0]]], inputDtypes: ['float32', 'int64'], output: [[5, 2]] },
  ],
}

const scatter: TensorOpDef = {
  eval: (attrs, [x, idx, src]) => {
    const out = values(x!)
    const sv = values(src!)
    const map = broadcastMap(src!.shape, idx!.shape)
    const add = attrs.reduction === 'add'
    eachIndexed('scatter', x!, idx!, attrs.axis, (i, target) => { out[target] = add ? out[target]! + sv[map[i]!]! : sv[map[i]!]! })
    return out
  },
  name: 'scatter',
  arity: 3,
  attrs: {
    axis: { kind: 'int', required: true, doc: 'axis the index tensor indexes' },
    reduction: { kind: 'enum', values: ['none', 'add'], default: 'none', doc: "'none' writes the values, 'add' adds them (PyTorch's scatter_add)" },
  },
  flags: ['shape', 'differentiable'],
  infer: (attrs, [x, idx, src]) => {
    const axis = normAxis('scatter', attrs.axis as number, x!.shape.length)
    checkIndexTensor('scatter', x!, idx!, axis)
    const spread = broadcastShapes('scatter', [src!.shape, idx!.shape])
    if (spread.length !== idx!.shape.length || spread.some((d, i) => d !== idx!.shape[i] && typeof d === 'number' && typeof idx!.shape[i] === 'number')) {
      fail('scatter', `values ${fmtShape(src!.shape)} must have the index's shape ${fmtShape(idx!.shape)} or broadcast to it`)
    }
    return { shape: [...x!.shape], dtype: x!.dtype }
  },
  cost: (_attrs, [x, idx]) => numelEstimate(x!.shape) + numelEstimate(idx!.shape),
  doc: "PyTorch's `scatter`/`scatter_add` (ONNX ScatterElements): a copy of x with out[index[i][j]][j] = values[i][j] " +
    "along axis 0 (likewise for any axis); `reduction: 'add'` adds instead of writing, so repeated indices accumulate. " +
    "The index is as for `gather`; values have the index's shape or broadcast to it (a scalar). The result keeps x's " +
    "dtype. With repeated indices and `reduction: 'none'`, which write wins is unspecified.",
  examples: [
    { name: 'scatter-set', attrs: { axis: 1 }, inputs: [[[0, 0, 0], [0, 0, 0]], [[2], [0]], [[5], [7]]], inputDtypes: ['float32', 'int64', 'float32'], output: [[0, 0, 5], [7, 0, 0]] },
    { name: 'scatter-add', attrs: { axis: 0, reduction: 'add' }, inputs: [[1, 1, 1], [0, 2, 0], [1, 2, 3]], inputDtypes: ['float32', 'int64', 'float32'], output: [5, 1, 3] },
  ],
}

export const SHAPE_OPS = { index, reshape, transpose, concat, stack, gather, scatter } as const

function indexKernel (attrs: Attrs, [x]: Tensor[], outShape: number[]): Float64Array {
  const spec = attrs.index as unknown[]
  const perAxis = x!.shape.map((size, axis) => {
    const item = spec[axis] ?? null
    if (item === null) return Array.from({ length: size }, (_, i) => i)
    if (typeof item === 'number') return [item < 0 ? item + size : item]
    const [start, stop, step] = item as [number | null, number | null, number | null]
    const r = sliceRange(start, stop, step, size)
    return Array.from({ length: r.length }, (_, i) => r.start + i * r.step)
  })
  const st = strides(x!.shape)
  const v = values(x!)
  const out: number[] = []
  const walk = (axis: number, offset: number): void => {
    if (axis === perAxis.length) { out.push(v[offset]!); return }
    for (const i of perAxis[axis]!) walk(axis + 1, offset + i * st[axis]!)
  }
  walk(0, 0)
  if (out.length !== numel(outShape)) throw new Error('index kernel: size mismatch')
  return Float64Array.from(out)
}

function transposeKernel (attrs: Attrs, [x]: Tensor[], outShape: number[]): Float64Array {
  const perm = (attrs.perm as number[]).map(a => normAxis('', a, x!.shape.length))
  const inStrides = strides(x!.shape)
  const v = values(x!)
  const outStrides = strides(outShape)
  const out = new Float64Array(v.length)
  for (let flat = 0; flat < out.length; flat++) {
    let src = 0
    for (let axis = 0; axis < outShape.length; axis++) src += Math.floor(flat / outStrides[axis]!) % outShape[axis]! * inStrides[perm[axis]!]!
    out[flat] = v[src]!
  }
  return out
}

function concatKernel (attrs: Attrs, inputs: Tensor[], outShape: number[]): Float64Array {
  const axis = normAxis('', attrs.axis as number, outShape.length)
  const { outer, inner } = aroundAxis(outShape, axis)
  const out: number[] = []
  const vals = inputs.map(values)
  for (let o = 0; o < outer; o++) {
    inputs.forEach((t, k) => {
      const chunk = t.shape[axis]! * inner
      for (let i = 0; i < chunk; i++) out.push(vals[k]![o * chunk + i]!)
    })
  }
  return Float64Array.from(out)
}

function stackKernel (attrs: Attrs, inputs: Tensor[], outShape: number[]): Float64Array {
  const axis = normAxis('', attrs.axis as number, outShape.length)
  const expanded = inputs.map(t => { const shape = [...t.shape]; shape.splice(axis, 0, 1); return { ...t, shape } })
  return concatKernel({ axis }, expanded, outShape)
}
