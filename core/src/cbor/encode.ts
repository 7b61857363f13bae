/**
 * Deterministic CBOR encoder (RFC 8949 §4.2.1): shortest heads, definite lengths, map keys sorted bytewise,
 * integral numbers as integers, other numbers as the shortest float that round-trips. See docs/decisions/2026-11-27-cbor.md.
 */
import { WeftError } from '../errors/weft-error.js'
import { isTensor } from '../tensor/create.js'
import type { Tensor } from '../tensor/tensor.js'
import { compareBytes } from './hex.js'
import { DTYPE_TAGS, TAG_HOMOGENEOUS, TAG_MULTI_DIM, tensorBytes } from './tags.js'

/** A tagged CBOR item other than a tensor (e.g. COSE_Sign1 = tag 18). */
export class CborTag {
  constructor (readonly tag: number, readonly value: unknown) {}
}

const MAX_ENCODE_DEPTH = 256

class Writer {
  private buffer = new Uint8Array(256)
  private view = new DataView(this.buffer.buffer)
  length = 0

  private reserve (n: number): void {
    if (this.length + n <= this.buffer.length) return
    let size = this.buffer.length * 2
    while (size < this.length + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buffer.subarray(0, this.length))
    this.buffer = next
    this.view = new DataView(next.buffer)
  }

  byte (b: number): void { this.reserve(1); this.buffer[this.length++] = b }
  bytes (b: Uint8Array): void { this.reserve(b.length); this.buffer.set(b, this.length); this.length += b.length }
  uint (size: 2 | 4 | 8, v: number | bigint): void {
    this.reserve(size)
    if (size === 2) this.view.setUint16(this.length, Number(v))
    else if (size === 4) this.view.setUint32(this.length, Number(v))
    else this.view.setBigUint64(this.length, BigInt(v))
    this.length += size
  }

  float (size: 4 | 8, v: number): void {
    this.reserve(size)
    size === 4 ? this.view.setFloat32(this.length, v) : this.view.setFloat64(this.length, v)
    this.length += size
  }

  result (): Uint8Array { return this.buffer.slice(0, this.length) }
}

function head (w: Writer, major: number, n: number | bigint): void {
  const m = major << 5
  if (n < 24) w.byte(m | Number(n))
  else if (n < 0x100) { w.byte(m | 24); w.byte(Number(n)) } else if (n < 0x10000) { w.byte(m | 25); w.uint(2, n) } else if (n < 0x100000000) { w.byte(m | 26); w.uint(4, n) } else { w.byte(m | 27); w.uint(8, n) }
}

/** float16 bits when `v` is exactly representable as a half float, else null. */
export function halfBits (v: number): number | null {
  if (Number.isNaN(v)) return 0x7e00
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0
  const a = Math.abs(v)
  if (a === 0) return sign
  if (a === Infinity) return sign | 0x7c00
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e--
  if (2 ** (e + 1) <= a) e++
  if (e > 15) return null
  if (e < -14) {
    const m = a * 2 ** 24
    return Number.isInteger(m) && m < 1024 ? sign | m : null
  }
  const f = (a / 2 ** e) * 1024 - 1024
  return Number.isInteger(f) ? sign | ((e + 15) << 10) | f : null
}

function encodeNumber (w: Writer, v: number): void {
  if (Number.isSafeInteger(v) && !Object.is(v, -0)) return v >= 0 ? head(w, 0, v) : head(w, 1, -1 - v)
  const half = halfBits(v)
  if (half !== null) { w.byte(0xf9); w.uint(2, half) } else if (Math.fround(v) === v) { w.byte(0xfa); w.float(4, v) } else { w.byte(0xfb); w.float(8, v) }
}

function encodeBigint (w: Writer, v: bigint): void {
  if (v >= 0n && v < 2n ** 64n) return head(w, 0, v)
  if (v < 0n && v >= -(2n ** 64n)) return head(w, 1, -1n - v)
  throw new WeftError('ENCODE_FAILED', `integer ${v} does not fit in 64 bits`)
}

function encodeTensor (w: Writer, t: Tensor, depth: number): void {
  head(w, 6, TAG_MULTI_DIM)
  head(w, 4, 2)
  encodeItem(w, [...t.shape], depth + 1)
  if (t.dtype === 'bool') {
    head(w, 6, TAG_HOMOGENEOUS)
    head(w, 4, t.data.length)
    for (let i = 0; i < t.data.length; i++) w.byte(t.data[i] !== 0 ? 0xf5 : 0xf4)
    return
  }
  head(w, 6, DTYPE_TAGS[t.dtype])
  const bytes = tensorBytes(t)
  head(w, 2, bytes.length)
  w.bytes(bytes)
}

function encodeMap (w: Writer, entries: [unknown, unknown][], depth: number): void {
  const encoded = entries.map(([k, v]) => [encodeCborAt(k, depth + 1), v] as const)
  encoded.sort((a, b) => compareBytes(a[0], b[0]))
  for (let i = 1; i < encoded.length; i++) {
    if (compareBytes(encoded[i - 1]![0], encoded[i]![0]) === 0) throw new WeftError('ENCODE_FAILED', 'duplicate map key')
  }
  head(w, 5, encoded.length)
  for (const [k, v] of encoded) { w.bytes(k); encodeItem(w, v, depth + 1) }
}

function encodeItem (w: Writer, value: unknown, depth: number): void {
  if (depth > MAX_ENCODE_DEPTH) throw new WeftError('ENCODE_FAILED', `nesting deeper than ${MAX_ENCODE_DEPTH} (a cycle?)`)
  if (value === null) return w.byte(0xf6)
  if (value === true) return w.byte(0xf5)
  if (value === false) return w.byte(0xf4)
  if (typeof value === 'number') return encodeNumber(w, value)
  if (typeof value === 'bigint') return encodeBigint(w, value)
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8')
    head(w, 3, bytes.length)
    return w.bytes(bytes)
  }
  if (value instanceof Uint8Array) { head(w, 2, value.length); return w.bytes(value) }
  if (Array.isArray(value)) {
    head(w, 4, value.length)
    for (const item of value) encodeItem(w, item, depth + 1)
    return
  }
  if (value instanceof CborTag) { head(w, 6, value.tag); return encodeItem(w, value.value, depth + 1) }
  if (isTensor(value)) return encodeTensor(w, value, depth)
  if (value instanceof Map) return encodeMap(w, [...value.entries()], depth)
  if (typeof value === 'object' && !ArrayBuffer.isView(value)) {
    return encodeMap(w, Object.entries(value).filter(([, v]) => v !== undefined), depth)
  }
  throw new WeftError('ENCODE_FAILED', `cannot encode ${ArrayBuffer.isView(value) ? 'a bare typed array (wrap it in a tensor)' : typeof value}`)
}

function encodeCborAt (value: unknown, depth: number): Uint8Array {
  const w = new Writer()
  encodeItem(w, value, depth)
  return w.result()
}

/** Deterministic CBOR of a value: null, booleans, numbers, bigints, strings, Uint8Array, arrays, maps/objects, tensors, CborTag. */
export function encodeCbor (value: unknown): Uint8Array {
  return encodeCborAt(value, 0)
}
