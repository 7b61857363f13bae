/** `model.generate` in remote mode: a signed generate Program through an in-process provider, receipt verified, egress counted. */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { toHex } from '@weft/core'
import { Weft, type GPT2 } from '../src/index.js'
import type { RemoteExecutor } from '../src/remote/index.js'
import { closedModelPolicy, createHost, type Host } from '@weft/host'
import { DEMO, newUser, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'
import { loadOracle, oracleGreedy } from '../../providers/onnx/test/generate-oracle.js'

let host: Host
let url: string
const user = newUser()

beforeAll(async () => {
  host = await createHost({
    dbPath: tempDb('sdk-generate-remote'), backends: { onnx: await onnxBackendInline() }, models: [{ name: 'demo-gpt2', path: DEMO }],
    policies: [closedModelPolicy({ egressPerKeyPerDay: '1MB' })], selfRegistration: true, limits: { batchWindowMs: 0 },
  })
  url = (await host.listen({ port: 0 })).url
})
afterAll(async () => { await host.close() })

test('generates on a provider: tokens equal the oracle, a step-2 read comes back, egress counts tokens and the read', async () => {
  const weft = await Weft.connect({ provider: url, key: toHex(user.secretKey), providerId: host.providerId })
  const model = await weft.model<GPT2>('demo-gpt2')
  const out = await model.generate([328, 370, 293, 3606, 297], { maxNewTokens: 6 }, (_m, steps) => ({ h: steps.step(2, (m) => m.transformer.h[0].output) }))
  const oracle = await loadOracle(DEMO.endsWith('/') ? DEMO : DEMO + '/')
  expect(out.tokens).toEqual(oracleGreedy(oracle, [328, 370, 293, 3606, 297], 6).tokens)
  expect(out.text.startsWith(' Paris')).toBe(true)
  expect(out.h.shape).toEqual([1, 1, 256])
  expect((weft.executor as RemoteExecutor).lastEgress?.bytes).toBe(256 * 4 + 6 * 8)
  await weft.close()
})
