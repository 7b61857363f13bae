/**
 * kill -9 of a provider process in the middle of a training job (issue #11): after a restart the job ends completed or
 * failed with a reason, an adapter kept before the crash is intact byte for byte, and the adapter directory holds
 * exactly the files the store names (nothing half-written is visible or left behind).
 */
import { expect, test } from 'vitest'
import { readdirSync } from 'node:fs'
import { createRequestEnvelope, toHex } from '@weft/core'
import { connectRemote, type RemoteExecutor } from '../../../sdk/src/remote/index.js'
import { readSse } from '../../../sdk/src/remote/sse.js'
import { SqliteStore as Store } from '../src/store/store.js'
import { DEMO, newUser, tempDb } from './helpers.js'
import { killHard, startProviderProcess, type ProviderProcess } from './process.js'
import { REFERENCE as ref, adapterLoss, rel, steeringTraining } from './training-programs.js'

const user = newUser()

async function connect (provider: ProviderProcess): Promise<RemoteExecutor> {
  const executor = await connectRemote({ provider: provider.url, key: toHex(user.secretKey), providerId: provider.providerId })
  await executor.register()
  return executor
}

test('kill -9 during a training job: restart, the job ends completed or failed-with-reason; a kept adapter is intact', async () => {
  const db = tempDb('train-crash')
  let provider = await startProviderProcess(['--model', DEMO, '--db', db, '--policy', 'open'])
  try {
    let executor = await connect(provider)
    const tokenize = (text: string): number[] => tokens.get(text)!
    const tokens = new Map<string, number[]>()
    for (const prompt of ref.prompts) tokens.set(prompt, await executor.tokenize('demo-gpt2', prompt))

    // an adapter kept before the crash
    const kept = await executor.run(steeringTraining(tokenize, { steps: 5, keep: 'before' }))
    expect(kept.adapter).toMatchObject({ name: 'before' })
    const before = await executor.downloadAdapter('before')

    // a long training job, killed once it has completed a few steps
    const program = steeringTraining(tokenize, { steps: 60, keep: 'during' })
    const envelope = createRequestEnvelope({ program, audience: provider.providerId, secretKey: user.secretKey, kid: user.kid })
    const accepted = await fetch(`${provider.url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
    expect(accepted.status).toBe(202)
    const { job } = await accepted.json() as { job: string }
    const events = await fetch(`${provider.url}/v1/jobs/${job}/events`)
    let step = 0
    for await (const message of readSse(events)) {
      const data = JSON.parse(message.data) as { stage?: string; step?: number }
      if (data.stage === 'train-step') step = data.step!
      if (step >= 5) break
    }
    expect(step).toBeGreaterThanOrEqual(5)
    await killHard(provider)

    provider = await startProviderProcess(['--model', DEMO, '--db', db, '--policy', 'open'])
    executor = await connect(provider)
    type Status = { state: string; error: { code: string; details: Record<string, unknown> } | null }
    let end: Status | null = null
    const deadline = Date.now() + 90_000
    while (end === null && Date.now() < deadline) {
      const status = await (await fetch(`${provider.url}/v1/jobs/${job}`)).json() as Status
      if (status.state !== 'queued' && status.state !== 'running') end = status
      else await new Promise(resolve => setTimeout(resolve, 100))
    }
    expect(end).not.toBeNull()
    if (end!.state === 'completed') {
      // the provider ran it again from its initial params (attempt 2): a whole, correct run, and its adapter
      const result = await fetch(`${provider.url}/v1/jobs/${job}/result`)
      expect(result.status).toBe(200)
      const during = await executor.adapter('during')
      expect(during.training).toMatchObject({ steps: 60, completed: 60, cancelled: false })
      const loss = await executor.run(adapterLoss(tokenize, 'during'))
      expect(Number(loss.saves.loss!.data[0])).toBeLessThan(ref.steering_vector.final_loss_after_training)
    } else {
      expect(end).toMatchObject({ state: 'failed', error: { code: 'EXECUTION_FAILED', details: { reason: 'provider-restart' } } })
      await expect(executor.adapter('during')).rejects.toMatchObject({ code: 'ADAPTER_NOT_FOUND' })
    }

    // the adapter kept before the crash: same digest, same bytes, and it still steers
    const after = await executor.downloadAdapter('before')
    expect(after.digest).toBe(before.digest)
    expect([...after.values.v!.data]).toEqual([...before.values.v!.data])
    const loss = await executor.run(adapterLoss(tokenize, 'before'))
    expect(rel(Number(loss.saves.loss!.data[0]), ref.steering_vector.loss_per_step[5]!)).toBeLessThanOrEqual(1e-4)
  } finally {
    await provider.stop()
  }
  // every file in the adapter directory is named by a row, and every row's file is there
  const store = new Store(db)
  try {
    const named = store.adapterFiles()
    expect(new Set(readdirSync(`${db}.adapters`))).toEqual(named)
  } finally { store.close() }
})
