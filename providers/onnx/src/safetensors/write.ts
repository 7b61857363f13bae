/** Safetensors writer (and a whole-file reader into Weft tensors), used by `weft cache` and tests. */
import { closeSync, openSync, writeSync } from 'node:fs'
import { numel, WeftError, type DType, type Tensor } from '@weft/core'
import { readSafetensorsHeader, readTensorBytes } from './read.js'
import type { SafetensorsDType } from './dtype.js'

const TO_SAFETENSORS: Partial<Record<DType, SafetensorsDType>> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int8: 'I8', uint8: 'U8', bool: 'BOOL',
}
const FROM_SAFETENSORS: Partial<Record<SafetensorsDType, DType>> = Object.fromEntries(
  Object.entries(TO_SAFETENSORS).map(([k, v]) => [v, k])) as Partial<Record<SafetensorsDType, DType>>

/** Writes tensors (in the given key order) to `file` as safetensors; header padded to 8 bytes. */
export function writeSafetensors (file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {}
  let offset = 0
  const parts: Uint8Array[] = []
  for (const [name, tensor] of Object.entries(tensors)) {
    const dtype = TO_SAFETENSORS[tensor.dtype]
    if (dtype === undefined) throw new WeftError('EXECUTION_FAILED', `cannot write ${tensor.dtype} tensor '${name}' as safetensors`)
    if (tensor.data.length !== numel(tensor.shape)) throw new Error(`tensor '${name}': data length does not match shape`)
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)
    header[name] = { dtype, shape: [...tensor.shape], data_offsets: [offset, offset + bytes.byteLength] }
    parts.push(bytes)
    offset += bytes.byteLength
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8)
  const jsonBytes = Buffer.from(json, 'utf8')
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(BigInt(jsonBytes.byteLength))
  const fd = openSync(file, 'w')
  try {
    writeSync(fd, prefix)
    writeSync(fd, jsonBytes)
    for (const part of parts) writeSync(fd, part)
  } finally { closeSync(fd) }
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
