// The generated spec files are current: ops.md, errors.md and every vector regenerate byte-identically.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'
import { GENERATED_DOCS } from '../scripts/gen-docs.js'
import { buildVectors, renderVector } from '../scripts/gen-vectors.js'

const specDir = fileURLToPath(new URL('..', import.meta.url))
const hint = 'run `npx tsx spec/scripts/gen-docs.ts && npx tsx spec/scripts/gen-vectors.ts` and commit the result'

for (const [name, render] of Object.entries(GENERATED_DOCS)) {
  test(`spec/${name} is current`, () => {
    expect(readFileSync(join(specDir, name), 'utf8') === render(), `spec/${name} is stale: ${hint}`).toBe(true)
  })
}

test('spec/vectors are current and complete', () => {
  const files = buildVectors()
  for (const file of files) {
    const path = join(specDir, 'vectors', file.path)
    expect(readFileSync(path, 'utf8') === renderVector(file), `${file.path} is stale: ${hint}`).toBe(true)
  }
  const expected = new Set(files.map(f => f.path))
  for (const kind of ['cbor', 'programs', 'envelope', 'ops', 'manifests']) {
    for (const name of readdirSync(join(specDir, 'vectors', kind))) {
      expect(expected.has(`${kind}/${name}`), `spec/vectors/${kind}/${name} is not generated: delete it or add it to the generator`).toBe(true)
    }
  }
})
