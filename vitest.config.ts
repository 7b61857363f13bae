import { defineConfig } from 'vitest/config'

// `@weft/source` (each package's exports) resolves @weft/* imports to their TypeScript sources, so tests run the
// sources without a build (docs/decisions/2026-12-05-packaging.md); the rest are Vite's default server conditions.
const conditions = ['@weft/source', 'module', 'node', 'development|production']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@weft/source'] } },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './tools/summary-reporter.ts'],
  },
})
