/**
 * Store: every read and write of durable provider state goes through here (one interface, synchronous calls,
 * multi-row changes in transactions), so the HTTP routes and the scheduler never touch SQL. Two implementations:
 * SqliteStore (this file; embedded default, one provider process) and PgStore (./pg-store.ts; PostgreSQL shared by
 * any number of provider nodes). `openStore` picks one from `--db`. See docs/decisions/2026-12-05-multi-node.md.
 */
import { WeftError } from '@weft/core'
import { and, asc, desc, eq, gt, gte, inArray, isNull, lt, lte, or, sql } from 'drizzle-orm'
import { openDatabase, type Db, type Durability } from './open-database.js'
import { BACKSTOP_CHECKPOINT_PAGES, startCheckpointer, type Checkpointer } from './checkpointer.js'
import { accounts, adapters, audit, edits, egress, jobEvents, jobs, keys, leases, nodes, nonces, results, revisions, settings, trainCheckpoints } from './schema.js'
import type Database from 'better-sqlite3'
import { STORE_MAX_RESULT_BYTES } from '../jobs/limits.js'

export type JobRow = typeof jobs.$inferSelect
export type KeyRow = typeof keys.$inferSelect
export type ResultRow = typeof results.$inferSelect
export type EditRow = typeof edits.$inferSelect
export type AuditRow = typeof audit.$inferSelect
export type AdapterRow = typeof adapters.$inferSelect
export type AuditEntry = Omit<typeof audit.$inferInsert, 'id'>
/** a provider node: its public base URL, when it started and when it last said it is alive (ms) */
export type NodeRow = typeof nodes.$inferSelect
export type TrainCheckpointRow = typeof trainCheckpoints.$inferSelect

/** an engine event of a running job (or a cancel request) as shared between nodes; `data` is the event's JSON */
export interface JobEventRecord { jobId: string; event: 'job-progress' | 'job-token' | 'cancel-request'; data: string; at: number }
export interface StoredJobEvent { id: number; jobId: string; event: string; data: string }

/** job events older than this are deleted by the sweep (a node that died never deleted its jobs' events) */
export const JOB_EVENTS_MAX_AGE_MS = 60 * 60_000

/** UTC calendar day of a millisecond timestamp: the egress ledger's accounting period. */
export function utcDay (ms: number): string { return new Date(ms).toISOString().slice(0, 10) }

const p = sql.placeholder
const ACTIVE = ['queued', 'running']

