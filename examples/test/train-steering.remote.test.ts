// The train-steering example run remotely (issue #11): a provider on 127.0.0.1 trains the vector in one request and
// keeps it; the loss curve matches PyTorch's run, only the curve and one scalar come back, and it plots as SVG.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { toHex } from '@weft/core'
import { Weft, type GPT2 } from '@weft/sdk'
import { createHost, type Host } from '@weft/host'
import { DEMO, newUser, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'
import { DEFAULT_TRAIN_STEERING, lossCurveSvg, trainSteering } from '../src/train-steering.js'

let host: Host
let url: string
beforeAll(async () => {
  host = await createHost({ dbPath: tempDb('example-train'), backends: { onnx: await onnxBackendInline() }, models: [{ name: 'demo-gpt2', path: DEMO }], selfRegistration: true })
  url = (await host.listen({ port: 0 })).url
})
afterAll(async () => { await host.close() })

test('train-steering against a provider: 30 Adam steps equal PyTorch\'s, the vector stays there, the curve plots', async () => {
  const ref = JSON.parse(readFileSync(new URL('../../models/demo-gpt2/reference_training.json', import.meta.url), 'utf8')) as { steering_vector: { loss_per_step: number[]; final_loss_after_training: number } }
  const user = newUser()
  const weft = await Weft.connect({ provider: url, key: toHex(user.secretKey), providerId: host.providerId })
  const model = await weft.model<GPT2>('demo-gpt2')
  const result = await trainSteering(model, { ...DEFAULT_TRAIN_STEERING, keep: 'rome' })
  const want = ref.steering_vector.loss_per_step
  expect(result.losses).toHaveLength(30)
  result.losses.forEach((l, k) => expect(Math.abs(l - want[k]!) / want[k]!).toBeLessThanOrEqual(1e-4))
  expect(Math.abs(result.finalLoss - ref.steering_vector.final_loss_after_training) / ref.steering_vector.final_loss_after_training).toBeLessThanOrEqual(1e-4)
  expect(result.resultBytes).toBe(30 * 4 + 4)
  expect(host.context.adapters.list(user.kid).map(a => a.name)).toEqual(['rome'])
  // applied by name, the kept vector steers a later generation on the provider
  const steered = await (await model.withAdapter('rome')).generate('The capital of France is', { maxNewTokens: 1 })
  expect(steered.text).toBe(' Rome')
  const svg = lossCurveSvg(result.losses, 'loss')
  expect(svg.match(/<circle /g)).toHaveLength(30)
  await weft.close()
})
