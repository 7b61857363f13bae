/**
 * The `weft` command line: help for every command lists every flag; every usage error prints ONE line naming the
 * problem followed by the usage, exits 2 and never shows a stack trace. Table-driven over every error path.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { commands, main, version } from '../src/main.js'

const root = path.resolve(import.meta.dirname, '../../..')
const dir = mkdtempSync(path.join(tmpdir(), 'weft-cli-'))
const existing = path.join(dir, 'exists.json')
writeFileSync(existing, '{}')

let out: string[]
let err: string[]
beforeEach(() => {
  out = []; err = []
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')) })
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(String(a.map(x => x instanceof Error ? x.stack : x).join(' '))) })
})
afterEach(() => { vi.restoreAllMocks() })

const stderr = (): string => err.join('\n')
const noStack = (text: string): void => { expect(text).not.toMatch(/\n\s+at |Error: |node:internal/) }

describe('help and version', () => {
  test('weft, weft --help and weft help list every command', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      out = []
      expect(await main(argv)).toBe(0)
      for (const name of Object.keys(commands)) expect(out.join('\n')).toContain(`  ${name}`)
    }
  })

  test('--version prints the package version', async () => {
    expect(await main(['--version'])).toBe(0)
    expect(out).toEqual([`weft ${version()}`])
    expect(version()).toMatch(/^\d+\.\d+\.\d+/)
  })

  const FLAGS: Record<string, string[]> = {
    cache: ['--text', '--ids', '--out', '--cache-dir', '--help'],
    inspect: ['--json', '--cache-dir', '--help'],
    keys: ['new', '--out', '--force', '--help'],
    directory: ['start', '--port', '--host', '--identity', '--bootstrap', '--quiet', '--help'],
    endorse: ['--key', '--provider', '--model', '--days', '--out', '--help'],
    provider: ['start', '--model', '--policy', '--allow', '--egress-per-day', '--egress-per-key-per-day', '--per-job-cap', '--forbid', '--operator-key',
      '--register', '--identity', '--port', '--db', '--durability', '--workers', '--isolation', '--intra-op-threads', '--batch-window-ms',
      '--max-batch-jobs', '--job-timeout-ms', '--batch-sizes', '--session-cache', '--directory', '--p2p-listen', 'org/name[@revision]'],
    workbench: ['--models', '--provider', '--directory', '--key', '--port', '--help'],
  }

  test.each(Object.keys(FLAGS))('weft %s --help lists every flag and exits 0', async (name) => {
    expect(await main([name, '--help'])).toBe(0)
    for (const flag of FLAGS[name]!) expect(out.join('\n')).toContain(flag)
    expect(await main(['help', name])).toBe(0)
  })
})

describe('usage errors: exit 2, one line naming the problem, then the usage, no stack', () => {
  const CASES: Array<[string[], RegExp]> = [
    [['frobnicate'], /^weft: unknown command 'frobnicate'$/],
    [['--frob'], /^weft: unknown option --frob$/],
    [['keys'], /^weft keys: missing the subcommand \(new\)$/],
    [['keys', 'old'], /^weft keys: unknown subcommand 'old' \(new\)$/],
    [['keys', 'new', 'extra'], /^weft keys: unexpected arguments: extra$/],
    [['keys', 'new', '--frob'], /^weft keys: unknown option --frob$/],
    [['keys', 'new', '--out'], /^weft keys: --out needs a value$/],
    [['keys', 'new', '--force=yes'], /^weft keys: --force takes no value$/],
    [['keys', 'new', '--out', existing], /^weft keys: .*exists\.json exists; pass --force to replace it/],
    [['provider'], /^weft provider: missing the subcommand \(start\)$/],
    [['provider', 'stop'], /^weft provider: unknown subcommand 'stop' \(start\)$/],
    [['provider', 'start'], /^weft provider: missing --model$/],
    [['provider', 'start', '--model'], /^weft provider: --model needs a value$/],
    [['provider', 'start', '--modle', 'x'], /^weft provider: unknown option --modle$/],
    [['provider', 'start', '--model', 'm', '--port', 'eighty'], /^weft provider: --port must be a non-negative integer, not 'eighty'$/],
    [['provider', 'start', '--model', 'm', '--workers', '-1'], /^weft provider: --workers/],
    [['provider', 'start', '--model', 'm', '--policy', 'lax'], /^weft provider: --policy is open, allow-list or closed, not 'lax'$/],
    [['provider', 'start', '--model', 'm', '--durability', 'max'], /^weft provider: --durability is normal or full, not 'max'$/],
    [['provider', 'start', '--model', 'm', '--batch-sizes', 'odd'], /^weft provider: --batch-sizes is pow2 or any, not 'odd'$/],
    [['provider', 'start', '--model', 'm', '--isolation', 'vm'], /^weft provider: --isolation is thread or process, not 'vm'$/],
    [['cache'], /^weft cache: missing the model path$/],
    [['cache', 'm', 'n'], /^weft cache: unexpected arguments: n$/],
    [['cache', 'm', '--out', 'a.safetensors'], /^weft cache: give exactly one of --text or --ids$/],
    [['cache', 'm', '--text', 'a', '--ids', '1'], /^weft cache: give exactly one of --text or --ids$/],
    [['cache', 'm', '--text', 'a'], /^weft cache: missing --out <file.safetensors>$/],
    [['cache', 'm', '--ids'], /^weft cache: --ids needs a value$/],
    [['cache', 'm', '--frob'], /^weft cache: unknown option --frob$/],
    [['inspect'], /^weft inspect: missing the model path$/],
    [['inspect', 'm', '--json=1'], /^weft inspect: --json takes no value$/],
    [['inspect', 'm', '--cache-dir'], /^weft inspect: --cache-dir needs a value$/],
    [['directory'], /^weft directory: expected `start`$/],
    [['directory', 'stop'], /^weft directory: unexpected 'stop'$/],
    [['directory', 'start', '--frob'], /^weft directory: unknown option --frob$/],
    [['directory', 'start', '--port'], /^weft directory: --port needs a value$/],
    [['directory', 'start', '--port', 'x'], /^weft directory: --port must be an integer 0–65535, got 'x'$/],
    [['directory', 'start', '--host', 'localhost'], /^weft directory: --host must be an IPv4 address, got 'localhost'$/],
    [['directory', 'start', '--identity', path.join(dir, 'nokey.json')], /^weft directory: --identity .*nokey\.json: not a weft key file/],
    [['endorse'], /^weft endorse: --key, --provider and at least one --model are required$/],
    [['endorse', '--frob'], /^weft endorse: unknown option --frob$/],
    [['endorse', '--key'], /^weft endorse: --key needs a value$/],
    [['endorse', '--key', existing, '--provider', 'p', '--model', 'm', '--days', '999'], /^weft endorse: --days must be a number in \(0, 366\], got '999'$/],
    [['endorse', '--key', existing, '--provider', 'p', '--model', 'm'], /^weft endorse: --key .*exists\.json: not a weft key file/],
  ]

  test.each(CASES)('weft %j', async (argv, message) => {
    expect(await main(argv)).toBe(2)
    const [first, ...rest] = stderr().split('\n')
    expect(first).toMatch(message)
    expect(rest[0]).toMatch(/^usage: weft/)
    noStack(stderr())
    expect(out).toEqual([])
  })
})

describe('failures that are not usage errors: exit 1, one line, no stack', () => {
  test.each([
    [['inspect', path.join(dir, 'absent')], /^weft inspect: MODEL_NOT_FOUND: no such model file or folder/],
    [['inspect', 'nobody/no-model'], /^weft inspect: MODEL_NOT_FOUND: nobody\/no-model is not in the Hugging Face cache/],
    [['provider', 'start', '--model', 'm', '--operator-key', path.join(dir, 'nokey.json')], /^weft provider: KEY_FILE_INVALID: cannot read key file/],
  ])('weft %j', async (argv, message) => {
    expect(await main(argv)).toBe(1)
    expect(err).toHaveLength(1)
    expect(err[0]).toMatch(message)
    noStack(err[0]!)
  })
})

test('the installed binary: an unknown flag prints one line plus usage on stderr, exit 2, no stack trace', async () => {
  const run = promisify(execFile)
  const error = await run(path.join(root, 'node_modules', '.bin', 'weft'), ['provider', 'start', '--help-me'], { cwd: root }).then(() => null, (e: { code: number; stderr: string; stdout: string }) => e)
  expect(error).not.toBeNull()
  expect(error!.code).toBe(2)
  expect(error!.stderr.split('\n')[0]).toBe('weft provider: unknown option --help-me')
  expect(error!.stderr).toContain('usage: weft provider start')
  noStack(error!.stderr)
})