/** Hot-path queries, built and prepared once (drizzle would otherwise rebuild the SQL on every call). */
function prepareQueries (db: Db) {
  const count = sql<number>`count(*)`
  return {
    getKey: db.select().from(keys).where(eq(keys.kid, p('kid'))).prepare(),
    getNonce: db.select().from(nonces).where(and(eq(nonces.kid, p('kid')), eq(nonces.nonce, p('nonce')))).prepare(),
    putNonce: db.insert(nonces).values({ kid: p('kid'), nonce: p('nonce'), expiresAt: p('expiresAt') })
      .onConflictDoUpdate({ target: [nonces.kid, nonces.nonce], set: { expiresAt: sql`excluded.expires_at` } }).prepare(),
    getJob: db.select().from(jobs).where(eq(jobs.id, p('id'))).prepare(),
    jobByRequest: db.select().from(jobs).where(and(eq(jobs.kid, p('kid')), eq(jobs.requestDigest, p('requestDigest')))).orderBy(asc(jobs.submittedAt)).limit(1).prepare(),
    queued: db.select().from(jobs).where(eq(jobs.state, 'queued')).orderBy(asc(jobs.submittedAt), asc(jobs.id)).limit(p('limit')).prepare(),
    position: db.select({ n: count }).from(jobs).where(and(eq(jobs.state, 'queued'), lt(jobs.submittedAt, p('at')))).prepare(),
    active: db.select({ n: count }).from(jobs).where(and(eq(jobs.kid, p('kid')), inArray(jobs.state, ACTIVE))).prepare(),
    insertJob: db.insert(jobs).values({
      id: p('id'), kid: p('kid'), model: p('model'), revision: p('revision'), programDigest: p('programDigest'),
      requestDigest: p('requestDigest'), program: p('program'), state: p('state'), attempts: p('attempts'), error: p('error'),
      estimatedEgress: p('estimatedEgress'), maxEgress: p('maxEgress'), timeoutMs: p('timeoutMs'), submittedAt: p('submittedAt'),
      startedAt: p('startedAt'), endedAt: p('endedAt'),
    }).prepare(),
    markRunning: db.update(jobs).set({ state: 'running', startedAt: sql`${p('now')}`, attempts: sql`${jobs.attempts} + 1` })
      .where(and(eq(jobs.id, p('id')), eq(jobs.state, 'queued'))).prepare(),
    requeue: db.update(jobs).set({ state: 'queued', startedAt: null }).where(and(eq(jobs.id, p('id')), eq(jobs.state, 'running'))).prepare(),
    endJob: db.update(jobs).set({ state: sql`${p('state')}`, error: sql`${p('error')}`, endedAt: sql`${p('now')}` })
      .where(and(eq(jobs.id, p('id')), inArray(jobs.state, ACTIVE))).prepare(),
    counts: db.select({ state: jobs.state, n: count }).from(jobs).where(inArray(jobs.state, ACTIVE)).groupBy(jobs.state).prepare(),
    activeEdits: db.select().from(edits).where(and(eq(edits.model, p('model')), isNull(edits.removedAt))).orderBy(asc(edits.createdAt), asc(edits.id)).prepare(),
    finishRunning: db.update(jobs).set({ state: 'completed', endedAt: sql`${p('now')}`, revision: sql`${p('revision')}` })
      .where(and(eq(jobs.id, p('id')), eq(jobs.state, 'running'))).prepare(),
    insertResult: db.insert(results).values({
      jobId: p('jobId'), saves: p('saves'), receipt: p('receipt'), egressBytes: p('egressBytes'), stats: p('stats'),
      createdAt: p('createdAt'), expiresAt: p('expiresAt'),
    }).prepare(),
    insertEgress: db.insert(egress).values({ kid: p('kid'), jobId: p('jobId'), model: p('model'), bytes: p('bytes'), day: p('day'), at: p('at') }).prepare(),
    insertAudit: db.insert(audit).values({
      at: p('at'), actor: p('actor'), action: p('action'), jobId: p('jobId'), programDigest: p('programDigest'), model: p('model'),
      revision: p('revision'), edits: p('edits'), egressBytes: p('egressBytes'), detail: p('detail'),
    }).prepare(),
    getResult: db.select().from(results).where(and(eq(results.jobId, p('id')), gt(results.expiresAt, p('now')))).prepare(),
    egressKey: db.select({ n: sql<number>`coalesce(sum(${egress.bytes}), 0)` }).from(egress).where(and(eq(egress.day, p('day')), eq(egress.kid, p('kid')))).prepare(),
    egressAll: db.select({ n: sql<number>`coalesce(sum(${egress.bytes}), 0)` }).from(egress).where(eq(egress.day, p('day'))).prepare(),
    reservedKey: db.select({ n: sql<number>`coalesce(sum(${jobs.estimatedEgress}), 0)` }).from(jobs).where(and(inArray(jobs.state, ACTIVE), eq(jobs.kid, p('kid')))).prepare(),
    reservedAll: db.select({ n: sql<number>`coalesce(sum(${jobs.estimatedEgress}), 0)` }).from(jobs).where(inArray(jobs.state, ACTIVE)).prepare(),
    // written only while the job runs: a checkpoint arriving after its job ended never outlives it
    putCheckpoint: db.insert(trainCheckpoints).select(sql`select ${p('jobId')}, ${p('step')}, ${p('state')}, ${p('now')} where exists (select 1 from ${jobs} where ${jobs.id} = ${p('jobId')} and ${jobs.state} = 'running')`)
      .onConflictDoUpdate({ target: trainCheckpoints.jobId, set: { step: sql`excluded.step`, state: sql`excluded.state`, updatedAt: sql`excluded.updated_at` } }).prepare(),
    deleteCheckpoint: db.delete(trainCheckpoints).where(eq(trainCheckpoints.jobId, p('id'))).prepare(),
  }
}

