/** Tensors as they cross every boundary in Weft: dtype, shape, row-major typed-array data. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool'

/** Bytes per element of each dtype (bool: one byte, as ONNX and the wire store it). The one table: CBOR, egress estimates and policies use it. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int8: 1, uint8: 1, bool: 1,
}

export type TensorData =
  | Float32Array | Float64Array | Uint16Array /* float16, bfloat16 raw bits */
  | BigInt64Array | Int32Array | Int8Array | Uint8Array /* uint8 and bool */

export interface Tensor {
  readonly dtype: DType
  readonly shape: readonly number[]
  readonly data: TensorData
}

export function numel (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}
