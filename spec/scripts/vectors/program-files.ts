/** Vector files for Programs against the demo-gpt2 manifest, shared by the trace-mode and generate-mode suites. */
import { encodeProgram, programDigest, inferProgramTypes, toHex, toJsonForm, type Manifest, type Program } from '@weft/core'
import type { VectorFile } from './types.js'

type SavedTypes = Record<string, { shape: (number | string)[]; dtype: string }>
export type PassCase = [id: string, title: string, p: Program, saves: SavedTypes]
export type FailCase = [id: string, title: string, p: Program, issues: string[]]

/** `programs/pass-<id>.json`: encoding, digest and the hand-written saved types, which must equal inference's. */
export function passProgramFile ([id, title, p, saves]: PassCase, manifest: Manifest): VectorFile {
  const types = inferProgramTypes(p, manifest)
  p.nodes.forEach(([op, attrs], i) => {
    if (op !== 'save') return
    const want = saves[attrs.name as string]
    if (JSON.stringify(want) !== JSON.stringify(types[i])) throw new Error(`${id}: save ${String(attrs.name)} infers ${JSON.stringify(types[i])}, expected ${JSON.stringify(want)}`)
  })
  return {
    path: `programs/pass-${id}.json`,
    body: { title: `program ${id}: ${title}`, input: { manifest: 'demo-gpt2', program: toJsonForm(p) }, output: { cbor_hex: toHex(encodeProgram(p)), digest: programDigest(p), saves } },
  }
}

/** `programs/fail-<id>.json`: the invalid Program and its hand-written expected issues. */
export function failProgramFile ([id, title, p, issues]: FailCase): VectorFile {
  return { path: `programs/fail-${id}.json`, body: { title: `program ${id}: ${title}`, fail: true, expect_error: 'PROGRAM_INVALID', input: { manifest: 'demo-gpt2', program: toJsonForm(p) }, output: { issues } } }
}
