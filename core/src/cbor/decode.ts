/**
 * Bounded, strict CBOR decoder for untrusted bytes: every length is checked against the remaining input before
 * allocating; depth, item and string limits; only the deterministic encoding produced by encode.ts is accepted.
 */
import { WeftError } from '../errors/weft-error.js'
import type { Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import { halfToNumber } from '../tensor/half.js'
import { CborTag, halfBits } from './encode.js'
import { compareBytes } from './hex.js'
import { TAG_DTYPES, TAG_HOMOGENEOUS, TAG_MULTI_DIM, dataFromBytes } from './tags.js'

export interface DecodeLimits {
  /** total input size (default 64 MiB) */
  maxBytes: number
  /** nesting of arrays, maps and tags (default 32) */
  maxDepth: number
  /** array elements plus map entries over the whole input (default 1,000,000) */
  maxItems: number
  /** one text or byte string (default 64 MiB: tensor data travels as byte strings) */
  maxStringBytes: number
}

export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxBytes: 64 * 1024 * 1024, maxDepth: 32, maxItems: 1_000_000, maxStringBytes: 64 * 1024 * 1024,
})

const utf8 = new TextDecoder('utf-8', { fatal: true })

function bad (message: string, pos: number): never {
  throw new WeftError('DECODE_FAILED', `CBOR: ${message} at byte ${pos}`, { offset: pos })
}

class Reader {
  pos = 0
  items = 0
  private readonly view: DataView
  constructor (private readonly bytes: Uint8Array, private readonly limits: DecodeLimits) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  remaining (): number { return this.bytes.length - this.pos }

  need (n: number): void {
    if (n > this.remaining()) bad(`declared length ${n} exceeds the ${this.remaining()} remaining bytes`, this.pos)
  }

  /** Reads an initial byte's argument, enforcing the shortest form. */
  argument (info: number, start: number): number | bigint {
    if (info < 24) return info
    if (info === 31) bad('indefinite length is not allowed', start)
    if (info > 27) bad(`reserved additional info ${info}`, start)
    const size = 1 << (info - 24)
    this.need(size)
    let v: number | bigint
    if (size === 1) v = this.view.getUint8(this.pos)
    else if (size === 2) v = this.view.getUint16(this.pos)
    else if (size === 4) v = this.view.getUint32(this.pos)
    else {
      const big = this.view.getBigUint64(this.pos)
      v = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big
    }
    this.pos += size
    const min = size === 1 ? 24 : 2 ** (8 * (size / 2))
    if (v < min) bad('integer or length not in its shortest form', start)
    return v
  }

  length (info: number, start: number): number {
    const n = this.argument(info, start)
    if (typeof n === 'bigint') bad('length too large', start)
    return n
  }

  countItems (n: number, start: number): void {
    this.items += n
    if (this.items > this.limits.maxItems) bad(`more than ${this.limits.maxItems} items`, start)
  }

  item (depth: number): unknown {
    if (depth > this.limits.maxDepth) bad(`nesting deeper than ${this.limits.maxDepth}`, this.pos)
    this.need(1)
    const start = this.pos
    const initial = this.bytes[this.pos++]!
    const major = initial >> 5
    const info = initial & 0x1f
    switch (major) {
      case 0: return this.argument(info, start)
      case 1: {
        const n = this.argument(info, start)
        return typeof n === 'bigint' || n >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(n) : -1 - n
      }
      case 2: return this.string(info, start).slice()
      case 3: {
        try { return utf8.decode(this.string(info, start)) } catch { return bad('invalid UTF-8 in text string', start) }
      }
      case 4: return this.array(info, start, depth)
      case 5: return this.map(info, start, depth)
      case 6: return this.tag(info, start, depth)
      default: return this.simple(info, start)
    }
  }

