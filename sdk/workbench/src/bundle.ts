/**
 * The page's bundle: web/main.tsx (preact) built by esbuild into dist/web/. `npm run build` builds it; the server
 * (and so `weft workbench` and the tests from a fresh clone) builds it on demand when it is missing or older than
 * its sources, so nothing generated is committed and nothing is fetched at run time.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const WEB_SOURCE = fileURLToPath(new URL('../web', import.meta.url))
const SHARED_SOURCE = fileURLToPath(new URL('./shared', import.meta.url))
export const WEB_OUT = fileURLToPath(new URL('../dist/web', import.meta.url))

const BUNDLE_FILES = ['app.js', 'app.css'] as const

function newest (dir: string): number {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

/** True when dist/web holds a bundle at least as new as web/ and src/shared/. */
function bundleIsCurrent (): boolean {
  if (!BUNDLE_FILES.every(f => existsSync(join(WEB_OUT, f)))) return false
  const built = Math.min(...BUNDLE_FILES.map(f => statSync(join(WEB_OUT, f)).mtimeMs))
  return built >= Math.max(newest(WEB_SOURCE), newest(SHARED_SOURCE))
}

let building: Promise<void> | null = null

/** Builds the bundle (minified, one JS and one CSS file) with esbuild. */
export async function buildBundle (): Promise<void> {
  const esbuild = await import('esbuild')
  await esbuild.build({
    entryPoints: { app: join(WEB_SOURCE, 'main.tsx') },
    outdir: WEB_OUT,
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    loader: { '.css': 'css' },
    logLevel: 'warning',
    legalComments: 'none',
  })
}

/** Builds the bundle unless it is current (once per process; concurrent callers share the build). */
export async function ensureBundle (): Promise<void> {
  if (bundleIsCurrent()) return
  building ??= buildBundle().finally(() => { building = null })
  await building
}
