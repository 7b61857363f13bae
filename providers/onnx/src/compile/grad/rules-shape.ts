/**
 * The shape and data-movement rows of the ONNX op table (compile/onnx-ops.ts), with their VJP rules: reshapes,
 * Transpose, Expand, Concat/Split, Slice (a Pad of the gradient), Gather (scatter-add of the gradient),
 * ScatterND/ScatterElements, TopK; and the shape/index ops no gradient flows through. Sizes come from Shape ops.
 */
import { wrapAxis } from '@weft/core'
import { intAttr, intsAttr } from './dims.js'
import type { OnnxOpRow, Vjp, VjpRule } from './types.js'

/** Reshape the gradient back to the input's run-time shape. */
const reshapeBack: VjpRule = (v) => [
  v.needs(0) ? v.b.op('Reshape', [v.g()!, v.b.shape(v.x(0))], v.b.emit.opset >= 14 ? { allowzero: 1 } : {}) : null,
  ...v.node.input.slice(1).map(() => null),
]

/** Negative indices made positive: `idx < 0 ? idx + size : idx` (`size` a rank-0 int64). */
function positiveIndex (v: Vjp, idx: string, data: string, axis: number): string {
  const { b } = v
  const d = v.info(data).shape?.at(axis)
  const size = typeof d === 'number' ? b.int64([d], []) : b.op('Gather', [b.shape(data), b.int64([axis], [])], { axis: 0 })
  const known = v.info(idx).value
  if (known !== undefined && known.every(k => typeof k === 'number' && k >= 0)) return idx
  return b.op('Where', [b.op('Less', [idx, b.int64([0], [])]), b.op('Add', [idx, size]), idx])
}

function slice (v: Vjp): (string | null)[] {
  if (!v.needs(0)) return [null]
  const { b } = v
  const [x, starts, ends, axesIn, stepsIn] = [v.x(0), v.x(1), v.x(2), v.node.input[3] ?? '', v.node.input[4] ?? '']
  if (stepsIn !== '' && v.info(stepsIn).value?.every(s => s === 1) !== true) return [stridedSlice(v), null, null, null, null]
  const count = v.info(starts).shape?.[0]
  let axes = axesIn
  if (axes === '') {
    if (typeof count !== 'number') throw v.unsupported('Slice without axes and with starts of unknown length')
    axes = b.int64(Array.from({ length: count }, (_, i) => i))
  }
  const dims = b.op('Gather', [b.shape(x), axes], { axis: 0 })
  const clamp = (t: string): string => {
    const positive = b.op('Where', [b.op('Less', [t, b.int64([0])]), b.op('Add', [t, dims]), t])
    return b.op('Max', [b.op('Min', [positive, dims]), b.int64([0])])
  }
  const begin = clamp(starts)
  const end = b.op('Max', [clamp(ends), begin])
  const pads = b.op('Concat', [begin, b.op('Sub', [dims, end])], { axis: 0 })
  return [b.op('Pad', [v.g()!, pads, '', axes]), null, null, null, null]
}

/**
 * Slice with steps: undo one axis at a time (last first), scattering the gradient to the positions
 * `Slice(Range(0, size), start, end, step)` picked — numpy/ONNX slice semantics come from Slice itself.
 */
