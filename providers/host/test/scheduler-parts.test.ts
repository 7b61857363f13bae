// The scheduler's three parts on their own: the result cache's bounds (count and bytes), the job queue over a real
// SQLite store (order, per-model lists, claims won and lost, a failed claim put back, mirroring another node's
// queue), and how the batch runner forms co-tenant batches (window, sessions alone, sizes).
import { afterEach, describe, expect, test } from 'vitest'
import { encodeProgram, type Program } from '@weft/core'
import { ResultCache } from '../src/jobs/result-cache.js'
import type { StoredResult } from '../src/jobs/complete-job.js'
import { JobQueue, traitsOf, type QueuedJob } from '../src/jobs/job-queue.js'
import { formBatch, type BatchPolicy } from '../src/jobs/batch-runner.js'
import { SqliteStore, type JobRow } from '../src/store/store.js'
import { blockProgram, tempDb } from './helpers.js'
import { steeringTraining } from './training-programs.js'

const result = (bytes: number): StoredResult => ({ saves: new Uint8Array(bytes), receipt: new Uint8Array(8), egressBytes: bytes, stats: null })

describe('result cache', () => {
  test('a result is taken once; the bytes held follow puts and takes', () => {
    const cache = new ResultCache()
    const a = result(100)
    cache.put('a', a)
    cache.put('b', result(50))
    expect(cache.bytes).toBe(150)
    expect(cache.take('a')).toBe(a)
    expect(cache.take('a')).toBeUndefined()
    expect(cache.size).toBe(1)
    expect(cache.bytes).toBe(50)
  })

  test('beyond its byte bound the oldest results are dropped; the newest is kept however large', () => {
    const cache = new ResultCache(1024, 250)
    cache.put('a', result(100))
    cache.put('b', result(100))
    cache.put('c', result(100)) // 300 > 250: a goes
    expect(cache.take('a')).toBeUndefined()
    expect(cache.bytes).toBe(200)
    cache.put('big', result(1000)) // over the bound alone: everything older goes, it stays
    expect(cache.size).toBe(1)
    expect(cache.bytes).toBe(1000)
    expect(cache.take('big')?.saves.byteLength).toBe(1000)
    expect(cache.bytes).toBe(0)
  })

  test('beyond its count bound the oldest results are dropped; a result put twice counts once', () => {
    const cache = new ResultCache(3, 1 << 20)
    for (const id of ['a', 'b', 'c', 'd', 'e']) cache.put(id, result(10))
    expect(['a', 'b', 'c', 'd', 'e'].map(id => cache.take(id) !== undefined)).toEqual([false, false, true, true, true])
    cache.put('x', result(10))
    cache.put('x', result(30))
    expect(cache.size).toBe(1)
    expect(cache.bytes).toBe(30)
  })
})

const plain = encodeProgram(blockProgram())
const training = encodeProgram(steeringTraining(() => [1, 2, 3], { steps: 2 }))

let serial = 0
function jobRow (overrides: Partial<JobRow> = {}): JobRow {
  serial++
  return {
    id: `job_${String(serial).padStart(4, '0')}`, kid: 'k', model: 'm', revision: 'r', programDigest: 'pd', requestDigest: 'rd',
    program: Buffer.from(plain), state: 'queued', attempts: 0, error: null, estimatedEgress: 1, maxEgress: null, timeoutMs: 1000,
    submittedAt: 1_000 + serial, startedAt: null, endedAt: null, node: null, leaseUntil: null, ...overrides,
  }
}