export interface Store {
  /** true when other provider nodes write the same state (PostgreSQL): the scheduler then claims jobs and polls */
  readonly shared: boolean
  /** this node's id in job claims (null for SQLite: one node) */
  readonly node: string | null
  close (): void | Promise<void>
  /** `fn` (synchronous) in one transaction; a nested call joins the open one */
  transaction<T> (fn: () => T): T
  /**
   * Runs `fn` while holding the provider-wide admission lock (every node's admissions and downloads, one at a time,
   * from their first check of committed budgets to their commit). SQLite: one process, so `fn` just runs.
   */
  exclusive<T> (fn: () => Promise<T>): Promise<T>
  addKey (entry: { kid: string; publicKey: Uint8Array; role: 'researcher' | 'operator'; label?: string | null; account?: string; now: number }): KeyRow
  getKey (kid: string): KeyRow | undefined
  listKeys (): KeyRow[]
  revokeKey (kid: string, reason: string, now: number): boolean
  useNonce (kid: string, nonce: string, expiresAt: number, now: number): boolean
  nonceUsed (kid: string, nonce: string, now: number): boolean
  recordNonce (kid: string, nonce: string, expiresAt: number): void
  insertJob (row: JobRow): void
  getJob (id: string): JobRow | undefined
  /** the job this key's envelope (by the digest of its bytes) created, if any */
  jobByRequest (kid: string, requestDigest: string): JobRow | undefined
  queuedJobs (limit?: number): JobRow[]
  /** ids of queued jobs, oldest first (no program blobs) */
  queuedIds (limit?: number): string[]
  queuePosition (job: JobRow): number
  activeJobs (kid: string): number
  /** queued → running (attempts + 1, claimed by this node with a lease) in one commit; returns the ids it claimed */
  markRunning (ids: string[], now: number): string[]
  requeue (id: string): void
  endJob (id: string, state: 'failed' | 'cancelled', error: { code: string; message: string; details: Record<string, unknown> }, now: number): boolean
  completeJob (job: JobRow, result: { saves: Uint8Array; receipt: Uint8Array; egressBytes: number; stats: unknown; edits: string[]; revision: string }, now: number, retentionMs: number): boolean
  getResult (jobId: string, now: number): ResultRow | undefined
  recover (maxAttempts: number, now: number): { requeued: string[]; failed: string[] }
  /** extends the lease of every job this node runs (shared stores; a no-op on SQLite) */
  renewLeases (ids: readonly string[], now: number): void
  /** running jobs whose node's lease expired: requeued (attempts < maxAttempts) or failed with a reason */
  takeOver (maxAttempts: number, now: number): { requeued: string[]; failed: string[] }
  /** the current state of some jobs (status changes made by other nodes) */
  jobStates (ids: readonly string[]): { id: string; state: string; node: string | null; error: string | null }[]
  sweep (now: number): { results: number; nonces: number; events: number }
  /**
   * Engine events of jobs this node runs, for other nodes' streams (multi-node). PgStore buffers them and writes them
   * before its next transaction or job end (a job's events are stored before its end is) or at flushJobEvents;
   * SqliteStore writes them at once.
   */
  appendJobEvents (events: readonly JobEventRecord[]): void
  flushJobEvents (): void
  /** the stored events of these jobs with an id above `after`, oldest first */
  jobEventsAfter (jobIds: readonly string[], after: number, limit?: number): StoredJobEvent[]
  /** asks the node running a job to cancel it (written at once) */
  requestCancel (jobId: string, now: number): void
  /** of these jobs, those with a cancel request */
  cancelRequested (jobIds: readonly string[]): string[]
  deleteJobEvents (jobIds: readonly string[]): number
  egressToday (now: number, kid?: string): number
  reservedEgress (kid?: string): number
  /**
   * egressToday + reservedEgress read at one instant: a job completing on another node between two separate reads
   * would be counted in neither (its reservation gone, its charge not yet seen)
   */
  committedEgress (now: number, kid?: string): number
  jobsSince (kid: string, since: number): number
  counts (): { queued: number; running: number }
  getSetting (key: string): Buffer | undefined
  setSetting (key: string, value: Uint8Array): void
  /** the stored value of `key`, or `value` stored now when there is none (first writer wins across nodes) */
  initSetting (key: string, value: Uint8Array): Buffer
  log (entry: AuditEntry): void
  auditLog (limit?: number): AuditRow[]
  addEdit (row: { id: string; model: string; name: string; fragment: Uint8Array; digest: string; now: number }): void
  removeEdit (model: string, id: string, now: number): boolean
  /** edits in force, oldest first; the same (frozen) array while they do not change */
  activeEdits (model: string): readonly EditRow[]
  putAdapter (row: AdapterRow): AdapterRow | undefined
  getAdapter (kid: string, name: string): AdapterRow | undefined
  listAdapters (kid: string): AdapterRow[]
  deleteAdapter (kid: string, name: string): AdapterRow | undefined
  adapterFiles (): Set<string>
  chargeEgress (entry: { kid: string; ref: string; model: string; bytes: number; action: string; detail?: unknown }, now: number): void
  recordRevision (model: string, revision: string, path: string, now: number): void
  latestRevision (model: string): { revision: string; path: string } | undefined
  /** registers node `id` (its public base URL) or says it is still alive: seen at `now` */
  heartbeatNode (id: string, url: string, now: number): void
  /** nodes seen at or after `since`, first started first */
  liveNodes (since: number): NodeRow[]
  /** forgets node `id` (a clean shutdown) */
  removeNode (id: string): void
  /** forgets nodes not seen since `before`; how many */
  forgetNodes (before: number): number
  /**
   * Takes or renews lease `name` for `holder` until `until` (ms) when it is free, expired (`until` < now) or already
   * held by `holder`, in one atomic statement; true when `holder` holds it now.
   */
  acquireLease (name: string, holder: string, now: number, until: number): boolean
  /** gives lease `name` up, if `holder` holds it */
  releaseLease (name: string, holder: string): void
  /**
   * Stores a running training job's checkpoint (one row per job: replaces the last one), only while the job runs here
   * (running, and on a shared store claimed by this node): false, and nothing written, otherwise. The row is deleted
   * when the job ends (completeJob, endJob, a take-over or recovery that fails it).
   */
  putTrainCheckpoint (entry: { jobId: string; step: number; state: Uint8Array; now: number }): boolean
  getTrainCheckpoint (jobId: string): TrainCheckpointRow | undefined
}

