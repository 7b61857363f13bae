/** Tensor helpers: build tensors from nested arrays or typed arrays, read them back as nested arrays. */
import { WeftError } from '../errors/weft-error.js'
import { numel, type DType, type Tensor, type TensorData } from './tensor.js'
import { halfToNumber } from './half.js'

export type NestedArray = number | boolean | bigint | NestedArray[]

const CTORS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, bfloat16: Uint16Array,
  int64: BigInt64Array, int32: Int32Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array,
} as const satisfies Record<DType, unknown>

export function isTensor (value: unknown): value is Tensor {
  if (typeof value !== 'object' || value === null) return false
  const t = value as Record<string, unknown>
  return typeof t.dtype === 'string' && Object.hasOwn(CTORS, t.dtype) && Array.isArray(t.shape) && ArrayBuffer.isView(t.data)
}

/** A zero-filled typed array for `dtype`. */
export function allocData (dtype: DType, length: number): TensorData {
  return new CTORS[dtype](length)
}

function dtypeOfData (data: TensorData): DType {
  if (data instanceof Float32Array) return 'float32'
  if (data instanceof Float64Array) return 'float64'
  if (data instanceof BigInt64Array) return 'int64'
  if (data instanceof Int32Array) return 'int32'
  if (data instanceof Int8Array) return 'int8'
  if (data instanceof Uint8Array) return 'uint8'
  return 'float16'
}

function shapeOf (value: NestedArray): number[] {
  const shape: number[] = []
  let cursor: NestedArray = value
  while (Array.isArray(cursor)) {
    shape.push(cursor.length)
    cursor = cursor[0] as NestedArray
    if (cursor === undefined) break
  }
  return shape
}

function flatten (value: NestedArray, shape: readonly number[], depth: number, out: (number | boolean | bigint)[]): void {
  if (depth === shape.length) {
    if (Array.isArray(value)) throw new WeftError('PROGRAM_INVALID', 'tensor: ragged nested array')
    out.push(value)
    return
  }
  if (!Array.isArray(value) || value.length !== shape[depth]) throw new WeftError('PROGRAM_INVALID', 'tensor: ragged nested array')
  for (const item of value) flatten(item, shape, depth + 1, out)
}

/** Writes a JS number (or bigint/boolean) into `data[i]` converting to the dtype's representation. */
export function setElement (data: TensorData, dtype: DType, i: number, value: number | boolean | bigint): void {
  if (dtype === 'int64') data[i] = BigInt(typeof value === 'bigint' ? value : Math.trunc(Number(value)))
  else if (dtype === 'bool') data[i] = Number(value) !== 0 ? 1 : 0
  else if (dtype === 'float16' || dtype === 'bfloat16') throw new WeftError('PROGRAM_INVALID', `tensor: ${dtype} elements are raw bits; build them from a Uint16Array`)
  else data[i] = Number(value)
}

/** Builds a tensor. Nested arrays default to float32 (bool when the leaves are booleans); typed arrays keep their dtype. */
export function tensor (data: NestedArray | TensorData, shape?: readonly number[], dtype?: DType): Tensor {
  if (ArrayBuffer.isView(data)) {
    const typed = data as TensorData
    const finalShape = shape ?? [typed.length]
    if (numel(finalShape) !== typed.length) throw new WeftError('PROGRAM_INVALID', `tensor: ${typed.length} elements do not fill shape [${finalShape.join(',')}]`)
    return { dtype: dtype ?? dtypeOfData(typed), shape: [...finalShape], data: typed }
  }
  const nestedShape = shapeOf(data)
  const flat: (number | boolean | bigint)[] = []
  flatten(data, nestedShape, 0, flat)
  const finalDtype = dtype ?? (typeof flat[0] === 'boolean' ? 'bool' : typeof flat[0] === 'bigint' ? 'int64' : 'float32')
  const finalShape = shape ?? nestedShape
  if (numel(finalShape) !== flat.length) throw new WeftError('PROGRAM_INVALID', `tensor: ${flat.length} elements do not fill shape [${finalShape.join(',')}]`)
  const out = allocData(finalDtype, flat.length)
  flat.forEach((v, i) => setElement(out, finalDtype, i, v))
  return { dtype: finalDtype, shape: [...finalShape], data: out }
}

/** Element i as a JS number (int64 via Number(), bool as 0/1). float16/bfloat16 decode their bits. */
export function getNumber (t: Tensor, i: number): number {
  const v = t.data[i]!
  if (t.dtype === 'float16') return halfToNumber(v as number)
  if (t.dtype === 'bfloat16') return bfloatToNumber(v as number)
  return Number(v)
}

function bfloatToNumber (bits: number): number {
  const view = new DataView(new ArrayBuffer(4))
  view.setUint32(0, bits << 16)
  return view.getFloat32(0)
}

/** The tensor as nested arrays: numbers (int64 as numbers when safe, else bigint), booleans for bool. */
export function toNested (t: Tensor): NestedArray {
  const leaf = (i: number): NestedArray => {
    if (t.dtype === 'bool') return t.data[i] !== 0
    if (t.dtype === 'int64') {
      const v = t.data[i] as bigint
      return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v
    }
    return getNumber(t, i)
  }
  const build = (depth: number, offset: number): NestedArray => {
    if (depth === t.shape.length) return leaf(offset)
    const stride = numel(t.shape.slice(depth + 1))
    return Array.from({ length: t.shape[depth]! }, (_, i) => build(depth + 1, offset + i * stride))
  }
  return build(0, 0)
}
