/** DType ↔ ONNX TensorProto.DataType, for the intervention compiler. */
import type { DType } from '@weft/core'
import { onnx } from '../graph/onnx.js'

const T = onnx.TensorProto_DataType

export const ONNX_DTYPE: Record<DType, number> = {
  float32: T.FLOAT, float64: T.DOUBLE, float16: T.FLOAT16, bfloat16: T.BFLOAT16,
  int64: T.INT64, int32: T.INT32, int8: T.INT8, uint8: T.UINT8, bool: T.BOOL,
}

export function dtypeFromOnnx (code: number): DType {
  for (const [name, value] of Object.entries(ONNX_DTYPE)) if (value === code) return name as DType
  throw new Error(`ONNX data type ${code} has no Weft dtype`)
}