describe('job queue', () => {
  const stores: SqliteStore[] = []
  const open = (path = tempDb('queue')): SqliteStore => { const s = new SqliteStore(path); stores.push(s); return s }
  afterEach(() => { for (const s of stores.splice(0)) s.close() })

  const ids = (jobs: readonly QueuedJob[]): string[] => jobs.map(job => job.row.id)

  test('loads the store\'s queued jobs in submission order, per model, with traits from their stored Programs', () => {
    const store = open()
    const rows = [jobRow({ model: 'a' }), jobRow({ model: 'b', program: Buffer.from(training) }), jobRow({ model: 'a' }), jobRow({ model: 'b', state: 'completed' })]
    for (const row of [...rows].reverse()) store.insertJob(row) // inserted out of order: the store's order counts
    const queue = new JobQueue(store)
    queue.load()
    expect(queue.size).toBe(3)
    const byModel = queue.byModel()
    expect([...byModel.keys()]).toEqual(['a', 'b'])
    expect(ids(byModel.get('a')!)).toEqual([rows[0]!.id, rows[2]!.id])
    expect(byModel.get('b')!.map(job => job.traits)).toEqual([{ solo: true, training: true }])
    expect(byModel.get('a')![0]!.traits).toEqual({ solo: false, training: false })
    expect(queue.hasModel('b')).toBe(true)
    expect(queue.hasModel('c')).toBe(false)
    expect(queue.position(rows[2]!.id)).toBe(3) // 1-based: two queued jobs were submitted before it
    expect(queue.position('job_nope')).toBeUndefined()
  })

  test('a claim marks the jobs running in the store; jobs another claim took first are dropped', () => {
    const store = open()
    const rows = [jobRow(), jobRow(), jobRow()]
    for (const row of rows) store.insertJob(row)
    const queue = new JobQueue(store)
    queue.load()
    store.markRunning([rows[1]!.id], 5) // claimed elsewhere meanwhile
    const claimed = queue.claim(queue.byModel().get('m')!, 7)
    expect(ids(claimed)).toEqual([rows[0]!.id, rows[2]!.id])
    expect(queue.size).toBe(0)
    expect(store.getJob(rows[0]!.id)).toMatchObject({ state: 'running', attempts: 1, startedAt: 7 })
    expect(store.getJob(rows[1]!.id)).toMatchObject({ state: 'running', attempts: 1, startedAt: 5 })
  })

  test('a claim the store fails puts its jobs back at the head, in order, and throws', () => {
    const store = open()
    const rows = [jobRow(), jobRow(), jobRow(), jobRow()]
    for (const row of rows) store.insertJob(row)
    const queue = new JobQueue(store)
    queue.load()
    const markRunning = store.markRunning.bind(store)
    store.markRunning = () => { throw new Error('database is locked') }
    expect(() => queue.claim(queue.byModel().get('m')!.slice(0, 2), 7)).toThrow('database is locked')
    expect(ids(queue.byModel().get('m')!)).toEqual(rows.map(row => row.id))
    store.markRunning = markRunning
    expect(ids(queue.claim(queue.byModel().get('m')!.slice(0, 2), 8))).toEqual([rows[0]!.id, rows[1]!.id])
    expect(store.getJob(rows[0]!.id)!.state).toBe('running')
  })

  test('a requeued job goes back to its place by submission time, keeping its traits', () => {
    const store = open()
    const rows = [jobRow({ program: Buffer.from(training) }), jobRow(), jobRow()]
    for (const row of rows) store.insertJob(row)
    const queue = new JobQueue(store)
    queue.load()
    const [first] = queue.claim([queue.byModel().get('m')![0]!], 9)
    const row = queue.requeue(first!)
    expect(row).toMatchObject({ id: rows[0]!.id, state: 'queued', startedAt: null, attempts: 1 })
    const again = queue.byModel().get('m')!
    expect(ids(again)).toEqual(rows.map(r => r.id))
    expect(again[0]!.traits).toEqual({ solo: true, training: true })
  })

  test('mirroring a shared queue: jobs another node admitted join, jobs it claimed leave, jobs running here stay out', () => {
    const path = tempDb('shared')
    const store = open(path)
    const other = open(path) // a second connection to the same database, as another node's
    const queue = new JobQueue(store)
    const mine = jobRow()
    store.insertJob(mine)
    queue.load()
    const theirs = [jobRow(), jobRow(), jobRow()]
    for (const row of theirs) other.insertJob(row)
    other.markRunning([mine.id], 3) // the other node claimed this node's job
    const runsHere = new Set([theirs[2]!.id])
    expect(queue.mirror(id => runsHere.has(id))).toBe(true)
    expect(ids(queue.byModel().get('m')!)).toEqual([theirs[0]!.id, theirs[1]!.id])
    expect(queue.mirror(id => runsHere.has(id))).toBe(false) // nothing new
    // both nodes claim the same batch: each job runs once
    const otherQueue = new JobQueue(other)
    otherQueue.load()
    const wonThere = otherQueue.claim(otherQueue.byModel().get('m')!.slice(0, 1), 4)
    const wonHere = queue.claim(queue.byModel().get('m')!, 5)
    expect(ids(wonThere)).toEqual([theirs[0]!.id])
    expect(ids(wonHere)).toEqual([theirs[1]!.id])
  })
})

describe('forming co-tenant batches', () => {
  const policy: BatchPolicy = { batchWindowMs: 30, maxBatchJobs: 8, sizes: 'any' }
  const job = (submittedAt: number, program?: Program): QueuedJob => ({ row: jobRow({ submittedAt }), traits: traitsOf(program) })
  const session = steeringTraining(() => [1], { steps: 1 })

  test('waits out the batch window of the youngest job while the model is idle and the batch has room', () => {
    const jobs = [job(1000), job(1010)]
    expect(formBatch(jobs, policy, 1020, false)).toEqual({ waitMs: 20 })
    expect(formBatch(jobs, policy, 1040, false)).toEqual({ batch: jobs })
    expect(formBatch(jobs, policy, 1020, true)).toEqual({ batch: jobs }) // the model runs a batch: no waiting
    expect(formBatch(jobs, { ...policy, maxBatchJobs: 2 }, 1020, false)).toEqual({ batch: jobs }) // full
    const late = [job(1000), job(1100)] // the oldest has waited four windows
    expect(formBatch(late, policy, 1120, false)).toEqual({ batch: late })
  })

  test('a session runs alone; plain jobs go together up to the first session, at most maxBatchJobs', () => {
    const jobs = [job(1), job(2), job(3, session), job(4)]
    expect(formBatch(jobs, policy, 1000, false)).toEqual({ batch: jobs.slice(0, 2) })
    expect(formBatch(jobs.slice(2), policy, 1000, false)).toEqual({ batch: [jobs[2]] })
    const many = Array.from({ length: 12 }, (_, i) => job(i))
    expect(formBatch(many, policy, 1000, false)).toEqual({ batch: many.slice(0, 8) })
  })

  test("'powers-of-two' takes the largest power of two of the jobs that may go together", () => {
    const seven = Array.from({ length: 7 }, (_, i) => job(i))
    const sizes = (jobs: QueuedJob[]): number[] => {
      const out: number[] = []
      while (jobs.length > 0) {
        const next = formBatch(jobs, { ...policy, sizes: 'powers-of-two' }, 1000, false)
        if (!('batch' in next)) throw new Error('waited')
        out.push(next.batch.length)
        jobs = jobs.slice(next.batch.length)
      }
      return out
    }
    expect(sizes(seven)).toEqual([4, 2, 1])
  })
})
