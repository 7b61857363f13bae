/**
 * Safetensors reader: bounded header parsing with typed errors, sharded checkpoints (model.safetensors.index.json),
 * and reading single tensors (optionally converted to float32) without loading whole files.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import path from 'node:path'
import { WeftError } from '@weft/core'
import { DTYPE_BYTES, isSafetensorsDType, toFloat32, type SafetensorsDType } from './dtype.js'

/** The safetensors format caps the JSON header at 100 MB. */
const MAX_HEADER_BYTES = 100_000_000

export interface TensorEntry {
  name: string
  dtype: SafetensorsDType
  shape: number[]
  /** absolute path of the file holding the tensor */
  file: string
  /** absolute byte offset of the tensor's data in `file` */
  offset: number
  length: number
}

export interface SafetensorsFile {
  file: string
  size: number
  metadata: Record<string, string>
  tensors: TensorEntry[]
}

export interface Checkpoint {
  dir: string
  /** weight file names relative to dir, sorted */
  files: string[]
  tensors: Map<string, TensorEntry>
}

function fail (file: string, message: string, details: Record<string, unknown> = {}): never {
  throw new WeftError('MODEL_LOAD_FAILED', `${path.basename(file)}: ${message}`, { file, ...details })
}

/** Parses and validates the header of one .safetensors file (reads only the header bytes). */
export function readSafetensorsHeader (file: string): SafetensorsFile {
  let fd: number
  try { fd = openSync(file, 'r') } catch (error) { fail(file, 'cannot open weight file', { cause: String(error) }) }
  try {
    const size = fstatSync(fd).size
    if (size < 8) fail(file, `file is ${size} bytes; a safetensors file starts with an 8-byte header length`)
    const prefix = Buffer.alloc(8)
    readSync(fd, prefix, 0, 8, 0)
    const headerBytes = prefix.readBigUInt64LE(0)
    if (headerBytes > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
      fail(file, `header length ${headerBytes} exceeds the file or the ${MAX_HEADER_BYTES}-byte limit`)
    }
    const headerLength = Number(headerBytes)
    const raw = Buffer.alloc(headerLength)
    readSync(fd, raw, 0, headerLength, 8)
    let header: unknown
    try { header = JSON.parse(raw.toString('utf8')) } catch { fail(file, 'header is not valid JSON') }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(file, 'header is not a JSON object')
    return parseEntries(file, size, 8 + headerLength, header as Record<string, unknown>)
  } finally {
    closeSync(fd)
  }
}

function parseEntries (file: string, size: number, dataStart: number, header: Record<string, unknown>): SafetensorsFile {
  const tensors: TensorEntry[] = []
  let metadata: Record<string, string> = {}
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = (value ?? {}) as Record<string, string>; continue }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (!isSafetensorsDType(info?.dtype)) fail(file, `tensor '${name}' has unsupported dtype ${JSON.stringify(info?.dtype)}`)
    const shape = info.shape
    if (!Array.isArray(shape) || !shape.every(d => Number.isSafeInteger(d) && d >= 0)) fail(file, `tensor '${name}' has an invalid shape`)
    const offsets = info.data_offsets
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(o => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      fail(file, `tensor '${name}' has invalid data_offsets`)
    }
    const length = offsets[1] - offsets[0]
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * DTYPE_BYTES[info.dtype]
    if (length !== expected) fail(file, `tensor '${name}' holds ${length} bytes but its shape and dtype need ${expected}`)
    if (dataStart + offsets[1] > size) fail(file, `tensor '${name}' extends past the end of the file (truncated download?)`)
    tensors.push({ name, dtype: info.dtype, shape: shape as number[], file, offset: dataStart + offsets[0], length })
  }
  return { file, size, metadata, tensors }
}

/** Opens a checkpoint folder: `model.safetensors`, or the shards listed in `model.safetensors.index.json`. */
export function openCheckpoint (dir: string): Checkpoint {
  const indexPath = path.join(dir, 'model.safetensors.index.json')
  let files: string[]
  if (existsSync(indexPath)) {
    let index: { weight_map?: Record<string, string> }
    try { index = JSON.parse(readFileSync(indexPath, 'utf8')) } catch { fail(indexPath, 'index is not valid JSON') }
    if (typeof index.weight_map !== 'object' || index.weight_map === null) fail(indexPath, 'index has no weight_map')
    files = [...new Set(Object.values(index.weight_map))].sort()
    for (const shard of files) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) fail(indexPath, `shard name ${JSON.stringify(shard)} is not a plain file name`)
    }
  } else if (existsSync(path.join(dir, 'model.safetensors'))) {
    files = ['model.safetensors']
  } else {
    throw new WeftError('MODEL_LOAD_FAILED', `no model.safetensors or model.safetensors.index.json in ${dir}`, { dir })
  }
  const tensors = new Map<string, TensorEntry>()
  for (const name of files) {
    for (const entry of readSafetensorsHeader(path.join(dir, name)).tensors) {
      if (tensors.has(entry.name)) fail(entry.file, `tensor '${entry.name}' appears in two shards`)
      tensors.set(entry.name, entry)
    }
  }
  return { dir, files, tensors }
}

/** Reads one tensor's raw bytes (a fresh buffer of exactly `entry.length` bytes). */
export function readTensorBytes (entry: TensorEntry): Uint8Array {
  const out = new Uint8Array(entry.length)
  const fd = openSync(entry.file, 'r')
  try {
    let done = 0
    while (done < entry.length) {
      const n = readSync(fd, out, done, entry.length - done, entry.offset + done)
      if (n === 0) fail(entry.file, `unexpected end of file reading '${entry.name}'`)
      done += n
    }
  } finally { closeSync(fd) }
  return out
}

/** Reads one float tensor converted to float32. */
export function readTensorF32 (entry: TensorEntry): Float32Array {
  if (!['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype)) fail(entry.file, `tensor '${entry.name}' is ${entry.dtype}, not a float tensor`)
  const bytes = readTensorBytes(entry)
  return entry.dtype === 'F32' ? new Float32Array(bytes.buffer, 0, entry.length / 4) : toFloat32(bytes, entry.dtype)
}
