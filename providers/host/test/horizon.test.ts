/**
 * The exfiltration horizon is a lower bound (issue #9 item 2): it uses the least bytes per parameter an allowed
 * Program reaches, the casts that reach below it can be forbidden, and a real int8 scale-and-cast of embedding rows
 * moves them at 1 byte per parameter with error below one quantization step.
 */
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { decodeCbor, type Program, type Tensor } from '@weft/core'
import { closedModelPolicy, leastBytesPerParameter } from '../src/index.js'
import { readSafetensors } from '../../onnx/src/safetensors/write.js'
import { DEMO, blockProgram, sign, startTestHost, submit, type TestHost } from './helpers.js'

const IDS = Array.from({ length: 256 }, (_, i) => i)
const f32 = (value: number): Tensor => ({ dtype: 'float32', shape: [], data: new Float32Array([value]) })

/** Embedding rows 0…255, scaled by 127 / max|x| and cast to int8; the scale's denominator saved beside them. */
function int8EmbeddingProgram (): Program {
  return {
    version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: IDS }],
    nodes: [
      ['read', { site: 'transformer.wte', port: 'output', invoke: 0 }, []], // 0: [1, 256, 256]
      ['abs', {}, [0]], ['max', {}, [1]], // 2: max |x|
      ['const', { value: f32(127) as never }, []], ['div', {}, [3, 2]], // 4: 127 / max|x|
      ['mul', {}, [0, 4]], ['cast', { dtype: 'int8' }, [5]], // 6: int8 rows
      ['save', { name: 'q' }, [6]], ['save', { name: 'maxAbs' }, [2]],
    ],
  }
}

async function refusal (response: Response): Promise<{ status: number; code: string; details: Record<string, unknown> }> {
  const body = await response.json() as { code: string; details: Record<string, unknown> }
  return { status: response.status, code: body.code, details: body.details }
}

async function policySummary (t: TestHost): Promise<Record<string, unknown>> {
  return (await (await t.host.app.request('/v1/policy')).json() as { policies: Record<string, unknown>[] }).policies[0]!
}

describe('closed policy that allows casts', () => {
  let t: TestHost
  beforeAll(async () => { t = await startTestHost({ limits: { batchWindowMs: 0 }, policies: [closedModelPolicy({ egressPerDay: '20MB' })] }) })
  afterAll(async () => { await t.host.close() })

  test('the horizon is parameters × 1 byte ÷ egress per day, and /v1/policy says why', async () => {
    const summary = await policySummary(t)
    const parameters = t.host.context.registry.get('demo-gpt2').manifest.parameters
    expect(summary.exfiltrationHorizon).toMatchObject({ bytesPerParam: 1, precisionBits: 8, dtype: 'int8', paramsPerElement: 1, reason: expect.stringContaining('cast to int8') })
    expect((summary.exfiltrationHorizonDays as Record<string, number>)['demo-gpt2']).toBeCloseTo(parameters * 1 / 20e6, 9)
  })

  test('a real int8 scale-and-cast of embedding rows leaves at 1 byte per parameter, each within one quantization step', async () => {
    const response = await submit(t.host, sign(t.host, t.user, int8EmbeddingProgram()), 30)
    expect(response.status, await response.clone().text()).toBe(200)
    const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { saves: Uint8Array; egress: { bytes: number } }
    const saves = decodeCbor(body.saves) as Record<string, Tensor>
    const q = saves.q!
    const maxAbs = (saves.maxAbs!.data as Float32Array)[0]!
    expect(q.dtype).toBe('int8')
    expect(q.shape).toEqual([1, 256, 256])
    const params = 256 * 256
    expect(body.egress.bytes).toBe(params + 4) // the int8 rows and one float32 scale
    const wte = readSafetensors(path.join(DEMO, 'model.safetensors')).get('transformer.wte.weight')!
    const weights = wte.data as Float32Array
    const step = maxAbs / 127
    let worst = 0
    let sumSq = 0
    for (let i = 0; i < params; i++) {
      const error = Math.abs((q.data as Int8Array)[i]! * step - weights[i]!)
      worst = Math.max(worst, error)
      sumSq += error * error
    }
    expect(maxAbs).toBeCloseTo(Math.max(...Array.from(weights.subarray(0, params), Math.abs)), 6)
    expect(worst).toBeLessThan(step * 1.0001) // truncation toward zero: under one step
    expect(Math.sqrt(sumSq / params)).toBeLessThan(step) // and most rows well under it
    expect(body.egress.bytes / params).toBeCloseTo(1, 3)
  })
})

