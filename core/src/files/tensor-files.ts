/**
 * Tensors to files Python tools read: safetensors (https://github.com/huggingface/safetensors: u64 LE header
 * length, JSON header padded with spaces to 8 bytes, little-endian row-major data) and NumPy `.npy` format 1.0
 * (magic `\x93NUMPY`, version 1.0, u16 LE header length, a Python dict literal padded with spaces and `\n` so the
 * data starts on a 64-byte boundary, then C-order data).
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { WeftError } from '../errors/weft-error.js'
import { numel, type DType, type Tensor } from '../tensor/tensor.js'

const SAFETENSORS_DTYPE: Record<DType, string> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int8: 'I8', uint8: 'U8', bool: 'BOOL',
}
/** numpy dtype strings (`descr`); bfloat16 has none */
const NPY_DESCR: Partial<Record<DType, string>> = {
  float32: '<f4', float64: '<f8', float16: '<f2', int64: '<i8', int32: '<i4', int8: '|i1', uint8: '|u1', bool: '|b1',
}

function bytesOf (name: string, tensor: Tensor): Uint8Array {
  if (tensor.data.length !== numel(tensor.shape)) throw new WeftError('ENCODE_FAILED', `tensor '${name}': ${tensor.data.length} values do not fill shape [${tensor.shape.join(', ')}]`, { name })
  return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)
}

/** The safetensors file for `tensors` (in key order) as byte parts to write in order. */
export function encodeSafetensors (tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {}
  const parts: Uint8Array[] = []
  let offset = 0
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new WeftError('ENCODE_FAILED', "'__metadata__' is reserved in safetensors and cannot name a tensor")
    const dtype = SAFETENSORS_DTYPE[tensor.dtype]
    if (dtype === undefined) throw new WeftError('ENCODE_FAILED', `tensor '${name}' has dtype ${String(tensor.dtype)}, which safetensors cannot hold`, { name })
    const bytes = bytesOf(name, tensor)
    header[name] = { dtype, shape: [...tensor.shape], data_offsets: [offset, offset + bytes.byteLength] }
    parts.push(bytes)
    offset += bytes.byteLength
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8)
  const jsonBytes = new Uint8Array(Buffer.from(json, 'utf8'))
  const prefix = new Uint8Array(8)
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true)
  return [prefix, jsonBytes, ...parts]
}

/** One tensor as an `.npy` file (format 1.0) in byte parts. */
export function encodeNpy (tensor: Tensor, name = 'tensor'): Uint8Array[] {
  const descr = NPY_DESCR[tensor.dtype]
  if (descr === undefined) throw new WeftError('ENCODE_FAILED', `tensor '${name}' is ${tensor.dtype}, which numpy has no dtype for; save it as .safetensors, or cast it to float32 first`, { name })
  const shape = tensor.shape.length === 1 ? `(${tensor.shape[0]},)` : `(${tensor.shape.join(', ')})`
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`
  const unpadded = 10 + dict.length + 1 // magic(6) + version(2) + length(2) + dict + '\n'
  const total = Math.ceil(unpadded / 64) * 64
  const headerText = dict + ' '.repeat(total - unpadded) + '\n'
  const head = new Uint8Array(10)
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  new DataView(head.buffer).setUint16(8, headerText.length, true)
  return [head, new Uint8Array(Buffer.from(headerText, 'latin1')), bytesOf(name, tensor)]
}

export function writeParts (file: string, parts: Uint8Array[]): void {
  const fd = openSync(file, 'w')
  try { for (const part of parts) writeSync(fd, part) } finally { closeSync(fd) }
}

/** Anything a trace returns: tensors, possibly in (nested) objects and arrays, plus plain values that are skipped. */
export type SavedValues = Tensor | { readonly [key: string]: unknown } | readonly unknown[]

function isTensorLike (value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && 'data' in value && ArrayBuffer.isView((value as Tensor).data)
}

/** Flattens nested objects/arrays of tensors to dotted names (`layers.3.attn`); other values are left out. */
export function flattenTensors (value: unknown, prefix = '', out: Record<string, Tensor> = {}): Record<string, Tensor> {
  if (isTensorLike(value)) { out[prefix === '' ? 'tensor' : prefix] = value; return out }
  if (typeof value === 'object' && value !== null) {
    for (const [key, inner] of Object.entries(value)) flattenTensors(inner, prefix === '' ? key : `${prefix}.${key}`, out)
  }
  return out
}

/**
 * Saves results for Python tools, by the path's form: `*.safetensors` (every tensor, one file), `*.npy` (exactly
 * one tensor), anything else a folder with one `<name>.npy` per tensor. Nested results become dotted names.
 * Returns the files written.
 */
export function saveTensors (path: string, values: SavedValues, metadata: Record<string, string> = {}): string[] {
  const tensors = flattenTensors(values)
  const names = Object.keys(tensors)
  if (names.length === 0) throw new WeftError('ENCODE_FAILED', `nothing to save to ${path}: no tensors in the value given`)
  if (path.endsWith('.safetensors')) { writeParts(path, encodeSafetensors(tensors, metadata)); return [path] }
  if (path.endsWith('.npy')) {
    if (names.length !== 1) throw new WeftError('ENCODE_FAILED', `${path}: an .npy file holds one tensor, got ${names.length} (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}); give a folder path for one .npy per tensor, or a .safetensors path`)
    writeParts(path, encodeNpy(tensors[names[0]!]!, names[0]))
    return [path]
  }
  mkdirSync(path, { recursive: true })
  const files: string[] = []
  for (const name of names) {
    if (name.includes('/') || name.includes('\\') || name === '.' || name === '..') throw new WeftError('ENCODE_FAILED', `tensor name '${name}' cannot be a file name`, { name })
    const file = join(path, `${name}.npy`)
    writeParts(file, encodeNpy(tensors[name]!, name))
    files.push(file)
  }
  return files
}
