/**
 * The host admits a Program once (#10): admission validates and types it once (core's analyzeValidProgram), costs it
 * from that analysis, applies the model's edits once, and hands that one analysed form to the scheduler, which hands
 * the edited Program and its types to the engine: nothing downstream validates, infers or edits again. Counted by
 * wrapping core's exported analysis entry points (the host and the onnx engine both call them through '@weft/core').
 */
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import * as core from '@weft/core'
import type { Tensor } from '@weft/core'
import type { AdmittedProgram } from '../src/jobs/admission.js'
import { blockProgram, operatorRequest, sign, startTestHost, submit, type TestHost } from './helpers.js'

vi.mock('@weft/core', async importOriginal => {
  const real = await importOriginal<typeof import('@weft/core')>()
  return {
    ...real,
    analyzeProgram: vi.fn(real.analyzeProgram),
    analyzeValidProgram: vi.fn(real.analyzeValidProgram),
    validateProgram: vi.fn(real.validateProgram),
    assertValidProgram: vi.fn(real.assertValidProgram),
    inferProgramTypes: vi.fn(real.inferProgramTypes),
    programCost: vi.fn(real.programCost),
  }
})

const calls = (): Record<string, number> => Object.fromEntries((['analyzeProgram', 'analyzeValidProgram', 'validateProgram', 'assertValidProgram', 'inferProgramTypes', 'programCost'] as const)
  .map(name => [name, vi.mocked(core[name]).mock.calls.length]))

let t: TestHost | null = null
let handed: AdmittedProgram[] = []
beforeEach(async () => {
  t = await startTestHost({ limits: { batchWindowMs: 0 } })
  const scheduler = t.host.context.scheduler
  handed = []
  const startNow = scheduler.startNow.bind(scheduler)
  scheduler.startNow = (row, program) => { handed.push(program); return startNow(row, program) }
  const queued = scheduler.queued.bind(scheduler)
  scheduler.queued = (row, program) => { handed.push(program); queued(row, program) }
})
afterEach(async () => { await t?.host.close(); t = null })

async function run (program: core.Program): Promise<Record<string, Tensor>> {
  const response = await submit(t!.host, sign(t!.host, t!.user, program), 10)
  expect(response.status).toBe(200)
  const body = core.decodeCbor(new Uint8Array(await response.arrayBuffer())) as { saves: Uint8Array }
  return core.decodeCbor(body.saves) as Record<string, Tensor>
}

test('a job is validated, typed and costed once at admission; the scheduler and the engine get that analysis', async () => {
  vi.clearAllMocks()
  const saves = await run(blockProgram())
  expect(saves.h!.shape).toEqual([1, 5, 256])
  expect(calls()).toEqual({ analyzeProgram: 0, analyzeValidProgram: 1, validateProgram: 0, assertValidProgram: 0, inferProgramTypes: 0, programCost: 1 })
  const analysis = vi.mocked(core.analyzeValidProgram).mock.results[0]!.value as core.ProgramAnalysis
  // the cost came from that analysis, and the scheduler got it, with the Program as run (no edits: the same object)
  expect(vi.mocked(core.programCost).mock.calls[0]![2]).toBe(analysis)
  expect(handed).toHaveLength(1)
  expect(handed[0]!.analysis).toBe(analysis)
  expect(handed[0]!.edited).toBe(handed[0]!.program)
  expect(handed[0]!.editedTypes).toBe(analysis.types)
  expect(handed[0]!.saves).toEqual([{ name: 'h', shape: [1, 5, 256], dtype: 'float32' }])
})

test('with a provider-wide edit: the edited Program is made and typed once at admission and is what the engine runs', async () => {
  const mlp = 'transformer.h.1.mlp'
  const zero = { name: 'zero-mlp-1', nodes: [['read', { site: mlp, port: 'output' }, []], ['sub', {}, [0, 0]], ['write', { site: mlp, port: 'output' }, [1]]] }
  expect((await operatorRequest(t!.host, t!.operator, 'POST', '/v1/models/demo-gpt2/edits', zero)).status).toBe(201)
  vi.clearAllMocks()
  const saves = await run({ ...blockProgram(), nodes: [['read', { site: mlp, port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]] })
  expect(Array.from(saves.h!.data as Float32Array).every(v => v === 0)).toBe(true) // the edit ran
  // two Programs, each analysed once: the job's own (its issues name its nodes) and the edited one the engine runs
  expect(calls()).toEqual({ analyzeProgram: 0, analyzeValidProgram: 2, validateProgram: 0, assertValidProgram: 0, inferProgramTypes: 0, programCost: 1 })
  const [own, edited] = vi.mocked(core.analyzeValidProgram).mock.results.map(r => r.value as core.ProgramAnalysis)
  expect(handed).toHaveLength(1)
  expect(handed[0]!.analysis).toBe(own)
  expect(handed[0]!.editedTypes).toBe(edited!.types)
  expect(handed[0]!.edited.nodes).toHaveLength(3 + 2)
  expect(handed[0]!.edits).toEqual([expect.stringMatching(/^zero-mlp-1@sha256:/)])
})
