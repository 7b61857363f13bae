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
  }))
  return bytesToHex(sha256(new TextEncoder().encode(salt + JSON.stringify(shape))))
}
