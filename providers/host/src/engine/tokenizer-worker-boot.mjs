// Tokenizer worker entry when the host runs from its TypeScript sources (this checkout; the built package starts
// ./tokenizer-worker.js directly): every @weft/* import resolves to its package's src/ (the `@weft/source` export condition)
// and tsx compiles the sources in this thread.
import { register } from 'node:module'
import { register as tsx } from 'tsx/esm/api'
register('data:text/javascript,' + encodeURIComponent(
  'export const resolve = (specifier, context, next) => next(specifier, { ...context, conditions: [...context.conditions, "@weft/source"] })'))
tsx()
await import('./tokenizer-worker.ts')
