/**
 * Tensor: the SDK's result tensor — core's `{ dtype, shape, data }` plus the small helpers researchers reach
 * for when reading results (indexing, argmax, topk, softmax, nested arrays). Computation stays in Programs.
 */
import { WeftError, evalOp, normAxis, numel, type Attrs, type DType, type Tensor as CoreTensor, type TensorData } from '@weft/core'
import { resolveIndex } from './indexing.js'

export type NestedArray = number | NestedArray[]

export class Tensor implements CoreTensor {
  readonly dtype: DType
  readonly shape: readonly number[]
  readonly data: TensorData

  constructor (dtype: DType, shape: readonly number[], data: TensorData) {
    if (data.length !== numel(shape)) {
      throw new WeftError('PROGRAM_INVALID', `Tensor data has ${data.length} elements, shape [${shape.join(', ')}] needs ${numel(shape)}`)
    }
    this.dtype = dtype
    this.shape = Object.freeze([...shape])
    this.data = data
  }

  /** Wraps a core tensor (as returned by an executor) without copying. */
  static from (tensor: CoreTensor): Tensor {
    return tensor instanceof Tensor ? tensor : new Tensor(tensor.dtype, tensor.shape, tensor.data)
  }

  /** A float32 tensor from nested arrays (or a flat array plus a shape). */
  static of (values: NestedArray, shape?: readonly number[]): Tensor {
    const flat: number[] = []
    const inferred: number[] = []
    const walk = (value: NestedArray, depth: number): void => {
      if (typeof value === 'number') { flat.push(value); return }
      if (inferred.length <= depth) inferred.push(value.length)
      else if (inferred[depth] !== value.length) throw new WeftError('PROGRAM_INVALID', `Ragged array: expected ${inferred[depth]} items at depth ${depth}, got ${value.length}`)
      for (const item of value) walk(item, depth + 1)
    }
    walk(values, 0)
    return new Tensor('float32', shape ?? inferred, Float32Array.from(flat))
  }

  get size (): number { return this.data.length }
  get rank (): number { return this.shape.length }

  /** Element at a full index (negative indices count from the end), as a number. */
  get (...index: number[]): number {
    if (index.length !== this.shape.length) {
      throw new WeftError('PROGRAM_INVALID', `get() needs ${this.shape.length} indices for shape [${this.shape.join(', ')}], got ${index.length}`)
    }
    let offset = 0
    for (let d = 0; d < index.length; d++) {
      const size = this.shape[d]!
      const i = index[d]! < 0 ? index[d]! + size : index[d]!
      if (i < 0 || i >= size) throw new WeftError('PROGRAM_INVALID', `Index ${index[d]} is out of range for dimension ${d} of size ${size}`)
      offset = offset * size + i
    }
    return Number(this.data[offset])
  }

  /** The single value of a one-element tensor. */
  item (): number {
    if (this.data.length !== 1) throw new WeftError('PROGRAM_INVALID', `item() needs one element, this tensor has shape [${this.shape.join(', ')}]`)
    return Number(this.data[0])
  }

  /** numpy basic indexing, same spec as the Program's `index` op: ints drop a dim, `':'`, `'a:b:c'`, `[a, b, c]`. */
  at (...items: (number | string | null | [number | null, number | null, number | null])[]): Tensor {
    const { shape, offsets } = resolveIndex(this.shape, items)
    const out = new Float64Array(offsets.length)
    for (let i = 0; i < offsets.length; i++) out[i] = Number(this.data[offsets[i]!])
    return this.dtype === 'int64' || this.dtype === 'int32'
      ? new Tensor('int64', shape, BigInt64Array.from(out, (v) => BigInt(v)))
      : new Tensor('float32', shape, Float32Array.from(out))
  }

  /** Same data, new shape (one dim may be -1). */
  reshape (...shape: number[]): Tensor {
    const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1)
    const resolved = shape.map((d) => d === -1 ? this.size / known : d)
    if (numel(resolved) !== this.size) throw new WeftError('PROGRAM_INVALID', `cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`)
    return new Tensor(this.dtype, resolved, this.data)
  }

  /** Plain numbers, flat in row-major order. */
  toFlat (): number[] { return Array.from(this.data as ArrayLike<number | bigint>, Number) }

  /** Nested JavaScript arrays (a number for rank 0). */
  toArray (): NestedArray {
    const flat = this.toFlat()
    const build = (depth: number, offset: number): NestedArray => {
      if (depth === this.shape.length) return flat[offset]!
      const stride = numel(this.shape.slice(depth + 1))
      return Array.from({ length: this.shape[depth]! }, (_, i) => build(depth + 1, offset + i * stride))
    }
    return build(0, 0)
  }

  /** Index of the largest value along `axis` (default: last; the axis is dropped unless keepdims), as int64. */
  argmax (axis = -1, options: { keepdims?: boolean } = {}): Tensor {
    return this.kernel('argmax', { axis: this.axis('argmax', axis), keepdims: options.keepdims === true }, 'int64')
  }

  /** The k largest values along `axis` (default: last), largest first, and their indices. */
  topk (k: number, axis = -1): { values: Tensor; indices: Tensor } {
    const a = this.axis('topk', axis)
    return {
      values: this.kernel('topk', { k, axis: a, output: 'values' }, 'float32'),
      indices: this.kernel('topk', { k, axis: a, output: 'indices' }, 'int64'),
    }
  }

  /** Softmax along `axis` (default: last), computed in float64, returned as float32. */
  softmax (axis = -1): Tensor { return this.kernel('softmax', { axis: this.axis('softmax', axis) }, 'float32') }

  private axis (op: string, axis: number): number { return normAxis(op, axis, this.rank) }

  /** Runs the op's reference kernel from core's op table (float64 arithmetic), returned as `dtype`. */
  private kernel (op: 'argmax' | 'topk' | 'softmax', attrs: Attrs, dtype: 'float32' | 'int64'): Tensor {
    const out = evalOp(op, attrs, [this.dtype === 'float32' ? this : { dtype: 'float64', shape: this.shape, data: Float64Array.from(this.toFlat()) }])
    if (out.dtype === dtype) return Tensor.from(out)
    const flat = Array.from(out.data as ArrayLike<number | bigint>, Number)
    return dtype === 'int64'
      ? new Tensor('int64', out.shape, BigInt64Array.from(flat, (v) => BigInt(v)))
      : new Tensor('float32', out.shape, Float32Array.from(flat))
  }

  toString (): string { return `Tensor(${this.dtype}, [${this.shape.join(', ')}])` }
}
