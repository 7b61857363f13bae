/**
 * Tensor ↔ RFC 8746 typed arrays. A tensor is `40([shape, typed])`: little-endian typed-array tags, row-major;
 * bool is a homogeneous array `41([true, false, …])`; bfloat16 is its raw bits as uint16 LE (tag 69: Weft has no uint16).
 */
import type { DType, Tensor, TensorData } from '../tensor/tensor.js'
import { DTYPE_BYTES, numel } from '../tensor/tensor.js'

export const TAG_MULTI_DIM = 40
export const TAG_HOMOGENEOUS = 41
export const TAG_COSE_SIGN1 = 18

export const DTYPE_TAGS = {
  uint8: 64, int8: 72, int32: 78, int64: 79, float16: 84, float32: 85, float64: 86, bfloat16: 69,
} as const satisfies Record<Exclude<DType, 'bool'>, number>

export const TAG_DTYPES: ReadonlyMap<number, Exclude<DType, 'bool'>> =
  new Map(Object.entries(DTYPE_TAGS).map(([dtype, tag]) => [tag, dtype as Exclude<DType, 'bool'>]))

const ELEMENT_BYTES: Readonly<Record<Exclude<DType, 'bool'>, number>> = DTYPE_BYTES

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('Weft CBOR tensors assume a little-endian host')

/** The tensor's data as little-endian bytes (a view when possible). */
export function tensorBytes (t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
}

/** Builds tensor data from an owned, offset-0 byte copy. Returns null when the length does not fit the shape. */
export function dataFromBytes (dtype: Exclude<DType, 'bool'>, shape: readonly number[], bytes: Uint8Array): TensorData | null {
  const size = ELEMENT_BYTES[dtype]
  const count = numel(shape)
  if (bytes.byteLength !== count * size) return null
  // a copy unless `bytes` spans its whole buffer; Uint8Array's slice, since a Buffer's `slice` is a view into its pool
  const buffer = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : Uint8Array.prototype.slice.call(bytes).buffer
  switch (dtype) {
    case 'uint8': return new Uint8Array(buffer, 0, count)
    case 'int8': return new Int8Array(buffer, 0, count)
    case 'int32': return new Int32Array(buffer, 0, count)
    case 'int64': return new BigInt64Array(buffer, 0, count)
    case 'float16': case 'bfloat16': return new Uint16Array(buffer, 0, count)
    case 'float32': return new Float32Array(buffer, 0, count)
    case 'float64': return new Float64Array(buffer, 0, count)
  }
}