  string (info: number, start: number): Uint8Array {
    const n = this.length(info, start)
    if (n > this.limits.maxStringBytes) bad(`string of ${n} bytes exceeds the limit of ${this.limits.maxStringBytes}`, start)
    this.need(n)
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  array (info: number, start: number, depth: number): unknown[] {
    const n = this.length(info, start)
    this.need(n)
    this.countItems(n, start)
    const out: unknown[] = []
    for (let i = 0; i < n; i++) out.push(this.item(depth + 1))
    return out
  }

  map (info: number, start: number, depth: number): Record<string, unknown> | Map<unknown, unknown> {
    const n = this.length(info, start)
    this.need(2 * n)
    this.countItems(n, start)
    const entries: [unknown, unknown][] = []
    let previous: Uint8Array | null = null
    for (let i = 0; i < n; i++) {
      const keyStart = this.pos
      const key = this.item(depth + 1)
      const keyBytes = this.bytes.subarray(keyStart, this.pos)
      if (typeof key !== 'string' && typeof key !== 'number') bad('map keys must be integers or text', keyStart)
      if (previous !== null) {
        const order = compareBytes(previous, keyBytes)
        if (order === 0) bad('duplicate map key', keyStart)
        if (order > 0) bad('map keys not in deterministic (bytewise) order', keyStart)
      }
      previous = keyBytes
      entries.push([key, this.item(depth + 1)])
    }
    if (entries.every(([k]) => typeof k === 'string')) {
      const out = Object.create(null) as Record<string, unknown>
      for (const [k, v] of entries) out[k as string] = v
      return out
    }
    return new Map(entries)
  }

  tag (info: number, start: number, depth: number): unknown {
    const tag = this.argument(info, start)
    if (typeof tag === 'bigint') bad('tag number too large', start)
    const value = this.item(depth + 1)
    if (tag === TAG_MULTI_DIM) return tensorFrom(value, start)
    return new CborTag(tag, value)
  }

  simple (info: number, start: number): unknown {
    if (info === 20) return false
    if (info === 21) return true
    if (info === 22) return null
    if (info < 25 || info > 27) bad(`unsupported simple value ${info}`, start)
    const size = 1 << (info - 24)
    this.need(size)
    let v: number
    if (size === 2) v = halfToNumber(this.view.getUint16(this.pos))
    else if (size === 4) v = this.view.getFloat32(this.pos)
    else v = this.view.getFloat64(this.pos)
    const raw = size === 2 ? this.view.getUint16(this.pos) : -1
    this.pos += size
    checkFloatForm(v, size, raw, start)
    return v
  }
}

/** Rejects floats the encoder would have written differently (integral values, longer-than-needed forms, other NaNs). */
function checkFloatForm (v: number, size: number, rawHalf: number, start: number): void {
  if (Number.isSafeInteger(v) && !Object.is(v, -0)) bad('integral value encoded as a float', start)
  if (Number.isNaN(v) && rawHalf !== 0x7e00) bad('NaN must be encoded as f97e00', start)
  if (size > 2 && halfBits(v) !== null) bad('float not in its shortest form', start)
  if (size > 4 && Math.fround(v) === v) bad('float not in its shortest form', start)
}

function tensorFrom (value: unknown, start: number): Tensor {
  if (!Array.isArray(value) || value.length !== 2) bad('tag 40 must wrap [shape, data]', start)
  const [shape, body] = value
  if (!Array.isArray(shape) || !shape.every(d => typeof d === 'number' && Number.isInteger(d) && d >= 0)) bad('tensor shape must be a list of non-negative integers', start)
  if (body instanceof CborTag && body.tag === TAG_HOMOGENEOUS) {
    const flags = body.value
    if (!Array.isArray(flags) || !flags.every(b => typeof b === 'boolean') || flags.length !== numel(shape)) bad('bool tensor must be 41([booleans]) filling its shape', start)
    return { dtype: 'bool', shape, data: Uint8Array.from(flags, b => b ? 1 : 0) }
  }
  const dtype = body instanceof CborTag ? TAG_DTYPES.get(body.tag) : undefined
  if (dtype === undefined || !(body instanceof CborTag) || !(body.value instanceof Uint8Array)) bad('tensor data must be a supported RFC 8746 little-endian typed array', start)
  const data = dataFromBytes(dtype, shape, body.value)
  if (data === null) bad(`tensor data of ${body.value.length} bytes does not fit ${dtype}[${shape.join(',')}]`, start)
  return { dtype, shape, data }
}

/** Decodes exactly one deterministic CBOR item; anything else throws DECODE_FAILED (PAYLOAD_TOO_LARGE over maxBytes). */
export function decodeCbor (bytes: Uint8Array, limits?: Partial<DecodeLimits>): unknown {
  const bounds = { ...DEFAULT_DECODE_LIMITS, ...limits }
  if (!(bytes instanceof Uint8Array)) throw new WeftError('DECODE_FAILED', 'CBOR input must be a Uint8Array')
  if (bytes.length > bounds.maxBytes) throw new WeftError('PAYLOAD_TOO_LARGE', `CBOR input of ${bytes.length} bytes exceeds the limit of ${bounds.maxBytes}`)
  const reader = new Reader(bytes, bounds)
  const value = reader.item(0)
  if (reader.remaining() !== 0) bad(`${reader.remaining()} trailing bytes after the item`, reader.pos)
  return value
}
