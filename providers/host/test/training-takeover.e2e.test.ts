/**
 * Training checkpoints across nodes (docs/decisions/2026-12-06-training-checkpoints.md): two provider processes on one
 * real PostgreSQL server. Node A runs the acceptance steering-vector training (Adam, 30 steps, a checkpoint every 5)
 * and is SIGKILLed once a checkpoint is in the database; node B takes the job over when A's lease expires and
 * continues from A's checkpoint: the job completes once, on B, with `training.resumedFrom` = that step, a loss
 * curve of all 30 steps matching PyTorch's (≤ 1e-4 relative) and the kept adapter's v matching PyTorch's final v.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import pg from 'pg'
import { createRequestEnvelope, decodeCbor, generateKeyPair, keyId, publicKeyOf, toHex, type Tensor } from '@weft/core'
import { connectRemote } from '../../../sdk/src/remote/index.js'
import { readSse } from '../../../sdk/src/remote/sse.js'
import { DEMO, tempDb } from './helpers.js'
import { killHard, startProviderProcess, type ProviderProcess } from './process.js'
import { startPostgres, type Postgres } from './postgres.js'
import { REFERENCE as ref, rel, steeringTraining } from './training-programs.js'

const secretKey = generateKeyPair().secretKey
const kid = keyId(publicKeyOf(secretKey))

let server: Postgres
let db: pg.Client
let a: ProviderProcess
let b: ProviderProcess

beforeAll(async () => {
  server = await startPostgres()
  const url = await server.createDatabase('weft_takeover')
  // B waits long for co-tenants, so the job submitted to A (no window) runs on A
  const args = (window: number): string[] => ['--model', DEMO, '--db', url, '--policy', 'open', '--batch-window-ms', String(window), '--lease-ms', '1000',
    '--checkpoint-every-steps', '5', '--checkpoint-every-ms', '0', '--adapter-dir', `${tempDb('takeover')}.adapters`]
  ;[a, b] = await Promise.all([startProviderProcess(args(0)), startProviderProcess(args(5_000))])
  db = new pg.Client(url)
  await db.connect()
}, 180_000)

afterAll(async () => {
  await db?.end()
  for (const node of [a, b]) await node?.stop().catch(() => {})
  await server?.stop()
})

test('a node killed after a training checkpoint: another node takes the job over and resumes it; the result matches PyTorch', async () => {
  const executor = await connectRemote({ provider: b.url, key: toHex(secretKey), providerId: b.providerId })
  await executor.register()
  const tokens = new Map<string, number[]>()
  for (const prompt of ref.prompts) tokens.set(prompt, await executor.tokenize('demo-gpt2', prompt))
  const program = steeringTraining(text => tokens.get(text)!, { steps: 30, keep: 'taken-over' })
  const envelope = createRequestEnvelope({ program, audience: a.providerId, secretKey, kid })
  const accepted = await fetch(`${a.url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
  expect(accepted.status).toBe(202)
  const { job } = await accepted.json() as { job: string }
  // a stream on B from the start: relayed while A runs the job, B's own once B has taken it over
  const streamed = (async (): Promise<{ step: number; loss: number }[]> => {
    const steps: { step: number; loss: number }[] = []
    for await (const message of readSse(await fetch(`${b.url}/v1/jobs/${job}/events`))) {
      const data = JSON.parse(message.data) as { stage?: string; step?: number; loss?: number }
      if (message.event === 'job-progress' && data.stage === 'train-step') steps.push({ step: data.step!, loss: data.loss! })
      if (message.event === 'job-end' || message.event === 'job-error') break
    }
    return steps
  })()

  const checkpoint = async (): Promise<{ step: number; node: string | null } | undefined> =>
    (await db.query('SELECT c.step::int AS step, j.node FROM train_checkpoints c JOIN jobs j ON j.id = c.job_id WHERE c.job_id = $1', [job])).rows[0]
  let stored: { step: number; node: string | null } | undefined
  for (const deadline = Date.now() + 30_000; stored === undefined && Date.now() < deadline;) {
    stored = await checkpoint()
    if (stored === undefined) await new Promise(resolve => setTimeout(resolve, 2))
  }
  expect(stored).toBeDefined()
  await killHard(a)
  const step = (await checkpoint())!.step
  expect(step).toBeGreaterThan(0)
  expect(step).toBeLessThan(30)

  // B takes it over after A's lease expires, and completes it
  let row: { state: string; node: string; attempts: number } | undefined
  for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
    row = (await db.query('SELECT state, node, attempts::int AS attempts FROM jobs WHERE id = $1', [job])).rows[0]
    if (row !== undefined && row.state !== 'queued' && row.state !== 'running') break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  expect(row).toMatchObject({ state: 'completed', attempts: 2 })
  expect(row!.node).not.toBe(stored!.node)
  expect(await checkpoint()).toBeUndefined()

  const response = await fetch(`${b.url}/v1/jobs/${job}/result`)
  expect(response.status).toBe(200)
  const body = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { saves: Uint8Array; training: Record<string, unknown> }
  expect(body.training).toMatchObject({ steps: 30, completed: 30, cancelled: false, resumedFrom: step })
  const curve = Array.from((decodeCbor(body.saves) as Record<string, Tensor>)['train.loss']!.data as Float32Array)
  expect(curve).toHaveLength(30)
  curve.forEach((loss, k) => expect(rel(loss, ref.steering_vector.loss_per_step[k]!), `step ${k + 1}`).toBeLessThanOrEqual(1e-4))
  // the stream open through the take-over reported each step once, in order, with PyTorch's losses
  const steps = await streamed
  expect(steps.map(s => s.step)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1))
  steps.forEach(({ loss }, k) => expect(rel(loss, ref.steering_vector.loss_per_step[k]!), `streamed step ${k + 1}`).toBeLessThanOrEqual(1e-4))
  const kept = await executor.downloadAdapter('taken-over')
  const v = kept.values.v!.data as Float32Array
  ref.steering_vector.final_v.forEach((x, i) => expect(Math.abs(v[i]! - x) / Math.max(Math.abs(x), 1e-2)).toBeLessThanOrEqual(1e-4))
}, 90_000)
