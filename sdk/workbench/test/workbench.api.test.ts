/**
 * The workbench server without a browser: bad input answers a typed JSON error (never a 500), the `weft workbench`
 * flags, the downloads, and the code each form shows records exactly the Program the server runs (same digest).
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { decodeProgram, programDigest, UsageError, type Program } from '@weft/core'
import { Weft } from '@weft/sdk'
import { main } from '../../cli/src/main.js'
import { backendOptionsOf, createBackend, createWorkbenchApp, CapturingExecutor, withCapture, DEFAULTS, programSource, validateParams, type Backend, type ExperimentKind, type RunSummary, type WorkbenchApp } from '../src/index.js'

let backend: Backend
let workbench: WorkbenchApp

beforeAll(async () => {
  backend = await createBackend({ mode: 'embedded' })
  workbench = createWorkbenchApp(backend)
})
afterAll(async () => { await backend?.close() })

const request = async (path: string, init?: RequestInit): Promise<{ status: number; body: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await workbench.app.request(path, init)
  const type = response.headers.get('content-type') ?? ''
  return { status: response.status, body: type.includes('json') ? await response.json() : new Uint8Array(await response.arrayBuffer()) }
}
const post = (body: unknown): Promise<{ status: number; body: any }> => // eslint-disable-line @typescript-eslint/no-explicit-any
  request('/api/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })

const withoutLocations = ({ locations: _, ...program }: Program): string => programDigest(program as Program)

async function finished (id: string): Promise<RunSummary> {
  for (;;) {
    const { body } = await request(`/api/runs/${id}`)
    if (body.status === 'completed' || body.status === 'failed') return body as RunSummary
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('bad input is a typed error with a message, never a 500', () => {
  test.each([
    ['not JSON', '{', 400, 'DECODE_FAILED', 'not JSON'],
    ['an unknown experiment', { kind: 'tarot', model: 'demo-gpt2', params: {} }, 400, 'PROGRAM_INVALID', "unknown experiment 'tarot'"],
    ['no model', { kind: 'logit-lens', params: DEFAULTS['logit-lens'] }, 404, 'MODEL_NOT_FOUND', 'choose a model'],
    ['an unknown model', { kind: 'logit-lens', model: 'nope', params: DEFAULTS['logit-lens'] }, 404, 'MODEL_NOT_FOUND', "no model 'nope'"],
    ['an empty prompt', { kind: 'logit-lens', model: 'demo-gpt2', params: { prompt: ' ', topK: 3 } }, 400, 'PROGRAM_INVALID', 'prompt is empty'],
    ['a number as text', { kind: 'steering', model: 'demo-gpt2', params: { ...DEFAULTS.steering, layer: 'one' } }, 400, 'PROGRAM_INVALID', 'layer must be a whole number'],
    ['params that are not an object', { kind: 'attention', model: 'demo-gpt2', params: [1] }, 400, 'PROGRAM_INVALID', 'params must be an object'],
  ])('%s', async (_name, body, status, code, message) => {
    const response = await post(body)
    expect(response.status).toBe(status)
    expect(response.body.error.code).toBe(code)
    expect(response.body.error.message).toContain(message)
  })

  test('problems found while recording fail the run with a message: unequal prompts, multi-token answers, missing layers', async () => {
    const cases: [ExperimentKind, Record<string, unknown>, string][] = [
      ['patching', { ...DEFAULTS.patching, corrupt: 'When John went to the store' }, 'patching needs equal lengths'],
      ['patching', { ...DEFAULTS.patching, answer: ' Mary Jane' }, 'must be exactly one'],
      ['attention', { prompt: 'Hello', layer: 6 }, 'layer 6 does not exist: demo-gpt2 has layers 0–5'],
    ]
    for (const [kind, params, message] of cases) {
      const { status, body } = await post({ kind, model: 'demo-gpt2', params })
      expect(status).toBe(202)
      const run = await finished(body.id)
      expect(run.status).toBe('failed')
      expect(run.error!.code).toBe('PROGRAM_INVALID')
      expect(run.error!.message).toContain(message)
      expect((await request(`/api/runs/${body.id}/results.safetensors`)).body.error.code).toBe('JOB_NOT_READY')
    }
  })

  test('unknown runs, routes and assets are 404 JSON; other paths are the page (hash routes)', async () => {
    expect((await request('/api/runs/nope')).body.error.code).toBe('JOB_NOT_FOUND')
    expect((await request('/api/nothing')).status).toBe(404)
    expect((await request('/assets/secret.txt')).status).toBe(404)
    const page = await workbench.app.request('/anything')
    expect(await page.text()).toContain('<script type="module" src="/assets/app.js">')
  })
})

describe('the code a form shows records the Program the server runs', () => {
  /** Runs the shown source as written (it is plain JavaScript too), with `Weft.local()` capturing its Programs. */
  async function programsOfSource (source: string): Promise<Program[]> {
    const programs: Program[] = []
    const fakeWeft = { local: async () => new Weft(new CapturingExecutor((backend.weft.executor as CapturingExecutor).inner)) }
    const body = source.replace(/^import .*$/m, '')
    const run = new Function('Weft', 'console', `return (async () => {\n${body}\n})()`) as (weft: unknown, console: unknown) => Promise<void>
    await withCapture({ programs, results: [], onProgress: () => {} }, () => run(fakeWeft, { log: () => {} }))
    return programs
  }

  test.each([
    ['logit-lens', DEFAULTS['logit-lens']],
    ['patching', { ...DEFAULTS.patching, heads: false }],
    ['attention', { prompt: 'When Mary and John went to the store', layer: 3 }],
    ['steering', { ...DEFAULTS.steering, maxNewTokens: 3 }],
  ] as const)('%s', async (kind, params) => {
    expect(validateParams(kind, params)).toEqual([])
    const { body } = await post({ kind, model: 'demo-gpt2', params })
    const run = await finished(body.id)
    expect(run.error).toBeNull()
    const source = programSource(kind, params as never, { model: 'demo-gpt2', connect: 'Weft.local()' })
    const programs = await programsOfSource(source)
    expect(programs.length).toBe(run.programs)
    // the same nodes, invokes and constants (source locations name different lines: drop them)
    const served = decodeProgram((await request(`/api/runs/${run.id}/program.cbor`)).body as Uint8Array)
    expect(withoutLocations(programs.at(-1)!)).toBe(withoutLocations(served))
    // the downloads: the same Program as CBOR, its JSON form, the tensors as safetensors
    const cbor = (await request(`/api/runs/${run.id}/program.cbor`)).body as Uint8Array
    expect(programDigest(decodeProgram(cbor))).toBe(run.programDigest)
    expect((await request(`/api/runs/${run.id}/program.json`)).body.model.name).toBe('demo-gpt2')
    const tensors = (await request(`/api/runs/${run.id}/results.safetensors`)).body as Uint8Array
    const headerLength = Number(new DataView(tensors.buffer, tensors.byteOffset).getBigUint64(0, true))
    const header = JSON.parse(new TextDecoder().decode(tensors.subarray(8, 8 + headerLength))) as Record<string, unknown>
    expect((header.__metadata__ as Record<string, string>).program).toBe(run.programDigest)
    expect((await request(`/api/runs/${run.id}/receipt.cbor`)).status).toBe(404)    // embedded: nobody signs
  })
})

