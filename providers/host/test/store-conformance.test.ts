// The store conformance suite: every behaviour the provider relies on, run against both implementations — SQLite
// (a real file) and PostgreSQL (a real server started for this file) — plus what only a shared store has to hold
// (claims, leases and take-over, the admission lock, atomic nonces between two nodes on one database).
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { JOB_EVENTS_MAX_AGE_MS, SqliteStore, type JobRow, type Store } from '../src/store/store.js'
import { PgStore } from '../src/store/pg-store.js'
import { startPostgres, type Postgres } from './postgres.js'
import { tempDb } from './helpers.js'

let pgServer: Postgres
beforeAll(async () => { pgServer = await startPostgres() }, 60_000)
afterAll(async () => { await pgServer?.stop() })

const opened: Store[] = []
afterAll(async () => { for (const s of opened.splice(0)) await s.close() })

const kinds: [string, () => Promise<Store>][] = [
  ['sqlite', async () => { const s = new SqliteStore(tempDb('conformance')); opened.push(s); return s }],
  ['postgres', async () => { const s = new PgStore(await pgServer.createDatabase()); opened.push(s); return s }],
]

let serial = 0
function jobRow (overrides: Partial<JobRow> = {}): JobRow {
  serial++
  return {
    id: `job_${serial}_${Math.random().toString(16).slice(2)}`, kid: 'k1', model: 'm', revision: 'r1', programDigest: 'pd', requestDigest: 'rd',
    program: Buffer.from([1, 2, 3, serial & 255]), state: 'queued', attempts: 0, error: null, estimatedEgress: 100, maxEgress: null,
    timeoutMs: 1000, submittedAt: 1_000 + serial, startedAt: null, endedAt: null, node: null, leaseUntil: null, ...overrides,
  }
}

const DAY = Date.parse('2026-12-05T12:00:00Z')
const result = (bytes: number) => ({ saves: new Uint8Array(bytes).fill(7), receipt: new Uint8Array([9, 9]), egressBytes: bytes, stats: { runMs: 1 }, edits: ['e@1'], revision: 'r1' })

