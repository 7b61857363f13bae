/** Index arithmetic shared by the reference kernels: strides, broadcasting, axis decomposition. */
import type { Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import { getNumber } from '../tensor/create.js'

export function values (t: Tensor): Float64Array {
  const out = new Float64Array(t.data.length)
  for (let i = 0; i < out.length; i++) out[i] = getNumber(t, i)
  return out
}

export function strides (shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length)
  let s = 1
  for (let i = shape.length - 1; i >= 0; i--) { out[i] = s; s *= shape[i]! }
  return out
}

/** For every flat index of `outShape`, the flat index of an input of `inShape` broadcast to it. */
export function broadcastMap (inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const rank = outShape.length
  const inStrides = strides(inShape)
  const aligned = outShape.map((_, i) => {
    const j = i - (rank - inShape.length)
    return j < 0 || inShape[j] === 1 ? 0 : inStrides[j]!
  })
  const total = numel(outShape)
  const map = new Int32Array(total)
  const counter = new Array<number>(rank).fill(0)
  let offset = 0
  for (let flat = 0; flat < total; flat++) {
    map[flat] = offset
    for (let axis = rank - 1; axis >= 0; axis--) {
      counter[axis]!++
      offset += aligned[axis]!
      if (counter[axis]! < outShape[axis]!) break
      offset -= aligned[axis]! * counter[axis]!
      counter[axis] = 0
    }
  }
  return map
}

/** Splits a shape around one axis: outer × size × inner. */
export function aroundAxis (shape: readonly number[], axis: number): { outer: number; size: number; inner: number } {
  return { outer: numel(shape.slice(0, axis)), size: shape[axis]!, inner: numel(shape.slice(axis + 1)) }
}

/** For every flat input index, the flat index of the output after reducing `axes` (kept or dropped alike). */
export function reduceMap (shape: readonly number[], axes: readonly number[]): { map: Int32Array; outSize: number } {
  const kept = shape.map((d, i) => axes.includes(i) ? 1 : d)
  const keptStrides = strides(kept)
  const total = numel(shape)
  const map = new Int32Array(total)
  const inStrides = strides(shape)
  for (let flat = 0; flat < total; flat++) {
    let out = 0
    for (let axis = 0; axis < shape.length; axis++) {
      if (axes.includes(axis)) continue
      out += Math.floor(flat / inStrides[axis]!) % shape[axis]! * keptStrides[axis]!
    }
    map[flat] = out
  }
  return { map, outSize: numel(kept) }
}