describe('weft workbench flags', () => {
  test('one source of models; --key with remote modes only; a port number', () => {
    expect(backendOptionsOf([]).backend).toEqual({ mode: 'embedded' })
    expect(backendOptionsOf(['--port', '0']).port).toBe(0)
    const bad: [string[], string][] = [
      [['--models', 'models', '--provider', 'http://127.0.0.1:1'], 'choose one of'],
      [['--provider', 'http://127.0.0.1:1'], '--provider needs --key'],
      [['--directory', '/ip4/127.0.0.1/tcp/1'], '--directory needs --key'],
      [['--key', 'package.json'], '--key goes with --provider or --directory'],
      [['--port', 'http'], '--port is a port number'],
      [['--models', '/no/such/folder'], 'no folder'],
      [['--provider', 'ftp://x', '--key', 'package.json'], 'an http(s) URL'],
      [['stray'], "unexpected argument 'stray'"],
    ]
    for (const [argv, message] of bad) expect(() => backendOptionsOf(argv), argv.join(' ')).toThrow(message)
    expect(() => backendOptionsOf(['--provider', 'x'])).toThrow(UsageError)
  })

  test('the weft dispatcher lists the command, prints its usage, and exits 2 on a usage error', async () => {
    const errors: string[] = []
    const logs: string[] = []
    const error = vi.spyOn(console, 'error').mockImplementation((line: string) => { errors.push(line) })
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => { logs.push(line) })
    try {
      expect(await main(['--help'])).toBe(0)
      expect(logs.join('\n')).toMatch(/workbench\s+the web workbench/)
      expect(await main(['workbench', '--help'])).toBe(0)
      expect(logs.join('\n')).toContain('usage: weft workbench')
      expect(await main(['workbench', '--bogus'])).toBe(2)
      expect(await main(['workbench', '--provider', 'http://127.0.0.1:9'])).toBe(2)
      expect(errors.join('\n')).toContain('--provider needs --key')
    } finally { error.mockRestore(); log.mockRestore() }
  })
})
