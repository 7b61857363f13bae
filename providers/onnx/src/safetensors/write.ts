/** Safetensors writer (and a whole-file reader into Weft tensors), used by `weft cache` and tests. */
import { WeftError, encodeSafetensors, writeParts, type DType, type Tensor } from '@weft/core'
import { readSafetensorsHeader, readTensorBytes } from './read.js'
import type { SafetensorsDType } from './dtype.js'

const TO_SAFETENSORS: Partial<Record<DType, SafetensorsDType>> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int8: 'I8', uint8: 'U8', bool: 'BOOL',
}
const FROM_SAFETENSORS: Partial<Record<SafetensorsDType, DType>> = Object.fromEntries(
  Object.entries(TO_SAFETENSORS).map(([k, v]) => [v, k])) as Partial<Record<SafetensorsDType, DType>>

/** Writes tensors (in the given key order) to `file` as safetensors; header padded to 8 bytes. */
export function writeSafetensors (file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  writeParts(file, encodeSafetensors(tensors, metadata))
}

/** Reads a whole safetensors file into Weft tensors (small files: activations, test fixtures). */
export function readSafetensors (file: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>()
  for (const entry of readSafetensorsHeader(file).tensors) {
    const dtype = FROM_SAFETENSORS[entry.dtype]
    if (dtype === undefined) throw new WeftError('MODEL_LOAD_FAILED', `${file}: tensor '${entry.name}' has unsupported dtype ${entry.dtype}`)
    const bytes = readTensorBytes(entry)
    const buffer = bytes.buffer as ArrayBuffer
    const data = dtype === 'float32' ? new Float32Array(buffer) : dtype === 'float64' ? new Float64Array(buffer)
      : dtype === 'int64' ? new BigInt64Array(buffer) : dtype === 'int32' ? new Int32Array(buffer)
        : dtype === 'int8' ? new Int8Array(buffer) : dtype === 'float16' || dtype === 'bfloat16' ? new Uint16Array(buffer) : bytes
    out.set(entry.name, { dtype, shape: entry.shape, data })
  }
  return out
}
