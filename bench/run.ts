/**
 * `npm run bench`: runs every suite in bench/suites/ (or those named on the command line), prints one table
 * per suite with ratios against a baseline measured in the same run, and writes bench/results.json.
 */
import { readdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import path from 'node:path'
import type { BenchSuite, BenchTable } from './harness.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const wanted = process.argv.slice(2)
const files = readdirSync(path.join(here, 'suites')).filter(f => f.endsWith('.ts')).sort()
const tables: BenchTable[] = []
console.log(`machine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`)
for (const file of files) {
  const suite = (await import(pathToFileURL(path.join(here, 'suites', file)).href)).default as BenchSuite
  if (wanted.length > 0 && !wanted.includes(suite.name)) continue
  const started = Date.now()
  const produced = await suite.run()
  for (const table of produced) { printTable(table); tables.push(table) }
  console.log(`(${suite.name}: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`)
}
writeFileSync(path.join(here, 'results.json'), JSON.stringify({ date: new Date().toISOString(), tables }, null, 2))

function printTable (table: BenchTable): void {
  console.log(`## ${table.title}`)
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map(r => String(r[i] ?? '').length)))
  const line = (cells: unknown[]): string => '| ' + cells.map((c, i) => String(c ?? '').padEnd(widths[i]!)).join(' | ') + ' |'
  console.log(line(table.columns))
  console.log('|' + widths.map(w => '-'.repeat(w + 2)).join('|') + '|')
  for (const row of table.rows) console.log(line(row))
  if (table.note) console.log(`\n${table.note}`)
  console.log()
}
