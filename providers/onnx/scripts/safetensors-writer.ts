/**
 * Streaming safetensors writer: the header is computed from shapes up front, then each tensor's values are
 * pulled in chunks and written straight to disk, so multi-GB checkpoints never sit in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import { WeftError } from '@weft/core'

export type SafetensorsDType = 'float32' | 'float16' | 'bfloat16'

/** One tensor to write: `chunks()` yields its values in row-major order (any chunk sizes, total = numel). */
export interface TensorSource {
  name: string
  shape: number[]
  chunks: () => Iterable<Float32Array>
}

const CODES: Record<SafetensorsDType, { code: string; bytes: number }> = {
  float32: { code: 'F32', bytes: 4 },
  float16: { code: 'F16', bytes: 2 },
  bfloat16: { code: 'BF16', bytes: 2 },
}

export function numelOf (shape: number[]): number { return shape.reduce((a, b) => a * b, 1) }
export function bytesPerElement (dtype: SafetensorsDType): number { return CODES[dtype].bytes }

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** float32 → IEEE half bits, round to nearest even (overflow → ±Inf, underflow → subnormals/±0). */
export function float32ToHalfBits (value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exponent = (x >>> 23) & 0xff
  let mantissa = x & 0x7fffff
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0)
  const e = exponent - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mantissa |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    let bits = mantissa >>> shift
    const rest = mantissa & ((1 << shift) - 1)
    if (rest > half || (rest === half && (bits & 1) === 1)) bits++
    return sign | bits
  }
  let bits = (e << 10) | (mantissa >>> 13)
  const rest = mantissa & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && (bits & 1) === 1)) bits++ // may carry into the exponent: still correct
  return sign | bits
}

/** float32 → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function float32ToBfloat16Bits (value: number): number {
  f32[0] = value
  const x = u32[0]
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff
}

function encodeChunk (values: Float32Array, dtype: SafetensorsDType): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
  const out = new Uint16Array(values.length)
  const convert = dtype === 'float16' ? float32ToHalfBits : float32ToBfloat16Bits
  for (let i = 0; i < values.length; i++) out[i] = convert(values[i])
  return new Uint8Array(out.buffer)
}

/** The header bytes (length prefix + JSON padded with spaces to an 8-byte boundary). */
function safetensorsHeader (tensors: TensorSource[], dtype: SafetensorsDType, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata }
  let offset = 0
  for (const tensor of tensors) {
    const size = numelOf(tensor.shape) * CODES[dtype].bytes
    header[tensor.name] = { dtype: CODES[dtype].code, shape: tensor.shape, data_offsets: [offset, offset + size] }
    offset += size
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8)
  const body = Buffer.from(json, 'utf8')
  const out = new Uint8Array(8 + body.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true)
  out.set(body, 8)
  return out
}

function writeAll (fd: number, bytes: Uint8Array): number {
  let done = 0
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done)
  return done
}

/** Writes `tensors` (in the given order) to `file` as `dtype`; returns the number of bytes written. */
export function writeSafetensors (file: string, tensors: TensorSource[], dtype: SafetensorsDType): number {
  const names = new Set<string>()
  for (const tensor of tensors) {
    if (names.has(tensor.name)) throw new WeftError('MODEL_LOAD_FAILED', `safetensors writer: duplicate tensor ${tensor.name}`, { name: tensor.name })
    names.add(tensor.name)
  }
  const fd = openSync(file, 'w')
  try {
    const header = safetensorsHeader(tensors, dtype)
    let written = writeAll(fd, header)
    for (const tensor of tensors) {
      let count = 0
      for (const chunk of tensor.chunks()) {
        count += chunk.length
        written += writeAll(fd, encodeChunk(chunk, dtype))
      }
      if (count !== numelOf(tensor.shape)) throw new Error(`safetensors writer: ${tensor.name} produced ${count} values for shape [${tensor.shape}]`)
    }
    return written
  } finally {
    closeSync(fd)
  }
}
