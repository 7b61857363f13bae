/** Shape ops: index, reshape, transpose, concat, stack. */
import type { Attrs } from '../ir/program.js'
import type { Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import type { Dim, TensorOpDef, ValueType } from './types.js'
import { fail, fmtShape, normAxis, numelEstimate, promote } from './rules.js'
import { indexedShape, sliceRange } from './index-spec.js'
import { aroundAxis, strides, values } from '../reference/views.js'

const copyCost = (_attrs: unknown, inputs: ValueType[]): number => inputs.reduce((n, t) => n + numelEstimate(t.shape), 0)

export const index: TensorOpDef = {
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

export const reshape: TensorOpDef = {
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

export const transpose: TensorOpDef = {
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

export const concat: TensorOpDef = {
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

export const stack: TensorOpDef = {
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

export const SHAPE_OPS = { index, reshape, transpose, concat, stack } as const

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