export class SqliteStore implements Store {
  readonly shared = false
  readonly node = null
  readonly db: Db
  readonly sqlite: Database.Database
  private readonly q: ReturnType<typeof prepareQueries>
  private readonly editsCache = new Map<string, readonly EditRow[]>()

  /** background WAL checkpoints (file databases only) */
  readonly checkpointer: Checkpointer | null

  constructor (path: string, options: { durability?: Durability; checkpointIntervalMs?: number } = {}) {
    const file = path !== ':memory:' && path !== ''
    const opened = openDatabase(path, { durability: options.durability, ...(file ? { autoCheckpointPages: BACKSTOP_CHECKPOINT_PAGES } : {}) })
    this.db = opened.db
    this.sqlite = opened.sqlite
    this.q = prepareQueries(this.db)
    this.checkpointer = file ? startCheckpointer(path, options.checkpointIntervalMs) : null
  }

  /** Closes the connection; the checkpointer thread runs a last checkpoint and closes its own (not awaited). */
  close (): void {
    void this.checkpointer?.stop()
    this.sqlite.close()
  }

  transaction<T> (fn: () => T): T { return this.sqlite.transaction(fn)() }

  async exclusive<T> (fn: () => Promise<T>): Promise<T> { return await fn() }

  /** `fn` in a transaction of its own, or as part of the one already open (no savepoint). */
  private atomically<T> (fn: () => T): T { return this.sqlite.inTransaction ? fn() : this.transaction(fn) }

  // ── keys ────────────────────────────────────────────────────────────────────
  /** Registers a key, or updates the role and label of a registered one. A revoked key stays revoked (KEY_REVOKED). */
  addKey (entry: { kid: string; publicKey: Uint8Array; role: 'researcher' | 'operator'; label?: string | null; account?: string; now: number }): KeyRow {
    return this.transaction(() => {
      const existing = this.getKey(entry.kid)
      if (existing !== undefined && existing.revokedAt !== null) {
        throw new WeftError('KEY_REVOKED', `key ${entry.kid} was revoked${existing.revokedReason ? ` (${existing.revokedReason})` : ''} and cannot be registered again; use a new key`, { kid: entry.kid })
      }
      const accountId = entry.account ?? entry.kid
      this.db.insert(accounts).values({ id: accountId, name: entry.label ?? accountId, createdAt: entry.now }).onConflictDoNothing().run()
      this.db.insert(keys).values({
        kid: entry.kid, accountId, publicKey: Buffer.from(entry.publicKey), role: entry.role,
        label: entry.label ?? null, createdAt: entry.now,
      }).onConflictDoUpdate({ target: keys.kid, set: { role: entry.role, label: entry.label ?? null } }).run()
      return this.getKey(entry.kid)!
    })
  }