function stridedSlice (v: Vjp): string {
  const { b } = v
  const [x, starts, ends, axesIn, steps] = [v.x(0), v.x(1), v.x(2), v.node.input[3] ?? '', v.x(4)]
  const rank = v.info(x).shape?.length
  const axes = axesIn === '' ? undefined : v.info(axesIn).value
  if (rank === undefined || axes === undefined || axes.some(a => typeof a !== 'number')) throw v.unsupported('Slice with steps on axes or a rank unknown before run time')
  const list = (axes as number[]).map(a => wrapAxis(a, rank))
  const first = (t: string, k: number): string => b.op('Slice', [t, b.int64([0]), b.int64([k]), b.int64([0])])
  const item = (t: string, k: number): string => b.op('Squeeze', [b.op('Slice', [t, b.int64([k]), b.int64([k + 1]), b.int64([0])]), b.int64([0])])
  let grad = v.g()!
  for (let k = list.length - 1; k >= 0; k--) {
    const axis = list[k]!
    const partial = k === 0 ? x : b.op('Slice', [x, first(starts, k), first(ends, k), b.int64(list.slice(0, k)), first(steps, k)])
    const size = b.op('Gather', [b.op('Shape', [partial]), b.int64([axis], [])], { axis: 0 })
    const range = b.op('Range', [b.int64([0], []), size, b.int64([1], [])])
    const picked = b.op('Slice', [range, b.op('Unsqueeze', [item(starts, k), b.int64([0])]), b.op('Unsqueeze', [item(ends, k), b.int64([0])]),
      b.int64([0]), b.op('Unsqueeze', [item(steps, k), b.int64([0])])])
    const spread = b.op('Expand', [b.op('Reshape', [picked, b.int64(Array.from({ length: rank }, (_, i) => i === axis ? -1 : 1))]), b.op('Shape', [grad])])
    grad = b.op('ScatterElements', [b.zerosLike(partial, b.dtype(x)), spread, grad], { axis })
  }
  return grad
}

function gather (v: Vjp): (string | null)[] {
  if (!v.needs(0)) return [null, null]
  const { b } = v
  const [data, idx] = [v.x(0), v.x(1)]
  const g = v.g()!
  const rank = v.info(data).shape?.length
  const idxRank = v.info(idx).shape?.length
  const raw = intAttr(v.node, 'axis', 0)
  if (raw < 0 && rank === undefined) throw v.unsupported('Gather on a negative axis of an input of unknown rank')
  const axis = rank === undefined ? raw : wrapAxis(raw, rank)
  const k = positiveIndex(v, idx, data, axis)
  if (idxRank === 0) {
    // one picked slice: put it back in place with zero padding on both sides
    const at = b.op('Reshape', [k, b.int64([1])])
    const after = b.op('Sub', [b.op('Sub', [b.dim(data, axis), at]), b.int64([1])])
    return [b.op('Pad', [b.op('Unsqueeze', [g, b.int64([axis])]), b.op('Concat', [at, after], { axis: 0 }), '', b.int64([axis])]), null]
  }
  if (axis === 0) return [b.op('ScatterND', [b.zerosLike(data), b.op('Unsqueeze', [k, b.int64([-1])]), g], { reduction: 'add' }), null]
  if (idxRank === 1 && rank !== undefined) {
    const shape = Array.from({ length: rank }, (_, i) => i === axis ? -1 : 1)
    const spread = b.op('Expand', [b.op('Reshape', [k, b.int64(shape)]), b.op('Shape', [g])])
    return [b.op('ScatterElements', [b.zerosLike(data), spread, g], { axis, reduction: 'add' }), null]
  }
  throw v.unsupported(`Gather on axis ${axis} with ${idxRank ?? 'unknown'}-D indices`)
}

function concat (v: Vjp): (string | null)[] {
  const { b } = v
  const axis = intAttr(v.node, 'axis', 0)
  const sizes = v.node.input.map(x => v.info(x).shape?.at(axis))
  const split = sizes.every(d => typeof d === 'number')
    ? b.int64(sizes as number[])
    : b.op('Concat', v.node.input.map(x => b.dim(x, axis)), { axis: 0 })
  const parts = v.node.input.length === 1 ? [v.g()!] : v.b.emit.node('Split', [v.g()!, split], { axis }, v.node.input.length)
  return parts.map((part, i) => v.needs(i) ? part : null)
}

function splitRule (v: Vjp): (string | null)[] {
  if (!v.needs(0)) return v.node.input.map(() => null)
  const { b } = v
  const parts = v.node.output.map((y, k) => v.g(k) ?? b.zerosLike(y))
  return [parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis: intAttr(v.node, 'axis', 0) }), null]
}

