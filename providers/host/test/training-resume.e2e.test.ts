/**
 * Training step checkpoints with exact resume across a kill -9 (docs/decisions/2026-12-06-training-checkpoints.md):
 * a real provider process trains the acceptance steering vector (Adam lr 0.05, 30 steps) and stores checkpoints every
 * 5 steps; it is SIGKILLed once a checkpoint is in its SQLite file. Restarted on the same file, it runs the job again
 * from that checkpoint: the job completes with `training.resumedFrom` = the checkpoint's step, a loss curve of all 30
 * steps that matches PyTorch's (≤ 1e-4 relative) and equals an uninterrupted run's bit for bit, the same kept
 * adapter, and a late event subscriber sees every train-step exactly once. The checkpoint row is gone afterwards.
 */
import { expect, test } from 'vitest'
import Database from 'better-sqlite3'
import { createRequestEnvelope, decodeCbor, toHex, type Tensor } from '@weft/core'
import { connectRemote, type RemoteExecutor } from '../../../sdk/src/remote/index.js'
import { readSse } from '../../../sdk/src/remote/sse.js'
import { DEMO, newUser, tempDb } from './helpers.js'
import { killHard, startProviderProcess, type ProviderProcess } from './process.js'
import { REFERENCE as ref, rel, steeringTraining } from './training-programs.js'

const user = newUser()
const FLAGS = ['--model', DEMO, '--policy', 'open', '--checkpoint-every-steps', '5', '--checkpoint-every-ms', '0']

async function connect (provider: ProviderProcess): Promise<RemoteExecutor> {
  const executor = await connectRemote({ provider: provider.url, key: toHex(user.secretKey), providerId: provider.providerId })
  await executor.register()
  return executor
}

/** the job's checkpoint step in the provider's SQLite file (read-only, beside the running provider), or null */
function checkpointStep (db: string, job: string): number | null {
  const sqlite = new Database(db, { readonly: true, fileMustExist: true })
  try {
    const row = sqlite.prepare('SELECT step FROM train_checkpoints WHERE job_id = ?').get(job) as { step: number } | undefined
    return row?.step ?? null
  } finally { sqlite.close() }
}

test('kill -9 after a training checkpoint: the restarted provider resumes from it and the result equals an uninterrupted run and PyTorch', async () => {
  const db = tempDb('train-resume')
  let provider = await startProviderProcess([...FLAGS, '--db', db])
  try {
    let executor = await connect(provider)
    const tokens = new Map<string, number[]>()
    for (const prompt of ref.prompts) tokens.set(prompt, await executor.tokenize('demo-gpt2', prompt))
    const program = steeringTraining(text => tokens.get(text)!, { steps: 30, keep: 'resumed' })

    const envelope = createRequestEnvelope({ program, audience: provider.providerId, secretKey: user.secretKey, kid: user.kid })
    const accepted = await fetch(`${provider.url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
    expect(accepted.status).toBe(202)
    const { job } = await accepted.json() as { job: string }
    // killed as soon as a checkpoint is durable in the file (the engine is then a few steps further)
    let stored: number | null = null
    const deadline = Date.now() + 30_000
    while (stored === null && Date.now() < deadline) {
      stored = checkpointStep(db, job)
      if (stored === null) await new Promise(resolve => setTimeout(resolve, 2))
    }
    expect(stored).not.toBeNull()
    await killHard(provider)
    const step = checkpointStep(db, job)!
    expect(step).toBeGreaterThan(0)
    expect(step % 5).toBe(0)
    expect(step).toBeLessThan(30)

    provider = await startProviderProcess([...FLAGS, '--db', db])
    executor = await connect(provider)
    // a subscriber that joins after the restart: every step once (those before the checkpoint replayed), then the end
    const seen: number[] = []
    const replayed: number[] = []
    let end: { training?: Record<string, unknown> } | null = null
    for await (const message of readSse(await fetch(`${provider.url}/v1/jobs/${job}/events`))) {
      const data = JSON.parse(message.data) as { stage?: string; step?: number; loss?: number; resumed?: boolean; training?: Record<string, unknown> }
      if (message.event === 'job-progress' && data.stage === 'train-step') {
        seen.push(data.step!)
        if (data.resumed === true) replayed.push(data.step!)
        expect(rel(data.loss!, ref.steering_vector.loss_per_step[data.step! - 1]!)).toBeLessThanOrEqual(1e-4)
      }
      if (message.event === 'job-error') throw new Error(`job failed: ${message.data}`)
      if (message.event === 'job-end') { end = data; break }
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, k) => k + 1))
    expect(replayed).toEqual(Array.from({ length: step }, (_, k) => k + 1))
    expect(end?.training).toMatchObject({ steps: 30, completed: 30, cancelled: false, resumedFrom: step })

    // the result: every step's loss against PyTorch's, and resumedFrom
    const response = await fetch(`${provider.url}/v1/jobs/${job}/result`)
    expect(response.status).toBe(200)
    const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { saves: Uint8Array; training: Record<string, unknown> }
    expect(body.training).toMatchObject({ steps: 30, completed: 30, resumedFrom: step })
    const curve = Array.from((decodeCbor(body.saves) as Record<string, Tensor>)['train.loss']!.data as Float32Array)
    expect(curve).toHaveLength(30)
    curve.forEach((loss, k) => expect(rel(loss, ref.steering_vector.loss_per_step[k]!), `step ${k + 1}`).toBeLessThanOrEqual(1e-4))
    expect(checkpointStep(db, job)).toBeNull() // deleted with the job's end

    // the kept adapter: PyTorch's final v, and bit for bit what an uninterrupted run of the same Program keeps
    const resumed = await executor.downloadAdapter('resumed')
    const v = resumed.values.v!.data as Float32Array
    ref.steering_vector.final_v.forEach((x, i) => expect(Math.abs(v[i]! - x) / Math.max(Math.abs(x), 1e-2)).toBeLessThanOrEqual(1e-4))
    const whole = await executor.run(steeringTraining(text => tokens.get(text)!, { steps: 30, keep: 'whole' }))
    expect(whole.training).toMatchObject({ completed: 30 })
    expect(whole.training?.resumedFrom).toBeUndefined()
    expect(Array.from(whole.saves['train.loss']!.data as Float32Array)).toEqual(curve)
    const uninterrupted = await executor.downloadAdapter('whole')
    expect(Array.from(uninterrupted.values.v!.data as Float32Array)).toEqual(Array.from(v))
    expect(uninterrupted.digest).toBe(resumed.digest)
  } finally {
    await provider.stop()
  }
}, 60_000)