  getKey (kid: string): KeyRow | undefined { return this.q.getKey.get({ kid }) }

  listKeys (): KeyRow[] { return this.db.select().from(keys).orderBy(asc(keys.createdAt)).all() }

  revokeKey (kid: string, reason: string, now: number): boolean {
    const changed = this.db.update(keys).set({ revokedAt: now, revokedReason: reason }).where(and(eq(keys.kid, kid), isNull(keys.revokedAt))).run()
    return changed.changes > 0
  }

  // ── replay protection ───────────────────────────────────────────────────────
  /** Records a nonce; false when the same key already used it and it has not expired. */
  useNonce (kid: string, nonce: string, expiresAt: number, now: number): boolean {
    if (this.nonceUsed(kid, nonce, now)) return false
    this.recordNonce(kid, nonce, expiresAt)
    return true
  }

  nonceUsed (kid: string, nonce: string, now: number): boolean {
    const existing = this.q.getNonce.get({ kid, nonce })
    return existing !== undefined && existing.expiresAt > now
  }

  recordNonce (kid: string, nonce: string, expiresAt: number): void { this.q.putNonce.run({ kid, nonce, expiresAt }) }

  // ── jobs ────────────────────────────────────────────────────────────────────
  insertJob (row: JobRow): void { this.q.insertJob.run(row) }

  getJob (id: string): JobRow | undefined { return this.q.getJob.get({ id }) }
  jobByRequest (kid: string, requestDigest: string): JobRow | undefined { return this.q.jobByRequest.get({ kid, requestDigest }) }

  queuedJobs (limit = 1000): JobRow[] { return this.q.queued.all({ limit }) }

