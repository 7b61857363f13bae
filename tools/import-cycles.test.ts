// No import cycles in the sources of core, sdk, federation, providers/* and examples: a cycle makes module start-up
// order matter (a class read before its module ran is `undefined`) and tangles layers that should stack. Checked with
// dpdm (TypeScript's own parser, resolves our ESM `.js` specifiers to the `.ts` sources). Type-only imports count
// too: a type cycle is still two modules that cannot be read or moved apart (issue #10 named such cycles).
import { fileURLToPath } from 'node:url'
import { parseCircular, parseDependencyTree } from 'dpdm'
import { expect, test } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const SOURCES = ['core/src/**/*.ts', 'sdk/src/**/*.ts', 'federation/src/**/*.ts', 'providers/*/src/**/*.ts', 'examples/src/**/*.ts']

test('no import cycles among the packages\' sources (type-only imports included)', async () => {
  const tree = await parseDependencyTree(SOURCES, { cwd: root, context: root, transform: false, skipDynamicImports: false })
  const files = Object.keys(tree).filter(file => !file.includes('node_modules'))
  expect(files.length).toBeGreaterThan(150)
  // each cycle as `a.ts -> b.ts -> a.ts`, so a failure names the files to untangle
  const cycles = parseCircular(tree).map(cycle => [...cycle, cycle[0]].join(' -> '))
  expect(cycles).toEqual([])
}, 60_000)
