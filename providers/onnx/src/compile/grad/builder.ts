/**
 * Node-building helpers for the backward emitter on top of the compiler's Emitter: typed float constants,
 * memoised Shape nodes, zeros, and "unbroadcast" (sum a gradient back to an input's shape, static when provable).
 */
import { create } from '@bufbuild/protobuf'
import { WeftError, type DType } from '@weft/core'
import { onnx } from '../../graph/onnx.js'
import { ONNX_DTYPE } from '../dtypes.js'
import type { AttrSpec, Emitter } from '../emitter.js'
import type { ShapeFacts } from './dims.js'

export class GradBuilder {
  private readonly scalars = new Map<string, string>()
  private readonly shapesOf = new Map<string, string>()

  constructor (readonly emit: Emitter, readonly shapes: ShapeFacts) {}

  op (opType: string, inputs: string[], attrs: Record<string, AttrSpec> = {}): string { return this.emit.op(opType, inputs, attrs) }
  int64 (values: readonly number[], dims?: number[]): string { return this.emit.int64(values, dims) }

  /** dtype of a forward tensor (float32 when unknown). */
  dtype (name: string): DType { return this.shapes.get(name).dtype ?? 'float32' }

  /** A rank-0 constant of a float dtype (memoised). */
  scalar (value: number, dtype: DType): string {
    const key = `${dtype}:${value}`
    const known = this.scalars.get(key)
    if (known !== undefined) return known
    let name: string
    if (dtype === 'float32' || dtype === 'float64') {
      name = this.emit.fresh(`f${dtype === 'float32' ? 32 : 64}`)
      const raw = dtype === 'float32' ? new Uint8Array(Float32Array.of(value).buffer) : new Uint8Array(Float64Array.of(value).buffer)
      this.emit.initializers.push(create(onnx.TensorProtoSchema, { name, dims: [], dataType: ONNX_DTYPE[dtype], rawData: raw }))
    } else if (dtype === 'float16' || dtype === 'bfloat16') {
      name = this.op('Cast', [this.scalar(value, 'float32')], { to: ONNX_DTYPE[dtype] })
    } else {
      throw new WeftError('BACKEND_CAPABILITY_MISSING', `grad: no gradient in dtype ${dtype}`)
    }
    this.scalars.set(key, name)
    return name
  }

  /** `Shape(x)`, once per value. */
  shape (x: string): string {
    let s = this.shapesOf.get(x)
    if (s === undefined) { s = this.op('Shape', [x]); this.shapesOf.set(x, s) }
    return s
  }

  zerosLike (x: string, dtype: DType = this.dtype(x)): string {
    return this.op('Expand', [this.scalar(0, dtype), this.shape(x)])
  }

  /** The size of one dim of `x` as a 1-element int64 tensor (a constant when known). */
  dim (x: string, axis: number): string {
    const d = this.shapes.get(x).shape?.at(axis)
    if (typeof d === 'number') return this.int64([d])
    return this.op('Gather', [this.shape(x), this.int64([axis])], { axis: 0 })
  }

  reduceSum (g: string, axes: number[], keepdims: boolean): string {
    return axes.length === 0 ? g : this.emit.reduce('ReduceSum', g, axes, keepdims)
  }

  /** Sum of gradient contributions of one tensor. */
  sum (parts: string[]): string {
    return parts.length === 1 ? parts[0]! : this.op('Sum', parts)
  }

  /** `g` (shaped like forward tensor `y`) summed over the axes along which input `x` was broadcast to `y`. */
  unbroadcast (g: string, x: string, y: string): string {
    const xs = this.shapes.get(x).shape
    const ys = this.shapes.get(y).shape
    if (xs !== null && ys !== null && xs.length <= ys.length) {
      const lead = ys.length - xs.length
      const keep: number[] = []
      let ambiguous = false
      xs.forEach((xd, i) => {
        const yd = ys[lead + i]!
        if (xd === yd || (typeof xd === 'number' && xd !== 1)) return
        if (xd === 1) keep.push(lead + i)
        else ambiguous = true
      })
      if (!ambiguous) {
        const leading = Array.from({ length: lead }, (_, i) => i)
        return this.reduceSum(this.reduceSum(g, keep, true), leading, false)
      }
    }
    return this.unbroadcastAtRunTime(g, x, y, xs === null || ys === null ? null : ys.length - xs.length)
  }

  /** Broadcast axes found at run time: those where x's (left-padded) shape differs from y's. */
  private unbroadcastAtRunTime (g: string, x: string, y: string, lead: number | null): string {
    const sx = this.shape(x)
    const sy = this.shape(y)
    const ones = lead === null
      ? this.op('Expand', [this.int64([1]), this.op('Sub', [this.op('Shape', [sy]), this.op('Shape', [sx])])])
      : lead > 0 ? this.int64(Array.from({ length: lead }, () => 1)) : null
    const padded = ones === null ? sx : this.op('Concat', [ones, sx], { axis: 0 })
    const axes = this.op('Reshape', [this.op('NonZero', [this.op('Not', [this.op('Equal', [padded, sy])])]), this.int64([-1])])
    const reduced = this.op('ReduceSum', [g, axes], { keepdims: 1, noop_with_empty_axes: 1 })
    return this.op('Reshape', [reduced, sx])
  }
}