describe('closed policy that forbids low-precision casts of weight-derived values and embedding reads', () => {
  let t: TestHost
  beforeAll(async () => {
    t = await startTestHost({ limits: { batchWindowMs: 0 }, policies: [closedModelPolicy({ egressPerDay: '20MB', forbidLowPrecisionCasts: 'weight-derived', forbidEmbeddingReads: true })] })
  })
  afterAll(async () => { await t.host.close() })

  test('float16 and int8 casts of a weight-derived value are refused naming the rule; a cast of a constant is not', async () => {
    for (const dtype of ['float16', 'int8']) {
      const program = blockProgram(undefined, 2, [['cast', { dtype }, [0]], ['save', { name: 'low' }, [2]]])
      expect(await refusal(await submit(t.host, sign(t.host, t.user, program)))).toMatchObject({
        status: 403, code: 'POLICY_DENIED', details: { policy: 'closed-model', rule: 'forbidLowPrecisionCasts', scope: 'weight-derived', nodes: [2], dtypes: [dtype] },
      })
    }
    const constant = blockProgram(undefined, 2, [['const', { value: f32(3.5) as never }, []], ['cast', { dtype: 'int8' }, [2]], ['save', { name: 'c' }, [3]]])
    expect((await submit(t.host, sign(t.host, t.user, constant), 30)).status).toBe(200)
    const full = blockProgram(undefined, 2, [['cast', { dtype: 'float64' }, [0]], ['save', { name: 'wide' }, [2]]])
    expect((await submit(t.host, sign(t.host, t.user, full), 30)).status).toBe(200)
  })

  test('the horizon uses the higher bound: 8-bit parameters packed three to a float32 (4/3 bytes each)', async () => {
    const summary = await policySummary(t)
    const parameters = t.host.context.registry.get('demo-gpt2').manifest.parameters
    expect(summary).toMatchObject({ forbidLowPrecisionCasts: 'weight-derived', forbidEmbeddingReads: true })
    expect(summary.exfiltrationHorizon).toMatchObject({ bytesPerParam: 4 / 3, dtype: 'float32', paramsPerElement: 3 })
    expect((summary.exfiltrationHorizonDays as Record<string, number>)['demo-gpt2']).toBeCloseTo(parameters * (4 / 3) / 20e6, 9)
  })

  test('reads that return embedding rows exactly are refused; a later block is not', async () => {
    for (const [site, port] of [['transformer.wte', 'output'], ['transformer.wpe', 'output'], ['transformer.drop', 'output'], ['transformer.h.0', 'input'], ['transformer.h.0.ln_1', 'input']]) {
      const program: Program = { ...blockProgram(IDS), nodes: [['read', { site, port, invoke: 0 }, []], ['save', { name: 'rows' }, [0]]] }
      expect(await refusal(await submit(t.host, sign(t.host, t.user, program))), `${site} ${port}`).toMatchObject({
        status: 403, code: 'POLICY_DENIED', details: { rule: 'forbidEmbeddingReads', sites: [site] },
      })
    }
    expect((await submit(t.host, sign(t.host, t.user, blockProgram(undefined, 0)), 30)).status).toBe(200)
  })
})

test('the bound over the op table: casts forbidden outright and no arithmetic leave float32 at 4 bytes; bool costs a byte per bit', () => {
  const base = { forbidLowPrecisionCasts: false as const, precisionBits: 8 }
  expect(leastBytesPerParameter({ ...base, forbiddenOps: new Set(['cast', 'mul', 'add', 'argmax', 'topk']) })).toMatchObject({ bytesPerParam: 4, dtype: 'float32' })
  expect(leastBytesPerParameter({ ...base, forbiddenOps: new Set(['read', 'cast', 'argmax', 'topk']) })).toMatchObject({ bytesPerParam: 8, dtype: 'bool' })
  expect(leastBytesPerParameter({ ...base, precisionBits: 4, forbiddenOps: new Set() })).toMatchObject({ bytesPerParam: 0.5 })
  expect(() => leastBytesPerParameter({ ...base, precisionBits: 0, forbiddenOps: new Set() })).toThrow(/precision/)
})
