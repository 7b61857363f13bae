/**
 * The JSON form of Weft CBOR values, used by spec/vectors so any language can rebuild the exact value:
 * plain JSON for null/bool/int/text/arrays/text-keyed maps; tagged objects for the rest (see spec/README.md).
 */
import { WeftError } from '../errors/weft-error.js'
import type { DType } from '../tensor/tensor.js'
import { isTensor, tensor, toNested, type NestedArray } from '../tensor/create.js'
import { CborTag } from './encode.js'
import { fromHex, toHex } from './hex.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

function floatForm (v: number): Json {
  if (Number.isNaN(v)) return { $float: 'NaN' }
  if (v === Infinity) return { $float: 'Infinity' }
  if (v === -Infinity) return { $float: '-Infinity' }
  if (Object.is(v, -0)) return { $float: '-0' }
  return v
}

export function toJsonForm (value: unknown): Json {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') return floatForm(value)
  if (typeof value === 'bigint') return { $bigint: value.toString() }
  if (value instanceof Uint8Array) return { $bytes: toHex(value) }
  if (Array.isArray(value)) return value.map(toJsonForm)
  if (value instanceof CborTag) return { $tag: value.tag, value: toJsonForm(value.value) }
  if (isTensor(value)) {
    const raw = value.dtype === 'float16' || value.dtype === 'bfloat16'
    return { $tensor: { dtype: value.dtype, shape: [...value.shape], data: raw ? Array.from(value.data as Uint16Array) : toJsonForm(toNested(value)) } }
  }
  if (value instanceof Map) return { $map: [...value.entries()].map(([k, v]) => [toJsonForm(k), toJsonForm(v)]) }
  if (typeof value === 'object') {
    const out: Record<string, Json> = {}
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonForm(v)
    return out
  }
  throw new WeftError('ENCODE_FAILED', `no JSON form for ${typeof value}`)
}

const FLOATS: Record<string, number> = { NaN, Infinity, '-Infinity': -Infinity, '-0': -0 }

export function fromJsonForm (json: unknown): unknown {
  if (json === null || typeof json !== 'object') return json
  if (Array.isArray(json)) return json.map(fromJsonForm)
  const o = json as Record<string, unknown>
  if ('$float' in o) return FLOATS[o.$float as string]
  if ('$bigint' in o) return BigInt(o.$bigint as string)
  if ('$bytes' in o) return fromHex(o.$bytes as string)
  if ('$tag' in o) return new CborTag(o.$tag as number, fromJsonForm(o.value))
  if ('$map' in o) return new Map((o.$map as [unknown, unknown][]).map(([k, v]) => [fromJsonForm(k), fromJsonForm(v)]))
  if ('$tensor' in o) {
    const t = o.$tensor as { dtype: DType; shape: number[]; data: unknown }
    if (t.dtype === 'float16' || t.dtype === 'bfloat16') return tensor(Uint16Array.from(t.data as number[]), t.shape, t.dtype)
    const leaves = fromJsonForm(t.data) as NestedArray
    return tensor(t.dtype === 'int64' ? toBig(leaves) : leaves, t.shape, t.dtype)
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) out[k] = fromJsonForm(v)
  return out
}

function toBig (value: NestedArray): NestedArray {
  return Array.isArray(value) ? value.map(toBig) : BigInt(value as number | bigint)
}
