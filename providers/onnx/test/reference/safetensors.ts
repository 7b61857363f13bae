/**
 * Minimal safetensors reader for the test oracle: single files and sharded checkpoints, every float dtype
 * upcast to float64. Deliberately simple (reads whole files); the engine's loader lives in src/safetensors.
 */
import { readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { WeftError, halfToNumber } from '@weft/core'

export interface Tensor64 { shape: number[]; data: Float64Array }

interface HeaderEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

/** Parses the JSON header of a safetensors buffer; returns the entries and where the data section starts. */
export function parseSafetensorsHeader (bytes: Uint8Array, file = '<buffer>'): { entries: Map<string, HeaderEntry>; dataStart: number } {
  if (bytes.byteLength < 8) throw new WeftError('MODEL_LOAD_FAILED', `${file}: too short to be a safetensors file`, { file })
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = Number(view.getBigUint64(0, true))
  if (8 + headerLength > bytes.byteLength) {
    throw new WeftError('MODEL_LOAD_FAILED', `${file}: header length ${headerLength} exceeds the file size`, { file })
  }
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>
  const entries = new Map<string, HeaderEntry>()
  for (const [name, value] of Object.entries(json)) {
    if (name !== '__metadata__') entries.set(name, value as HeaderEntry)
  }
  return { entries, dataStart: 8 + headerLength }
}

/** Converts one IEEE half-precision bit pattern to a number (core's converter, re-exported for the oracle's tests). */
export { halfToNumber }

/** Converts one bfloat16 bit pattern (the top 16 bits of a float32) to a number. */
function bfloat16ToNumber (bits: number): number {
  const scratch = new DataView(new ArrayBuffer(4))
  scratch.setUint32(0, (bits & 0xffff) << 16 >>> 0, true)
  return scratch.getFloat32(0, true)
}

function decode (bytes: Uint8Array, entry: HeaderEntry, name: string, file: string): Float64Array {
  const count = entry.shape.reduce((a, b) => a * b, 1)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Float64Array(count)
  const read: Record<string, [number, (offset: number) => number]> = {
    F64: [8, (o) => view.getFloat64(o, true)],
    F32: [4, (o) => view.getFloat32(o, true)],
    F16: [2, (o) => halfToNumber(view.getUint16(o, true))],
    BF16: [2, (o) => bfloat16ToNumber(view.getUint16(o, true))],
    I64: [8, (o) => Number(view.getBigInt64(o, true))],
    I32: [4, (o) => view.getInt32(o, true)],
  }
  const reader = read[entry.dtype]
  if (reader === undefined) {
    throw new WeftError('MODEL_LOAD_FAILED', `${file}: tensor ${name} has unsupported dtype ${entry.dtype}`, { file, name })
  }
  const [size, get] = reader
  if (bytes.byteLength !== count * size) {
    throw new WeftError('MODEL_LOAD_FAILED', `${file}: tensor ${name} has ${bytes.byteLength} bytes, expected ${count * size}`, { file, name })
  }
  for (let i = 0; i < count; i++) out[i] = get(i * size)
  return out
}

/** Reads every tensor of one safetensors file as float64. */
export async function readSafetensors (file: string): Promise<Map<string, Tensor64>> {
  const bytes = new Uint8Array(await readFile(file))
  const { entries, dataStart } = parseSafetensorsHeader(bytes, file)
  const out = new Map<string, Tensor64>()
  for (const [name, entry] of entries) {
    const [begin, end] = entry.data_offsets
    out.set(name, { shape: entry.shape, data: decode(bytes.subarray(dataStart + begin, dataStart + end), entry, name, file) })
  }
  return out
}

/** Reads a checkpoint folder's weights: `model.safetensors`, or the shards listed in `model.safetensors.index.json`. */
export async function readCheckpointWeights (dir: string): Promise<Map<string, Tensor64>> {
  const single = join(dir, 'model.safetensors')
  if (existsSync(single)) return readSafetensors(single)
  const indexFile = join(dir, 'model.safetensors.index.json')
  if (!existsSync(indexFile)) {
    throw new WeftError('MODEL_LOAD_FAILED', `${dir}: neither model.safetensors nor model.safetensors.index.json exists`, { dir })
  }
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as { weight_map: Record<string, string> }
  const out = new Map<string, Tensor64>()
  for (const shard of [...new Set(Object.values(index.weight_map))].sort()) {
    for (const [name, tensor] of await readSafetensors(join(dir, shard))) out.set(name, tensor)
  }
  for (const name of Object.keys(index.weight_map)) {
    if (!out.has(name)) throw new WeftError('MODEL_LOAD_FAILED', `${dir}: index lists ${name} but its shard lacks it`, { dir, name })
  }
  return out
}
