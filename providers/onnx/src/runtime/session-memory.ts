/**
 * What a compiled session costs in memory, estimated before it runs (the session cache also charges the RSS growth
 * it measures, whichever is larger). onnxruntime copies external initializers into its own buffers per session
 * (measured on demo-gpt2: each session adds about its weight bytes plus the arena of its first run), keeps the
 * serialized graph's inline tensors, and with prepacking a second, repacked copy of the MatMul weights.
 */
import { onnx } from '../graph/onnx.js'

/** onnx.TensorProto.DataType → bytes per element (FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, FLOAT16, DOUBLE, …, BFLOAT16). */
const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 }

/** Bytes of a model's initializers; `externalOnly`: only those whose data lives in external files. */
export function initializerBytes (model: onnx.ModelProto, externalOnly = false): number {
  let total = 0
  for (const tensor of model.graph?.initializer ?? []) {
    if (externalOnly && tensor.dataLocation !== onnx.TensorProto_DataLocation.EXTERNAL) continue
    let count = 1
    for (const d of tensor.dims) count *= Number(d)
    total += count * (ELEMENT_BYTES[tensor.dataType] ?? 4)
  }
  return total
}

/** The estimate: serialized graph (inline tensors included) + external weights loaded into it (+ their prepacked copy). */
export function sessionBytesEstimate (model: onnx.ModelProto, serializedBytes: number, prepacking: boolean): number {
  const external = initializerBytes(model, true)
  return serializedBytes + external + (prepacking ? initializerBytes(model) : 0)
}