  queuedIds (limit = 1000): string[] {
    return this.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.state, 'queued')).orderBy(asc(jobs.submittedAt), asc(jobs.id)).limit(limit).all().map(r => r.id)
  }

  /** 1-based position among queued jobs (0 when not queued). */
  queuePosition (job: JobRow): number {
    if (job.state !== 'queued') return 0
    return (this.q.position.get({ at: job.submittedAt })?.n ?? 0) + 1
  }

  /** queued + running jobs of one key: the concurrency limit counts these. */
  activeJobs (kid: string): number {
    return this.q.active.get({ kid })?.n ?? 0
  }

  /** queued → running (attempts + 1) for a batch, in one commit. */
  markRunning (ids: string[], now: number): string[] {
    if (ids.length === 0) return []
    if (ids.length === 1) return this.q.markRunning.run({ id: ids[0], now }).changes > 0 ? ids : []
    return this.transaction(() => ids.filter(id => this.q.markRunning.run({ id, now }).changes > 0))
  }

  requeue (id: string): void { this.q.requeue.run({ id }) }

  /** Ends a job without a result. Only jobs not already ended change; returns whether this call ended it. */
  endJob (id: string, state: 'failed' | 'cancelled', error: { code: string; message: string; details: Record<string, unknown> }, now: number): boolean {
    return this.atomically(() => {
      const ended = this.q.endJob.run({ id, state, error: JSON.stringify(error), now }).changes > 0
      if (ended) this.q.deleteCheckpoint.run({ id })
      return ended
    })
  }

  /** Stores a finished job's result, charges the egress ledger and writes the audit entry in one transaction. */
  completeJob (job: JobRow, result: { saves: Uint8Array; receipt: Uint8Array; egressBytes: number; stats: unknown; edits: string[]; revision: string }, now: number, retentionMs: number): boolean {
    if (result.saves.byteLength > STORE_MAX_RESULT_BYTES) {
      // never hand SQLite a value it cannot hold (its driver's "too big" error would surface as INTERNAL)
      throw new WeftError('RESULT_TOO_LARGE', `a result of ${result.saves.byteLength} bytes exceeds what the store holds (${STORE_MAX_RESULT_BYTES} bytes)`, { limit: 'store', limitBytes: STORE_MAX_RESULT_BYTES, egressBytes: result.egressBytes })
    }
    return this.atomically(() => {
      const changed = this.q.finishRunning.run({ id: job.id, now, revision: result.revision })
      if (changed.changes === 0) return false
      this.q.deleteCheckpoint.run({ id: job.id })
      this.q.insertResult.run({
        jobId: job.id, saves: Buffer.from(result.saves), receipt: Buffer.from(result.receipt), egressBytes: result.egressBytes,
        stats: JSON.stringify(result.stats ?? null), createdAt: now, expiresAt: now + retentionMs,
      })
      this.q.insertEgress.run({ kid: job.kid, jobId: job.id, model: job.model, bytes: result.egressBytes, day: utcDay(now), at: now })
      this.log({ at: now, actor: job.kid, action: 'job-end', jobId: job.id, programDigest: job.programDigest, model: job.model,
        revision: result.revision, edits: JSON.stringify(result.edits), egressBytes: result.egressBytes })
      return true
    })
  }

  getResult (jobId: string, now: number): ResultRow | undefined {
    return this.q.getResult.get({ id: jobId, now })
  }

  /**
   * After a crash: jobs left 'running' are requeued once (attempts < maxAttempts) or failed with a reason.
   * Returns the ids of both groups.
   */
  recover (maxAttempts: number, now: number): { requeued: string[]; failed: string[] } {
    return this.transaction(() => {
      const running = this.db.select().from(jobs).where(eq(jobs.state, 'running')).all()
      const requeued: string[] = []
      const failed: string[] = []
      for (const job of running) {
        if (job.attempts < maxAttempts) { this.requeue(job.id); requeued.push(job.id); continue }
        this.endJob(job.id, 'failed', { code: 'EXECUTION_FAILED', message: `the provider stopped while this job was running (attempt ${job.attempts} of ${maxAttempts}); it was not retried again`, details: { reason: 'provider-restart', attempts: job.attempts } }, now)
        failed.push(job.id)
      }
      return { requeued, failed }
    })
  }

  renewLeases (): void {}

  /** one process holds the store: nothing else can have claimed a job (recover handles a restart) */
  takeOver (): { requeued: string[]; failed: string[] } { return { requeued: [], failed: [] } }

  jobStates (ids: readonly string[]): { id: string; state: string; node: string | null; error: string | null }[] {
    if (ids.length === 0) return []
    return this.db.select({ id: jobs.id, state: jobs.state, node: jobs.node, error: jobs.error }).from(jobs).where(inArray(jobs.id, [...ids])).all()
  }

  /** Deletes expired results and nonces, and job events left over an hour. */
  sweep (now: number): { results: number; nonces: number; events: number } {
    const r = this.db.delete(results).where(lte(results.expiresAt, now)).run()
    const n = this.db.delete(nonces).where(lte(nonces.expiresAt, now)).run()
    const e = this.db.delete(jobEvents).where(lte(jobEvents.at, now - JOB_EVENTS_MAX_AGE_MS)).run()
    return { results: r.changes, nonces: n.changes, events: e.changes }
  }

  // ── shared job events (multi-node; one SQLite process has no other node, but the store behaves the same) ──
  appendJobEvents (events: readonly JobEventRecord[]): void {
    if (events.length > 0) this.atomically(() => { for (const e of events) this.db.insert(jobEvents).values(e).run() })
  }

  flushJobEvents (): void {}

  jobEventsAfter (jobIds: readonly string[], after: number, limit = 10_000): StoredJobEvent[] {
    if (jobIds.length === 0) return []
    return this.db.select({ id: jobEvents.id, jobId: jobEvents.jobId, event: jobEvents.event, data: jobEvents.data }).from(jobEvents)
      .where(and(inArray(jobEvents.jobId, [...jobIds]), gt(jobEvents.id, after))).orderBy(asc(jobEvents.id)).limit(limit).all()
  }

  requestCancel (jobId: string, now: number): void { this.appendJobEvents([{ jobId, event: 'cancel-request', data: '{}', at: now }]) }

  cancelRequested (jobIds: readonly string[]): string[] {
    if (jobIds.length === 0) return []
    return this.db.selectDistinct({ id: jobEvents.jobId }).from(jobEvents).where(and(inArray(jobEvents.jobId, [...jobIds]), eq(jobEvents.event, 'cancel-request'))).all().map(r => r.id)
  }

  deleteJobEvents (jobIds: readonly string[]): number {
    if (jobIds.length === 0) return 0
    return this.db.delete(jobEvents).where(inArray(jobEvents.jobId, [...jobIds])).run().changes
  }

  // ── egress ledger ───────────────────────────────────────────────────────────
  egressToday (now: number, kid?: string): number {
    const day = utcDay(now)
    const row = kid === undefined ? this.q.egressAll.get({ day }) : this.q.egressKey.get({ day, kid })
    return row?.n ?? 0
  }

  /** estimated bytes of admitted jobs that have not ended yet (reserved against egress budgets) */
  reservedEgress (kid?: string): number {
    const row = kid === undefined ? this.q.reservedAll.get() : this.q.reservedKey.get({ kid })
    return row?.n ?? 0
  }

  committedEgress (now: number, kid?: string): number { return this.egressToday(now, kid) + this.reservedEgress(kid) }

  jobsSince (kid: string, since: number): number {
    const row = this.db.select({ n: sql<number>`count(*)` }).from(jobs).where(and(eq(jobs.kid, kid), gt(jobs.submittedAt, since - 1))).get()
    return row?.n ?? 0
  }

  counts (): { queued: number; running: number } {
    const rows = this.q.counts.all()
    const get = (state: string): number => rows.find(r => r.state === state)?.n ?? 0
    return { queued: get('queued'), running: get('running') }
  }

  // ── settings ────────────────────────────────────────────────────────────────
  getSetting (key: string): Buffer | undefined { return this.db.select().from(settings).where(eq(settings.key, key)).get()?.value }

  setSetting (key: string, value: Uint8Array): void {
    this.db.insert(settings).values({ key, value: Buffer.from(value) }).onConflictDoUpdate({ target: settings.key, set: { value: Buffer.from(value) } }).run()
  }

  initSetting (key: string, value: Uint8Array): Buffer {
    this.db.insert(settings).values({ key, value: Buffer.from(value) }).onConflictDoNothing().run()
    return this.getSetting(key)!
  }

  // ── audit ───────────────────────────────────────────────────────────────────
  log (entry: AuditEntry): void {
    this.q.insertAudit.run({ jobId: null, programDigest: null, model: null, revision: null, edits: null, egressBytes: null, detail: null, ...entry })
  }

  auditLog (limit = 100): AuditRow[] { return this.db.select().from(audit).orderBy(desc(audit.id)).limit(limit).all() }

  // ── provider-wide edits and revisions ───────────────────────────────────────
  addEdit (row: { id: string; model: string; name: string; fragment: Uint8Array; digest: string; now: number }): void {
    this.db.insert(edits).values({ id: row.id, model: row.model, name: row.name, fragment: Buffer.from(row.fragment), digest: row.digest, createdAt: row.now }).run()
    this.editsCache.clear()
  }

  /** Removes an active edit of `model`; false when `model` has no active edit `id`. */
  removeEdit (model: string, id: string, now: number): boolean {
    const removed = this.db.update(edits).set({ removedAt: now }).where(and(eq(edits.id, id), eq(edits.model, model), isNull(edits.removedAt))).run().changes > 0
    this.editsCache.clear()
    return removed
  }

  /**
   * The edits in force on a model, oldest first. Read on every admission and batch, written only through
   * addEdit/removeEdit on this (the only) connection, so they are cached until one of those runs. The same array is
   * returned until then (callers may key derived data on it) and must not be mutated.
   */
  activeEdits (model: string): readonly EditRow[] {
    let rows = this.editsCache.get(model)
    if (rows === undefined) {
      rows = Object.freeze(this.q.activeEdits.all({ model }))
      this.editsCache.set(model, rows)
    }
    return rows
  }

  // ── kept adapters ──────────────────────────────────────────────────────────
  /**
   * Commits an adapter row (its file already written). A key's adapter of the same name is replaced in the same
   * commit; the replaced row is returned so the caller deletes its file once this commit is done.
   */
  putAdapter (row: AdapterRow): AdapterRow | undefined {
    return this.atomically(() => {
      const old = this.getAdapter(row.kid, row.name)
      if (old !== undefined) this.db.delete(adapters).where(eq(adapters.id, old.id)).run()
      this.db.insert(adapters).values(row).run()
      return old
    })
  }

  /** The key's adapter of that name (another key's adapter is never returned). */
  getAdapter (kid: string, name: string): AdapterRow | undefined {
    return this.db.select().from(adapters).where(and(eq(adapters.kid, kid), eq(adapters.name, name))).get()
  }

  listAdapters (kid: string): AdapterRow[] {
    return this.db.select().from(adapters).where(eq(adapters.kid, kid)).orderBy(asc(adapters.name)).all()
  }

  /** Removes the key's adapter row (its file is the caller's to delete after this commit); the row, or undefined. */
  deleteAdapter (kid: string, name: string): AdapterRow | undefined {
    return this.atomically(() => {
      const row = this.getAdapter(kid, name)
      if (row !== undefined) this.db.delete(adapters).where(eq(adapters.id, row.id)).run()
      return row
    })
  }

  /** file names of every adapter row (the files start-up must keep) */
  adapterFiles (): Set<string> {
    return new Set(this.db.select({ file: adapters.file }).from(adapters).all().map(r => r.file))
  }

  /** Charges bytes that left outside a job result (an adapter download) to the ledger, with its audit entry. */
  chargeEgress (entry: { kid: string; ref: string; model: string; bytes: number; action: string; detail?: unknown }, now: number): void {
    this.atomically(() => {
      this.q.insertEgress.run({ kid: entry.kid, jobId: entry.ref, model: entry.model, bytes: entry.bytes, day: utcDay(now), at: now })
      this.log({ at: now, actor: entry.kid, action: entry.action, model: entry.model, egressBytes: entry.bytes, detail: entry.detail === undefined ? null : JSON.stringify(entry.detail) })
    })
  }

  recordRevision (model: string, revision: string, path: string, now: number): void {
    this.db.insert(revisions).values({ model, revision, path, activatedAt: now }).run()
  }

  latestRevision (model: string): { revision: string; path: string } | undefined {
    return this.db.select({ revision: revisions.revision, path: revisions.path }).from(revisions)
      .where(eq(revisions.model, model)).orderBy(desc(revisions.id)).limit(1).get()
  }

  // ── nodes and leases ───────────────────────────────────────────────────────
  heartbeatNode (id: string, url: string, now: number): void {
    this.db.insert(nodes).values({ id, url, startedAt: now, seenAt: now }).onConflictDoUpdate({ target: nodes.id, set: { url, seenAt: now } }).run()
  }

  liveNodes (since: number): NodeRow[] {
    return this.db.select().from(nodes).where(gte(nodes.seenAt, since)).orderBy(asc(nodes.startedAt), asc(nodes.id)).all()
  }

  removeNode (id: string): void { this.db.delete(nodes).where(eq(nodes.id, id)).run() }

  forgetNodes (before: number): number { return this.db.delete(nodes).where(lt(nodes.seenAt, before)).run().changes }

  acquireLease (name: string, holder: string, now: number, until: number): boolean {
    const taken = this.db.insert(leases).values({ name, holder, until })
      .onConflictDoUpdate({ target: leases.name, set: { holder, until }, setWhere: or(eq(leases.holder, holder), lt(leases.until, now)) })
      .returning({ holder: leases.holder }).all()
    return taken.length > 0
  }

  releaseLease (name: string, holder: string): void { this.db.delete(leases).where(and(eq(leases.name, name), eq(leases.holder, holder))).run() }

  // ── training checkpoints ──
  putTrainCheckpoint (entry: { jobId: string; step: number; state: Uint8Array; now: number }): boolean {
    return this.q.putCheckpoint.run({ jobId: entry.jobId, step: entry.step, state: Buffer.from(entry.state.buffer, entry.state.byteOffset, entry.state.byteLength), now: entry.now }).changes > 0
  }

  getTrainCheckpoint (jobId: string): TrainCheckpointRow | undefined {
    return this.db.select().from(trainCheckpoints).where(eq(trainCheckpoints.jobId, jobId)).get()
  }
}
