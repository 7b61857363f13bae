/**
 * Structure key: a digest of the merged Programs with everything that is fed at run time removed (constant
 * values, token ids, lengths, source locations). Programs with equal keys share one compiled session.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { AttrValue, Program, Tensor } from '@weft/core'

function isTensor (value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && 'data' in value
}

/** Constants keep only dtype and rank: lowering depends on ranks, never on sizes. */
function strip (value: AttrValue): unknown {
  if (isTensor(value)) return { const: value.dtype, rank: value.shape.length }
  if (Array.isArray(value)) return value.map(strip)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.keys(value).sort().map(k => [k, strip((value as Record<string, AttrValue>)[k]!)]))
  }
  return value
}

export function structureKey (jobs: readonly { program: Program }[], salt = ''): string {
  const shape = jobs.map(({ program }) => ({
    invokes: program.invokes.length,
    nodes: program.nodes.map(([op, attrs, inputs]) => [op, strip(attrs), inputs]),
    params: program.params === undefined ? null : Object.entries(program.params).map(([name, d]) => [name, d.shape, d.dtype]),
  }))
  return bytesToHex(sha256(new TextEncoder().encode(salt + JSON.stringify(shape))))
}

/**
 * A cheap, exact fingerprint of a (text-resolved) Program, computed on every run instead of a digest:
 * `structure` is everything the compiled graph depends on (ops, attributes with constants as dtype + rank,
 * inputs, model, number of invokes) and is the session-cache key; `sizes` adds what only validation and type
 * inference depend on (invoke lengths, constant shapes). Equal `structure + sizes` means equal validation
 * outcome and equal inferred types, whatever the token ids, constant values and source locations.
 * Null when the Program holds anything outside plain data (then it is simply not cached).
 */
export interface ProgramFingerprint { structure: string; sizes: string }

const TOP_FIELDS = new Set(['version', 'model', 'mode', 'invokes', 'nodes', 'locations', 'params'])

class Unfingerprintable extends Error {}

export function programFingerprint (program: Program): ProgramFingerprint | null {
  const sizes: string[] = []
  try {
    const p = program as unknown as Record<string, unknown>
    if (!isPlainObject(p)) return null
    for (const key of Object.keys(p)) if (!TOP_FIELDS.has(key)) return null
    if (!Array.isArray(p.invokes) || !Array.isArray(p.nodes)) return null
    for (const invoke of p.invokes as unknown[]) {
      if (!isPlainObject(invoke)) return null
      const keys = Object.keys(invoke)
      if (keys.length !== 1 || keys[0] !== 'ids' || !Array.isArray(invoke.ids)) return null
      sizes.push(String(invoke.ids.length), ',')
    }
    let out = `${serial(p.version, sizes)}|${serial(p.model, sizes)}|${serial(p.mode, sizes)}|${p.invokes.length}|`
    // params: the compiled graph depends on names, shapes and dtypes (values are fed); ordering is the map's
    if (p.params !== undefined) out += `P${serial(paramShapes(p.params), sizes)}|`
    for (const node of p.nodes as unknown[]) {
      if (!Array.isArray(node) || node.length !== 3 || typeof node[0] !== 'string' || !isPlainObject(node[1]) || !Array.isArray(node[2])) return null
      out += `${JSON.stringify(node[0])}${serial(node[1], sizes)}${serial(node[2], sizes)};`
    }
    return { structure: out, sizes: sizes.join('') }
  } catch (error) {
    if (error instanceof Unfingerprintable) return null
    throw error
  }
}

/** Params without their initial values (which are fed at run time). */
function paramShapes (params: unknown): unknown {
  if (!isPlainObject(params)) throw new Unfingerprintable()
  return Object.fromEntries(Object.entries(params).map(([name, decl]) => {
    if (!isPlainObject(decl)) throw new Unfingerprintable()
    return [name, { shape: decl.shape, dtype: decl.dtype, init: isPlainObject(decl.init) ? Object.keys(decl.init) : null }]
  }))
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/** Injective serialisation of plain data; a tensor contributes dtype + rank here and its shape to `sizes`. */
function serial (value: unknown, sizes: string[]): string {
  switch (typeof value) {
    case 'number': return Object.is(value, -0) ? '-0' : String(value)
    case 'string': return JSON.stringify(value)
    case 'boolean': return value ? 't' : 'f'
    case 'undefined': return 'u'
    case 'object': {
      if (value === null) return 'n'
      if (Array.isArray(value)) {
        let out = '['
        for (const item of value) out += serial(item, sizes) + ','
        return out + ']'
      }
      if (isTensor(value) && isPlainObject(value) && Array.isArray(value.shape) && ArrayBuffer.isView(value.data)) {
        sizes.push(serial(value.shape, sizes))
        return `T${serial(value.dtype, sizes)}/${value.shape.length}`
      }
      if (!isPlainObject(value)) throw new Unfingerprintable()
      let out = '{'
      for (const key of Object.keys(value)) out += `${JSON.stringify(key)}:${serial(value[key], sizes)},`
      return out + '}'
    }
    default: throw new Unfingerprintable()
  }
}
