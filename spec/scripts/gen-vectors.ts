/** Generates spec/vectors/**.json (reproducible: fixed keys and times). Run: npx tsx spec/scripts/gen-vectors.ts */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeCbor, fromJsonForm, toHex } from '@weft/core'
import { cborVectors, CBOR_EXPECTED } from './vectors/cbor.js'
import { programVectors, manifestFile } from './vectors/programs.js'
import { generateVectors } from './vectors/generate.js'
import { sessionVectors } from './vectors/sessions.js'
import { envelopeVectors } from './vectors/envelope.js'
import { opVectors } from './vectors/ops.js'
import type { VectorFile } from './vectors/types.js'

export function buildVectors (): VectorFile[] {
  const cbor = cborVectors()
  for (const [id, hex] of Object.entries(CBOR_EXPECTED)) {
    const file = cbor.find(f => f.path === `cbor/pass-${id}.json`)
    const value = fromJsonForm((file?.body.input as { value: unknown }).value)
    if (toHex(encodeCbor(value)) !== hex) throw new Error(`cbor ${id}: encoder gives ${toHex(encodeCbor(value))}, hand-checked ${hex}`)
  }
  return [...cbor, ...programVectors(), ...generateVectors(), ...sessionVectors(), manifestFile(), ...envelopeVectors(), ...opVectors()]
}

/** Pretty JSON with arrays of scalars kept on one line (tensors and token ids stay readable). */
function pretty (value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.every(v => v === null || typeof v !== 'object')) return JSON.stringify(value)
    return `[\n${value.map(v => indent + '  ' + pretty(v, indent + '  ')).join(',\n')}\n${indent}]`
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    if (entries.length === 0) return '{}'
    return `{\n${entries.map(([k, v]) => `${indent}  ${JSON.stringify(k)}: ${pretty(v, indent + '  ')}`).join(',\n')}\n${indent}}`
  }
  return JSON.stringify(value)
}

export function renderVector (file: VectorFile): string {
  return pretty(file.body, '') + '\n'
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors')
  for (const file of buildVectors()) {
    mkdirSync(dirname(join(root, file.path)), { recursive: true })
    writeFileSync(join(root, file.path), renderVector(file))
  }
  console.log('wrote vectors to', root)
}
