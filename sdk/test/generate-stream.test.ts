/**
 * Token streaming during `model.generate`: each new token (id and text) reaches the caller while generation is still
 * running — embedded (in-process engine) and remote (a provider on 127.0.0.1 with its engine in a worker thread, over
 * the job's SSE `job-token` events). Tokens equal the float64 oracle's greedy continuation.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { toHex } from '@weft/core'
import { Weft, type GPT2, type GeneratedToken, type RunProgress } from '../src/index.js'
import { createHost, workerBackend, type Host } from '@weft/host'
import { DEMO, ONNX_BACKEND_MODULE, newUser, tempDb } from '../../providers/host/test/helpers.js'
import { loadOracle, oracleGreedy } from '../../providers/onnx/test/generate-oracle.js'
import { MODELS_DIR } from './fixtures/reference.js'

const FRANCE = [328, 370, 293, 3606, 297]
const N = 12
let expected: number[]

beforeAll(async () => {
  expected = oracleGreedy(await loadOracle(`${MODELS_DIR}/demo-gpt2/`), FRANCE, N).tokens
})

interface Seen { tokens: (GeneratedToken & { at: number })[]; completedAt: number | null; runsBeforeFirst: number | null; runs: number }

function watcher (onFirst?: (event: RunProgress) => void): { seen: Seen; onToken: (t: GeneratedToken) => void; onProgress: (e: RunProgress) => void } {
  const seen: Seen = { tokens: [], completedAt: null, runsBeforeFirst: null, runs: 0 }
  return {
    seen,
    onToken: (t) => { seen.tokens.push({ ...t, at: performance.now() }) },
    onProgress: (e) => {
      if (e.stage === 'token' && seen.runsBeforeFirst === null) { seen.runsBeforeFirst = seen.runs; onFirst?.(e) }
      if (e.stage === 'running' && e.detail?.engineStage === 'run') seen.runs++
      if (e.stage === 'completed') seen.completedAt = performance.now()
    },
  }
}

describe('embedded', () => {
  let weft: Weft
  beforeAll(async () => { weft = await Weft.local({ modelsDir: MODELS_DIR }) })
  afterAll(async () => { await weft.close() })

  test('onToken sees each token with its text as it is chosen: the first after step 0, before the completion', async () => {
    const model = await weft.model<GPT2>('demo-gpt2')
    const { seen, onToken, onProgress } = watcher()
    const out = await model.generate(FRANCE, { maxNewTokens: N, onToken, onProgress })
    expect(out.tokens).toEqual(expected)
    expect(seen.tokens.map((t) => t.id)).toEqual(expected)
    expect(seen.tokens.map((t) => t.step)).toEqual([...Array(N).keys()])
    expect(seen.tokens.every((t) => t.invoke === 0)).toBe(true)
    expect(seen.tokens.map((t) => t.text).join('')).toBe(out.text)
    expect(seen.tokens[0]!.text).toBe(' Paris')
    // the first token arrived after the prompt pass and before step 1 ran, long before the run completed
    expect(seen.runsBeforeFirst).toBe(1)
    expect(seen.tokens[0]!.at).toBeLessThan(seen.completedAt!)
  })

  test('model.stream: an async iterator over the tokens, then .result', async () => {
    const model = await weft.model<GPT2>('demo-gpt2')
    const stream = model.stream(FRANCE, { maxNewTokens: N })
    const ids: number[] = []
    for await (const token of stream) ids.push(token.id)
    expect(ids).toEqual(expected)
    expect((await stream.result).tokens).toEqual(expected)
  })
})

describe('remote (SSE job-token events)', () => {
  let host: Host
  let url: string
  const user = newUser()
  beforeAll(async () => {
    host = await createHost({
      dbPath: tempDb('sdk-generate-stream'), backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) },
      models: [{ name: 'demo-gpt2', path: DEMO }], selfRegistration: true, limits: { batchWindowMs: 0 },
    })
    url = (await host.listen({ port: 0 })).url
  })
  afterAll(async () => { await host.close() })

  test('the first token reaches the client while the job is still running, before its completion; all tokens and texts follow', async () => {
    const weft = await Weft.connect({ provider: url, key: toHex(user.secretKey), providerId: host.providerId })
    try {
      const model = await weft.model<GPT2>('demo-gpt2')
      let stateAtFirst: string | undefined
      const { seen, onToken, onProgress } = watcher((e) => { stateAtFirst = host.context.store.getJob(String(e.detail?.job))?.state })
      const out = await model.generate(FRANCE, { maxNewTokens: N, onToken, onProgress })
      expect(out.tokens).toEqual(expected)
      expect(seen.tokens.map((t) => t.id)).toEqual(expected)
      expect(seen.tokens.map((t) => t.text).join('')).toBe(out.text)
      expect(stateAtFirst).toBe('running')
      expect(seen.tokens[0]!.at).toBeLessThan(seen.completedAt!)
    } finally { await weft.close() }
  })
})
