/**
 * numpy basic indexing in ONNX: reading `x[index]` (Slice + Gather) and assigning `x[index] = value` with
 * broadcasting (membership masks + Where). Sizes are taken at run time, so no sequence length is baked in.
 */
import type { IndexItem } from '@weft/core'
import { INT64_MAX, INT64_MIN } from './emitter.js'
import type { LoweringEmitter } from './onnx-ops.js'

type Slice3 = [number | null, number | null, number | null]

function sliceBounds ([start, stop, step]: Slice3): { start: number | bigint; stop: number | bigint; step: number } {
  const s = step ?? 1
  return {
    start: start ?? (s > 0 ? 0 : INT64_MAX),
    stop: stop ?? (s > 0 ? INT64_MAX : INT64_MIN),
    step: s,
  }
}

/** Bounds of an integer index as a one-element slice (k = -1 must run to the end, not to 0). */
function intBounds (k: number): { start: number; stop: number | bigint } {
  return { start: k, stop: k === -1 ? INT64_MAX : k + 1 }
}

/** `x[index]`: one Slice over every sliced axis, then a scalar Gather per integer item (last axis first). */
export function lowerIndex (emit: LoweringEmitter, x: string, index: IndexItem[]): string {
  const axes: number[] = []
  const starts: (number | bigint)[] = []
  const ends: (number | bigint)[] = []
  const steps: number[] = []
  index.forEach((item, axis) => {
    if (!Array.isArray(item)) return
    if (item[0] === null && item[1] === null && (item[2] ?? 1) === 1) return
    const b = sliceBounds(item)
    axes.push(axis); starts.push(b.start); ends.push(b.stop); steps.push(b.step)
  })
  let value = axes.length === 0 ? x : emit.slice(x, starts, ends, axes, steps)
  for (let axis = index.length - 1; axis >= 0; axis--) {
    const item = index[axis]
    if (typeof item === 'number') value = emit.op('Gather', [value, emit.int64([item], [])], { axis })
  }
  return value === x ? emit.op('Identity', [x]) : value
}

/** Positions along `axis` of `x` selected by one index item, as a 1-D int64 (in value order). */
function positions (emit: LoweringEmitter, x: string, axis: number, item: number | Slice3): { positions: string; size: string } {
  const size = emit.dim(x, axis)
  const range = emit.op('Range', [emit.int64([0], []), size, emit.int64([1], [])])
  if (typeof item === 'number') {
    const b = intBounds(item)
    return { positions: emit.slice(range, [b.start], [b.stop], [0]), size }
  }
  const b = sliceBounds(item)
  return { positions: emit.slice(range, [b.start], [b.stop], [0], [b.step]), size }
}

/**
 * `x[index] = value` (numpy broadcasting of `value` against the indexed region). `valueRank` is the rank of
 * `value`; the result has x's shape and dtype (`value` must already have x's dtype).
 */
export function assignIndex (emit: LoweringEmitter, x: string, xRank: number, index: IndexItem[], value: string, valueRank: number): string {
  const intAxes = index.flatMap((item, axis) => typeof item === 'number' ? [axis] : [])
  const regionRank = xRank - intAxes.length
  // align value to the region's rank (leading 1s), then restore the dims the integer items dropped
  let v = emit.unsqueeze(value, Array.from({ length: regionRank - valueRank }, (_, i) => i))
  v = emit.unsqueeze(v, intAxes)
  let mask: string | null = null
  index.forEach((item, axis) => {
    if (item === null) return
    if (Array.isArray(item) && item[0] === null && item[1] === null && (item[2] ?? 1) === 1) return
    const { positions: picked, size } = positions(emit, x, axis, item)
    const range = emit.op('Range', [emit.int64([0], []), size, emit.int64([1], [])])
    // hits[i, j] = (i == picked[j]); member[i] = any_j; source[i] = the j that hit (which value element lands at i)
    const hits = emit.op('Cast', [emit.op('Equal', [emit.unsqueeze(range, [1]), emit.unsqueeze(picked, [0])])], { to: 6 })
    const member = emit.op('Cast', [emit.reduce('ReduceMax', hits, [1], false)], { to: 9 })
    const source = emit.op('ArgMax', [hits], { axis: 1, keepdims: 0 })
    // a broadcast (size-1) value dim always reads element 0
    const last = emit.op('Sub', [emit.unsqueeze(emit.dim(v, axis), [0]), emit.int64([1])])
    v = emit.op('Gather', [v, emit.op('Min', [source, last])], { axis })
    const others = Array.from({ length: xRank }, (_, i) => i).filter(i => i !== axis)
    const axisMask = emit.unsqueeze(member, others)
    mask = mask === null ? axisMask : emit.op('And', [mask, axisMask])
  })
  if (mask === null) return emit.op('Expand', [v, emit.op('Shape', [x])])
  return emit.op('Where', [mask, v, x])
}