function scatterND (v: Vjp): (string | null)[] {
  const { b } = v
  const reduction = v.node.attribute.find(a => a.name === 'reduction')?.s
  const mode = reduction === undefined ? 'none' : new TextDecoder().decode(reduction)
  if (mode !== 'none' && mode !== 'add') throw v.unsupported(`ScatterND with reduction '${mode}'`)
  const [, indices, updates] = [v.x(0), v.x(1), v.x(2)]
  const g = v.g()!
  return [
    v.needs(0) ? (mode === 'add' ? g : b.op('ScatterND', [g, indices, b.zerosLike(updates)])) : null,
    null,
    v.needs(2) ? b.op('GatherND', [g, indices]) : null,
  ]
}

function scatterElements (v: Vjp): (string | null)[] {
  const { b } = v
  const reduction = v.node.attribute.find(a => a.name === 'reduction')?.s
  const mode = reduction === undefined ? 'none' : new TextDecoder().decode(reduction)
  if (mode !== 'none' && mode !== 'add') throw v.unsupported(`ScatterElements with reduction '${mode}'`)
  const axis = intAttr(v.node, 'axis', 0)
  const [, idx, updates] = [v.x(0), v.x(1), v.x(2)]
  const g = v.g()!
  return [
    // written positions lose their gradient; with 'add' every position keeps it
    v.needs(0) ? (mode === 'add' ? g : b.op('ScatterElements', [g, idx, b.zerosLike(updates)], { axis })) : null,
    null,
    v.needs(2) ? b.op('GatherElements', [g, idx], { axis }) : null,
  ]
}

/** An op with a shape rule of its own in ShapeTable, not row-wise. */
const own = <V extends OnnxOpRow['vjp']>(vjp: V) => ({ shape: 'own', rowwise: false, vjp }) as const
/** Shape and index arithmetic: int64 out, no gradient. */
const ints = { shape: 'own', dtype: 'int64', rowwise: false, vjp: 'no-gradient' } as const

export const SHAPE_ONNX_OPS = {
  Reshape: own(reshapeBack),
  Flatten: { shape: 'unknown', rowwise: false, vjp: reshapeBack },
  Squeeze: own(reshapeBack),
  Unsqueeze: own(reshapeBack),
  Transpose: own((v) => {
    const perm = intsAttr(v.node, 'perm')
    if (perm === undefined) return [v.b.op('Transpose', [v.g()!])]
    const inverse = perm.map((_, i) => perm.indexOf(i))
    return [v.b.op('Transpose', [v.g()!], { perm: inverse })]
  }),
  Expand: own((v) => [v.needs(0) ? v.b.unbroadcast(v.g()!, v.x(0), v.y()) : null, null]),
  Concat: own(concat),
  Split: own(splitRule),
  Slice: own(slice),
  Gather: own(gather),
  GatherElements: own((v) => {
    if (!v.needs(0)) return [null, null]
    const axis = intAttr(v.node, 'axis', 0)
    const rank = v.info(v.x(0)).shape?.length
    if (axis < 0 && rank === undefined) throw v.unsupported('GatherElements on a negative axis of an input of unknown rank')
    const k = positiveIndex(v, v.x(1), v.x(0), rank === undefined ? axis : wrapAxis(axis, rank))
    return [v.b.op('ScatterElements', [v.b.zerosLike(v.x(0)), k, v.g()!], { axis, reduction: 'add' }), null]
  }),
  ScatterND: { shape: 'same', rowwise: false, vjp: scatterND },
  ScatterElements: { shape: 'same', rowwise: false, vjp: scatterElements },
  TopK: own((v) => {
    if (!v.needs(0) || v.g(0) === null) return [null, null]
    const axis = intAttr(v.node, 'axis', -1)
    return [v.b.op('ScatterElements', [v.b.zerosLike(v.x(0)), v.y(1), v.g(0)!], { axis, reduction: 'add' }), null]
  }),
  // the backward pass's own helpers (no second-order gradients)
  GatherND: own('none'),
  Pad: own('none'),
  Shape: ints,
  Size: ints,
  NonZero: ints,
  Range: { shape: 'own', rowwise: false, vjp: 'no-gradient' },
  Constant: { shape: 'own', rowwise: false, vjp: 'no-gradient' },
  ConstantOfShape: { shape: 'own', rowwise: false, vjp: 'no-gradient' },
} as const satisfies Record<string, OnnxOpRow>