describe.each(kinds)('%s store', (_kind, open) => {
  let s: Store
  beforeAll(async () => { s = await open() }, 60_000)

  test('keys: register, update, revoke; a revoked key cannot be registered again', () => {
    const key = s.addKey({ kid: 'kid_a', publicKey: new Uint8Array([1, 2, 3]), role: 'researcher', label: 'alice', now: 5 })
    expect(key).toMatchObject({ kid: 'kid_a', role: 'researcher', label: 'alice', createdAt: 5, revokedAt: null })
    expect([...s.getKey('kid_a')!.publicKey]).toEqual([1, 2, 3])
    expect(s.addKey({ kid: 'kid_a', publicKey: new Uint8Array([1, 2, 3]), role: 'operator', now: 6 }).role).toBe('operator')
    expect(s.listKeys().map(k => k.kid)).toContain('kid_a')
    expect(s.revokeKey('kid_a', 'lost', 7)).toBe(true)
    expect(s.revokeKey('kid_a', 'again', 8)).toBe(false)
    expect(s.getKey('kid_a')).toMatchObject({ revokedAt: 7, revokedReason: 'lost' })
    expect(() => s.addKey({ kid: 'kid_a', publicKey: new Uint8Array([1]), role: 'researcher', now: 9 })).toThrow(/revoked/)
    expect(s.getKey('nope')).toBeUndefined()
  })

  test('nonces: used once until they expire', () => {
    expect(s.useNonce('k', 'n1', 100, 10)).toBe(true)
    expect(s.useNonce('k', 'n1', 100, 20)).toBe(false)
    expect(s.nonceUsed('k', 'n1', 50)).toBe(true)
    expect(s.nonceUsed('k', 'n1', 100)).toBe(false)
    expect(s.useNonce('k', 'n1', 300, 150)).toBe(true) // expired: usable again
    s.recordNonce('k', 'n2', 500)
    expect(s.nonceUsed('k', 'n2', 400)).toBe(true)
    expect(s.sweep(1_000).nonces).toBeGreaterThanOrEqual(2)
    expect(s.nonceUsed('k', 'n2', 400)).toBe(false)
  })

  test('a job by the digest of the envelope that created it, for that key only', () => {
    const digest = `sha256:${'ab'.repeat(32)}`
    const job = jobRow({ kid: 'kr', requestDigest: digest })
    s.insertJob(job)
    expect(s.jobByRequest('kr', digest)?.id).toBe(job.id)
    expect(s.jobByRequest('someone-else', digest)).toBeUndefined()
    expect(s.jobByRequest('kr', `sha256:${'cd'.repeat(32)}`)).toBeUndefined()
  })

  test('jobs: queue order and positions, claims, completion exactly once with its ledger row and audit entry', () => {
    const a = jobRow({ kid: 'kq', estimatedEgress: 40 })
    const b = jobRow({ kid: 'kq', estimatedEgress: 60 })
    s.insertJob(a)
    s.insertJob(b)
    expect(s.getJob(a.id)).toMatchObject({ id: a.id, state: 'queued', attempts: 0, estimatedEgress: 40, node: null })
    expect([...s.getJob(a.id)!.program]).toEqual([...a.program])
    const queued = s.queuedJobs().map(j => j.id)
    expect(queued.indexOf(a.id)).toBeLessThan(queued.indexOf(b.id))
    expect(s.queuedIds().filter(id => id === a.id || id === b.id)).toEqual([a.id, b.id])
    expect(s.queuePosition(s.getJob(b.id)!)).toBe(s.queuePosition(s.getJob(a.id)!) + 1)
    expect(s.activeJobs('kq')).toBe(2)
    expect(s.reservedEgress('kq')).toBe(100)
    expect(s.jobsSince('kq', 0)).toBe(2)
    expect(s.markRunning([a.id], DAY)).toEqual([a.id])
    expect(s.markRunning([a.id], DAY)).toEqual([]) // already claimed
    const running = s.getJob(a.id)!
    expect(running).toMatchObject({ state: 'running', attempts: 1, startedAt: DAY })
    expect(s.queuePosition(running)).toBe(0)
    expect(s.counts().running).toBeGreaterThanOrEqual(1)
    const before = s.egressToday(DAY, 'kq')
    expect(s.completeJob(running, result(32), DAY, 60_000)).toBe(true)
    expect(s.completeJob(running, result(32), DAY, 60_000)).toBe(false) // ended: never stored or charged twice
    expect(s.egressToday(DAY, 'kq')).toBe(before + 32)
    expect(s.egressToday(DAY)).toBeGreaterThanOrEqual(32)
    expect(s.reservedEgress('kq')).toBe(60)
    const stored = s.getResult(a.id, DAY)!
    expect(stored).toMatchObject({ jobId: a.id, egressBytes: 32, expiresAt: DAY + 60_000 })
    expect([...stored.saves]).toEqual(Array(32).fill(7))
    expect(JSON.parse(stored.stats!)).toEqual({ runMs: 1 })
    expect(s.getResult(a.id, DAY + 60_000)).toBeUndefined()
    expect(s.getJob(a.id)!.state).toBe('completed')
    expect(s.auditLog(10).find(e => e.jobId === a.id)).toMatchObject({ action: 'job-end', egressBytes: 32, edits: JSON.stringify(['e@1']) })
    // a queued job ends once
    expect(s.endJob(b.id, 'cancelled', { code: 'JOB_CANCELLED', message: 'x', details: {} }, DAY)).toBe(true)
    expect(s.endJob(b.id, 'failed', { code: 'INTERNAL', message: 'x', details: {} }, DAY)).toBe(false)
    expect(s.getJob(b.id)).toMatchObject({ state: 'cancelled', endedAt: DAY })
    expect(s.activeJobs('kq')).toBe(0)
    expect(s.jobStates([a.id, b.id]).map(j => j.state).sort()).toEqual(['cancelled', 'completed'])
  })

  test('a job admission started at once is stored running; requeue puts a running job back', () => {
    const j = jobRow({ state: 'running', attempts: 1, startedAt: 2_000 })
    s.insertJob(j)
    expect(s.getJob(j.id)).toMatchObject({ state: 'running', attempts: 1 })
    s.requeue(j.id)
    expect(s.getJob(j.id)).toMatchObject({ state: 'queued', startedAt: null })
    expect(s.markRunning([j.id], 3_000)).toEqual([j.id])
    expect(s.getJob(j.id)!.attempts).toBe(2)
    expect(s.endJob(j.id, 'failed', { code: 'INTERNAL', message: 'boom', details: {} }, 4_000)).toBe(true)
  })

  test('transactions roll back as a whole', () => {
    const j = jobRow()
    expect(() => s.transaction(() => { s.insertJob(j); throw new Error('abort') })).toThrow('abort')
    expect(s.getJob(j.id)).toBeUndefined()
    s.transaction(() => { s.insertJob(j); s.log({ at: 1, actor: 'provider', action: 'job-accepted', jobId: j.id }) })
    expect(s.getJob(j.id)).toBeDefined()
  })

  test('settings: set, get, and a first-writer-wins init', () => {
    expect(s.getSetting('none')).toBeUndefined()
    s.setSetting('a', new Uint8Array([1]))
    s.setSetting('a', new Uint8Array([2]))
    expect([...s.getSetting('a')!]).toEqual([2])
    expect([...s.initSetting('b', new Uint8Array([3]))]).toEqual([3])
    expect([...s.initSetting('b', new Uint8Array([4]))]).toEqual([3])
  })

  test('edits: active edits follow additions and removals (same array while unchanged)', () => {
    const empty = s.activeEdits('me')
    expect(empty).toEqual([])
    s.addEdit({ id: 'e1', model: 'me', name: 'x', fragment: new Uint8Array([1]), digest: 'd1', now: 1 })
    s.addEdit({ id: 'e2', model: 'me', name: 'y', fragment: new Uint8Array([2]), digest: 'd2', now: 2 })
    const two = s.activeEdits('me')
    expect(two.map(e => e.id)).toEqual(['e1', 'e2'])
    expect(s.activeEdits('me')).toBe(two)
    expect(s.removeEdit('me', 'e1', 3)).toBe(true)
    expect(s.removeEdit('me', 'e1', 3)).toBe(false)
    expect(s.activeEdits('me').map(e => e.id)).toEqual(['e2'])
  })

  test('kept adapters: one per key and name (replaced in one commit), owner-scoped', () => {
    const row = { id: 'ad1', kid: 'ka', name: 'lora', model: 'm', revision: 'r', params: '{}', file: 'f1', bytes: 10, digest: 'sha256:1', jobId: null, programDigest: null, training: null, attach: null, createdAt: 1 }
    expect(s.putAdapter(row)).toBeUndefined()
    expect(s.putAdapter({ ...row, id: 'ad2', file: 'f2' })?.id).toBe('ad1')
    expect(s.getAdapter('ka', 'lora')?.id).toBe('ad2')
    expect(s.getAdapter('other', 'lora')).toBeUndefined()
    expect(s.listAdapters('ka').map(a => a.id)).toEqual(['ad2'])
    expect([...s.adapterFiles()]).toContain('f2')
    expect(s.deleteAdapter('ka', 'lora')?.id).toBe('ad2')
    expect(s.deleteAdapter('ka', 'lora')).toBeUndefined()
  })

  test('nodes: heartbeats, the live ones first started first, clean leave and forgetting; leases: one holder until expiry', () => {
    s.heartbeatNode('n2', 'http://127.0.0.1:2', 100)
    s.heartbeatNode('n1', 'http://127.0.0.1:1', 50)
    s.heartbeatNode('n3', 'http://127.0.0.1:3', 60)
    s.heartbeatNode('n2', 'http://127.0.0.1:22', 200) // renewed (and moved): started stays 100
    expect(s.liveNodes(0)).toEqual([
      { id: 'n1', url: 'http://127.0.0.1:1', startedAt: 50, seenAt: 50 },
      { id: 'n3', url: 'http://127.0.0.1:3', startedAt: 60, seenAt: 60 },
      { id: 'n2', url: 'http://127.0.0.1:22', startedAt: 100, seenAt: 200 },
    ])
    expect(s.liveNodes(60).map(n => n.id)).toEqual(['n3', 'n2'])
    s.removeNode('n3')
    expect(s.forgetNodes(100)).toBe(1) // n1
    expect(s.liveNodes(0).map(n => n.id)).toEqual(['n2'])

    expect(s.acquireLease('publisher', 'n1', 1_000, 2_000)).toBe(true)
    expect(s.acquireLease('publisher', 'n2', 1_500, 2_500)).toBe(false) // held until 2000
    expect(s.acquireLease('publisher', 'n1', 1_900, 2_900)).toBe(true) // renewed by its holder
    expect(s.acquireLease('publisher', 'n2', 2_899, 3_899)).toBe(false)
    expect(s.acquireLease('publisher', 'n2', 2_901, 3_901)).toBe(true) // expired: taken over
    expect(s.acquireLease('publisher', 'n1', 3_000, 4_000)).toBe(false)
    s.releaseLease('publisher', 'n1') // not the holder: nothing happens
    expect(s.acquireLease('publisher', 'n1', 3_000, 4_000)).toBe(false)
    s.releaseLease('publisher', 'n2')
    expect(s.acquireLease('publisher', 'n1', 3_000, 4_000)).toBe(true)
    expect(s.acquireLease('other', 'n2', 3_000, 4_000)).toBe(true) // leases are per name
  })

  test('job events: appended, read after a cursor in order, cancel requests, deleted per job and by age', () => {
    const [x, y] = [jobRow(), jobRow()]
    s.appendJobEvents([
      { jobId: x.id, event: 'job-token', data: '{"id":1}', at: 10 }, { jobId: y.id, event: 'job-progress', data: '{"stage":"run"}', at: 11 },
      { jobId: x.id, event: 'job-token', data: '{"id":2}', at: 12 },
    ])
    s.flushJobEvents()
    const all = s.jobEventsAfter([x.id, y.id], 0)
    expect(all.map(e => [e.jobId, e.event, e.data])).toEqual([[x.id, 'job-token', '{"id":1}'], [y.id, 'job-progress', '{"stage":"run"}'], [x.id, 'job-token', '{"id":2}']])
    expect(all[1]!.id).toBeGreaterThan(all[0]!.id)
    expect(s.jobEventsAfter([x.id], all[0]!.id).map(e => e.data)).toEqual(['{"id":2}'])
    expect(s.jobEventsAfter([x.id], 0, 1)).toHaveLength(1)
    expect(s.jobEventsAfter([], 0)).toEqual([])
    expect(s.cancelRequested([x.id, y.id])).toEqual([])
    s.requestCancel(y.id, 13)
    expect(s.cancelRequested([x.id, y.id])).toEqual([y.id])
    expect(s.deleteJobEvents([x.id])).toBe(2)
    expect(s.jobEventsAfter([x.id, y.id], 0).map(e => e.event)).toEqual(['job-progress', 'cancel-request'])
    expect(s.sweep(13 + JOB_EVENTS_MAX_AGE_MS - 1).events).toBe(1) // the one at 11; the request at 13 is younger
    expect(s.sweep(13 + JOB_EVENTS_MAX_AGE_MS).events).toBe(1)
  })

  test('training checkpoints: one row per running job, overwritten, refused unless running, deleted when the job ends', () => {
    const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)
    const queued = jobRow()
    s.insertJob(queued)
    expect(s.putTrainCheckpoint({ jobId: queued.id, step: 5, state: bytes(4, 1), now: 10 })).toBe(false) // not running
    expect(s.getTrainCheckpoint(queued.id)).toBeUndefined()
    expect(s.markRunning([queued.id], 20)).toEqual([queued.id])
    expect(s.putTrainCheckpoint({ jobId: queued.id, step: 10, state: bytes(3000, 2), now: 30 })).toBe(true)
    const first = s.getTrainCheckpoint(queued.id)!
    expect(first).toMatchObject({ jobId: queued.id, step: 10, updatedAt: 30 })
    expect(Buffer.isBuffer(first.state) && first.state.equals(Buffer.from(bytes(3000, 2)))).toBe(true)
    expect(s.putTrainCheckpoint({ jobId: queued.id, step: 20, state: bytes(7, 3), now: 40 })).toBe(true) // replaces it
    expect(s.getTrainCheckpoint(queued.id)).toMatchObject({ step: 20, updatedAt: 40 })
    expect([...s.getTrainCheckpoint(queued.id)!.state]).toEqual([...bytes(7, 3)])
    // a requeued job keeps it (it resumes from it); completion deletes it in the same commit
    s.requeue(queued.id)
    expect(s.getTrainCheckpoint(queued.id)?.step).toBe(20)
    expect(s.putTrainCheckpoint({ jobId: queued.id, step: 21, state: bytes(1, 4), now: 45 })).toBe(false)
    expect(s.markRunning([queued.id], 50)).toEqual([queued.id])
    expect(s.completeJob(s.getJob(queued.id)!, result(4), 60, 60_000)).toBe(true)
    expect(s.getTrainCheckpoint(queued.id)).toBeUndefined()
    expect(s.putTrainCheckpoint({ jobId: queued.id, step: 30, state: bytes(1, 5), now: 70 })).toBe(false) // ended: never again
    expect(s.getTrainCheckpoint(queued.id)).toBeUndefined()
    // a job that fails or is cancelled (endJob; recovery fails jobs through it) loses its checkpoint too
    for (const state of ['failed', 'cancelled'] as const) {
      const job = jobRow({ state: 'running', attempts: 1, startedAt: 80 })
      s.insertJob(job)
      expect(s.putTrainCheckpoint({ jobId: job.id, step: 3, state: bytes(2, 6), now: 90 })).toBe(true)
      expect(s.endJob(job.id, state, { code: 'INTERNAL', message: 'x', details: {} }, 100)).toBe(true)
      expect(s.getTrainCheckpoint(job.id)).toBeUndefined()
    }
    expect(s.getTrainCheckpoint('no-such-job')).toBeUndefined()
  })

  test('egress charged outside a job, revisions', () => {
    const before = s.egressToday(DAY, 'kc')
    s.chargeEgress({ kid: 'kc', ref: 'adapter:x', model: 'm', bytes: 5, action: 'adapter-download' }, DAY)
    expect(s.egressToday(DAY, 'kc')).toBe(before + 5)
    s.recordRevision('m', 'r1', '/a', 1)
    s.recordRevision('m', 'r2', '/b', 2)
    expect(s.latestRevision('m')).toEqual({ revision: 'r2', path: '/b' })
    expect(s.latestRevision('none')).toBeUndefined()
  })
})

