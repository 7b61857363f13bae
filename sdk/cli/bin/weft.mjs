#!/usr/bin/env node
// The `weft` command. Installed, it runs the built JavaScript (dist/). Inside the Weft checkout, where src/ is
// present, it runs the TypeScript sources: tsx compiles them, and the `@weft/source` export condition makes every
// @weft/* import resolve to its package's src/ (docs/decisions/2026-12-05-packaging.md).
import { existsSync } from 'node:fs'

const source = new URL('../src/main.ts', import.meta.url)
let main
if (existsSync(source)) {
  const { register } = await import('node:module')
  register('data:text/javascript,' + encodeURIComponent(
    'export const resolve = (specifier, context, next) => next(specifier, { ...context, conditions: [...context.conditions, "@weft/source"] })'))
  const { register: tsx } = await import('tsx/esm/api')
  tsx()
  ;({ main } = await import(source.href))
} else {
  ;({ main } = await import('../dist/main.js'))
}
process.exitCode = await main(process.argv.slice(2))
