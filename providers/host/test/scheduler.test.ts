/** Scheduler policies: batch sizes in powers of two; the next batch launches before the previous one's results commit. */
import { afterEach, expect, test } from 'vitest'
import { verifyReceipt } from '@weft/core'
import { workerBackend } from '../src/index.js'
import { ONNX_BACKEND_MODULE, blockProgram, newUser, registerKey, sign, startTestHost, submit, type TestHost } from './helpers.js'

let t: TestHost | null = null
afterEach(async () => { await t?.host.close(); t = null })

async function submitTogether (host: TestHost, count: number): Promise<{ jobs: string[]; starts: { job: string; batchSize: number }[] }> {
  const users = [host.user, ...Array.from({ length: count - 1 }, () => newUser())]
  for (const user of users.slice(1)) await registerKey(host.host, host.operator, user.publicKey)
  const starts: { job: string; batchSize: number }[] = []
  const jobs = await Promise.all(users.map(async (user, i) => {
    const { job } = await (await submit(host.host, sign(host.host, user, blockProgram([10 + i, 20 + i])))).json() as { job: string }
    host.host.context.events.subscribe(job, event => { if (event.event === 'job-start') starts.push({ job, batchSize: event.data.batchSize as number }) })
    return job
  }))
  await host.host.context.scheduler.whenIdle()
  return { jobs, starts }
}

test("batchSizes 'powers-of-two': 7 jobs arriving together run as 4, 2 and 1", async () => {
  t = await startTestHost({
    backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) },
    limits: { batchWindowMs: 30 }, batchSizes: 'powers-of-two',
  })
  const { jobs, starts } = await submitTogether(t, 7)
  expect(starts.map(s => s.batchSize)).toEqual([4, 4, 4, 4, 2, 2, 1])
  for (const job of jobs) expect(t.host.context.store.getJob(job)!.state).toBe('completed')
})

test('whenIdle resolves only after the last batch has committed (the next batch launches before that)', async () => {
  t = await startTestHost({ backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) }, limits: { batchWindowMs: 0 } })
  const { jobs } = await submitTogether(t, 5)
  for (const job of jobs) {
    const row = t.host.context.store.getJob(job)!
    expect(row.state).toBe('completed')
    const result = t.host.context.store.getResult(job, Date.now())!
    expect(verifyReceipt(new Uint8Array(result.receipt), t.host.publicKey).job).toBe(job)
  }
})

test('an idle engine starts a job before its admission commits, which records it as running; a failed commit abandons it', async () => {
  t = await startTestHost({ backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) }, limits: { batchWindowMs: 0 } })
  const { store } = t.host.context
  const inserted: { state: string; attempts: number; startedAt: number | null }[] = []
  const insertJob = store.insertJob.bind(store)
  store.insertJob = row => { inserted.push({ state: row.state, attempts: row.attempts, startedAt: row.startedAt }); insertJob(row) }
  const ok = await submit(t.host, sign(t.host, t.user, blockProgram()), 10)
  expect(ok.status).toBe(200)
  expect(inserted).toEqual([{ state: 'running', attempts: 1, startedAt: expect.any(Number) }])
  const job = ok.headers.get('weft-job')!
  expect(store.getJob(job)).toMatchObject({ state: 'completed', attempts: 1 })
  expect(store.auditLog().filter(a => a.jobId === job).map(a => a.action).sort()).toEqual(['job-accepted', 'job-end'])

  store.insertJob = () => { throw new Error('disk full') }
  const failed = await submit(t.host, sign(t.host, t.user, blockProgram()), 10)
  expect(failed.status).toBe(500)
  store.insertJob = insertJob
  await t.host.context.scheduler.whenIdle()
  await new Promise(resolve => setTimeout(resolve, 200)) // the abandoned run comes back and is dropped
  expect(store.counts()).toEqual({ queued: 0, running: 0 })
  const after = await submit(t.host, sign(t.host, t.user, blockProgram()), 10) // the engine still serves
  expect(after.status).toBe(200)
})

test('a held submission is answered from the committed result in memory, byte for byte what GET /result serves', async () => {
  t = await startTestHost({ backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) }, limits: { batchWindowMs: 0 } })
  const { store } = t.host.context
  let reads = 0
  const getResult = store.getResult.bind(store)
  store.getResult = (id, now) => { reads++; return getResult(id, now) }
  const held = await submit(t.host, sign(t.host, t.user, blockProgram()), 10)
  expect(held.status).toBe(200)
  const heldBody = new Uint8Array(await held.arrayBuffer())
  expect(reads).toBe(0)
  const fetched = await t.host.app.request(`/v1/jobs/${held.headers.get('weft-job')!}/result`)
  expect(reads).toBe(1)
  expect(Buffer.from(new Uint8Array(await fetched.arrayBuffer())).equals(Buffer.from(heldBody))).toBe(true)
})

test('jobs whose batch the store failed to mark running go back to the queue in submission order and run (not stranded until restart)', async () => {
  t = await startTestHost({ backends: { onnx: workerBackend({ module: ONNX_BACKEND_MODULE, factory: 'onnxBackend' }) }, limits: { batchWindowMs: 30 } })
  const { store } = t.host.context
  const markRunning = store.markRunning.bind(store)
  const marked: string[][] = []
  let failures = 1
  store.markRunning = (ids, now) => {
    marked.push([...ids])
    if (failures-- > 0) throw new Error('database is locked')
    return markRunning(ids, now)
  }
  const { jobs, starts } = await submitTogether(t, 3)
  expect(marked.length).toBe(2)
  expect(marked[1]).toEqual(marked[0])
  // submission order: jobs admitted in the same millisecond keep their admission order, so check the times
  const times = marked[1]!.map(id => store.getJob(id)!.submittedAt)
  expect(times).toEqual([...times].sort((a, b) => a - b))
  expect([...marked[1]!].sort()).toEqual([...jobs].sort())
  expect(starts.map(s => s.batchSize)).toEqual([3, 3, 3])
  for (const job of jobs) expect(store.getJob(job)!.state).toBe('completed')
})
