/** @weft/spec — loads the language-neutral test vectors in spec/vectors/<kind>/*.json (sorted by file name). */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export type VectorKind = 'cbor' | 'programs' | 'envelope' | 'ops' | 'records' | 'endorsements'

export interface Vector {
  /** file name without .json */
  id: string
  title: string
  description?: string
  /** true when the implementation must reject the input */
  fail?: boolean
  /** the error code a failing vector must produce */
  expect_error?: string
  input: Record<string, unknown>
  intermediates?: Record<string, unknown>
  output?: Record<string, unknown>
}

export const VECTORS_DIR = fileURLToPath(new URL('../vectors/', import.meta.url))

export function loadVectors (kind: VectorKind): Vector[] {
  const dir = join(VECTORS_DIR, kind)
  return readdirSync(dir)
    .filter(name => name.endsWith('.json'))
    .sort()
    .map(name => ({ id: name.slice(0, -5), ...JSON.parse(readFileSync(join(dir, name), 'utf8')) as Omit<Vector, 'id'> }))
}

/** A manifest the program vectors are checked against (spec/vectors/manifests/<name>.json). */
export function loadManifest (name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(VECTORS_DIR, 'manifests', `${name}.json`), 'utf8')) as Record<string, unknown>
}
