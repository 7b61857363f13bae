// No dead code between the packages: every export, exported type and source file is used by something, every
// dependency a package.json lists is imported, and every package a file imports is listed (issue #10 asked to delete
// dead exports; this keeps new ones from arriving silently). Checked with knip, configured in knip.jsonc: each
// package's package.json `exports` and `bin` are entries (a published package's exports are its public API, never
// dead), as are tests, scripts and the files named there. A failure lists `file: name (kind)`: remove the export
// (or the `export` keyword when the file uses it itself), or, for a real entry knip cannot see, add it to knip.jsonc.
// Configuration hints fail too, so an entry pattern left matching nothing after a move is noticed.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const KNIP = path.join(root, 'node_modules', 'knip', 'bin', 'knip.js')
const KINDS = ['files', 'dependencies', 'unlisted', 'unresolved', 'binaries', 'exports', 'nsExports', 'types', 'nsTypes', 'enumMembers', 'duplicates']

interface Item { name: string }
type Row = { file: string } & Record<string, Item[] | Item[][] | unknown>

test('no unused exports, types, files or dependencies, no unlisted dependencies (knip)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-knip-'))
  try {
    const json = path.join(dir, 'knip.json')
    const args = [KNIP, '--no-progress', '--include', KINDS.join(','), '--treat-config-hints-as-errors',
      '--reporter', 'symbols', '--reporter', 'json', '--output-file', `json=${json}`]
    const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(process.execPath, args, { cwd: root, maxBuffer: 16 * 2 ** 20 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, output: `${stdout}${stderr}` })
      })
    })
    const report = JSON.parse(readFileSync(json, 'utf8')) as { issues: Row[] }
    // one line per finding, `file: name (kind)`, so a failure names what to remove
    const findings = report.issues.flatMap(row => KINDS.flatMap((kind) => {
      const items = (row[kind] ?? []) as (Item | Item[])[]
      return items.map(item => `${row.file}: ${kind === 'files' ? '(whole file)' : [item].flat().map(i => i.name).join(' = ')} (${kind})`)
    }))
    expect(findings).toEqual([])
    expect(code, output).toBe(0) // configuration hints (an unused ignore, an entry pattern with no matches) or a knip error
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