describe('two nodes on one PostgreSQL database', () => {
  let a: PgStore
  let b: PgStore
  beforeAll(async () => {
    const url = await pgServer.createDatabase()
    a = new PgStore(url, { node: 'node_a', leaseMs: 200 })
    b = new PgStore(url, { node: 'node_b', leaseMs: 200 })
    opened.push(a, b)
  }, 60_000)

  test('claims are disjoint; only the claiming node completes; an expired claim is taken over and the old node cannot complete', async () => {
    const rows = Array.from({ length: 20 }, () => jobRow())
    for (const row of rows) a.insertJob(row)
    const ids = rows.map(r => r.id)
    const byA = a.markRunning(ids.slice(0, 15), Date.now())
    const byB = b.markRunning(ids.slice(5), Date.now())
    expect(byA.length + byB.length).toBe(20)
    expect(byA.filter(id => byB.includes(id))).toEqual([])
    const first = a.getJob(byA[0]!)!
    expect(first.node).toBe('node_a')
    expect(b.completeJob(first, result(8), Date.now(), 60_000)).toBe(false) // not b's claim
    expect(b.takeOver(3, Date.now())).toEqual({ requeued: [], failed: [] }) // leases still hold
    a.renewLeases(byA, Date.now())
    await new Promise(resolve => setTimeout(resolve, 250))
    const taken = b.takeOver(3, Date.now())
    expect(taken.requeued.sort()).toEqual([...ids].sort())
    expect(a.completeJob(first, result(8), Date.now(), 60_000)).toBe(false) // a's claim is gone
    expect(b.markRunning([first.id], Date.now())).toEqual([first.id])
    expect(b.completeJob(b.getJob(first.id)!, result(8), Date.now(), 60_000)).toBe(true)
    expect(b.getJob(first.id)).toMatchObject({ state: 'completed', attempts: 2, node: 'node_b' })
  })

  test('a job whose claims expired maxAttempts times fails with a reason', async () => {
    const row = jobRow()
    a.insertJob(row)
    expect(a.markRunning([row.id], Date.now())).toEqual([row.id])
    await new Promise(resolve => setTimeout(resolve, 250))
    expect(b.takeOver(1, Date.now()).failed).toEqual([row.id])
    const failed = b.getJob(row.id)!
    expect(failed.state).toBe('failed')
    expect(JSON.parse(failed.error!)).toMatchObject({ code: 'EXECUTION_FAILED', details: { reason: 'node-lost', node: 'node_a', attempts: 1 } })
  })

  test('training checkpoints: only the node whose claim stands writes one; a take-over keeps it to resume from, a failed take-over deletes it', async () => {
    const row = jobRow()
    a.insertJob(row)
    expect(a.markRunning([row.id], Date.now())).toEqual([row.id])
    expect(b.putTrainCheckpoint({ jobId: row.id, step: 1, state: new Uint8Array([1]), now: 1 })).toBe(false) // a's claim
    expect(a.putTrainCheckpoint({ jobId: row.id, step: 10, state: new Uint8Array([2, 2]), now: 2 })).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 250))
    expect(b.takeOver(3, Date.now()).requeued).toContain(row.id)
    expect(a.putTrainCheckpoint({ jobId: row.id, step: 11, state: new Uint8Array([3]), now: 3 })).toBe(false) // a lost it
    expect(b.getTrainCheckpoint(row.id)).toMatchObject({ step: 10 })
    expect(b.markRunning([row.id], Date.now())).toEqual([row.id])
    expect(b.putTrainCheckpoint({ jobId: row.id, step: 20, state: new Uint8Array([4]), now: 4 })).toBe(true)
    expect(a.getTrainCheckpoint(row.id)).toMatchObject({ step: 20 })
    await new Promise(resolve => setTimeout(resolve, 250))
    expect(a.takeOver(2, Date.now()).failed).toEqual([row.id])
    expect(a.getTrainCheckpoint(row.id)).toBeUndefined()
  })

  test('the admission lock admits one node at a time, across connections', async () => {
    const spans: [number, number][] = []
    const section = async (): Promise<void> => {
      const start = performance.now()
      await new Promise(resolve => setTimeout(resolve, 40))
      spans.push([start, performance.now()])
    }
    await Promise.all([a.exclusive(section), b.exclusive(section), a.exclusive(section), b.exclusive(section)])
    spans.sort((x, y) => x[0] - y[0])
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1] - 1)
  })

  test('events a node appends are written before its next transaction, so they precede the job end it commits', () => {
    const row = jobRow()
    a.insertJob(row)
    expect(a.markRunning([row.id], Date.now())).toEqual([row.id])
    a.appendJobEvents([{ jobId: row.id, event: 'job-token', data: '{"id":7}', at: Date.now() }])
    expect(b.jobEventsAfter([row.id], 0)).toEqual([]) // buffered
    expect(a.completeJob(a.getJob(row.id)!, result(4), Date.now(), 60_000)).toBe(true)
    expect(b.getJob(row.id)!.state).toBe('completed')
    expect(b.jobEventsAfter([row.id], 0).map(e => e.data)).toEqual(['{"id":7}'])
  })

  test('a running job with a cancel request whose node stopped ends cancelled at take-over, not run again', async () => {
    const row = jobRow()
    a.insertJob(row)
    expect(a.markRunning([row.id], Date.now())).toEqual([row.id])
    b.requestCancel(row.id, Date.now())
    expect(a.cancelRequested([row.id])).toEqual([row.id])
    await new Promise(resolve => setTimeout(resolve, 250))
    expect(b.takeOver(3, Date.now())).toEqual({ requeued: [], failed: [row.id] })
    const ended = b.getJob(row.id)!
    expect(ended.state).toBe('cancelled')
    expect(JSON.parse(ended.error!)).toMatchObject({ code: 'JOB_CANCELLED', details: { reason: 'node-lost', node: 'node_a' } })
  })

  test('a nonce recorded by one node is refused by the other', () => {
    expect(a.useNonce('k', 'shared', Date.now() + 60_000, Date.now())).toBe(true)
    expect(b.useNonce('k', 'shared', Date.now() + 60_000, Date.now())).toBe(false)
    expect(b.nonceUsed('k', 'shared', Date.now())).toBe(true)
  })

  test('a lease taken by one node is refused to the other until it expires; nodes registered by one are seen by the other', () => {
    const now = Date.now()
    for (let round = 0; round < 10; round++) {
      const name = `lease-${round}`
      const first = round % 2 === 0 ? a : b
      const second = first === a ? b : a
      expect(first.acquireLease(name, first.node!, now, now + 1_000)).toBe(true)
      expect(second.acquireLease(name, second.node!, now + 999, now + 2_000)).toBe(false)
      expect(second.acquireLease(name, second.node!, now + 1_001, now + 2_000)).toBe(true)
    }
    a.heartbeatNode('node_a', 'http://127.0.0.1:1', now)
    b.heartbeatNode('node_b', 'http://127.0.0.1:2', now + 1)
    expect(b.liveNodes(now).map(n => n.url)).toEqual(['http://127.0.0.1:1', 'http://127.0.0.1:2'])
    expect(a.liveNodes(0)).toEqual(b.liveNodes(0))
  })
})
