/** Tensors as they cross every boundary in Weft: dtype, shape, row-major typed-array data. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool'

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
