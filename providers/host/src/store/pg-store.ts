/**
 * PgStore: the Store on a PostgreSQL server shared by any number of provider nodes (`--db postgres://…`). The schema
 * is schema-pg.ts (drizzle's PostgreSQL dialect) with its checked-in migrations in ../../drizzle-pg, applied by
 * drizzle's migrator when a node starts (one node at a time, under an advisory lock).
 *
 * The Store interface is synchronous (the SQLite store is, and the admission and scheduler code builds on it): the
 * statements run on a database thread (pg-worker.mjs) that holds the node's connection, and the calling thread waits
 * for each reply (Atomics.wait), as synckit does. A transaction is a run of such statements on that one connection,
 * so nothing interleaves with it. What only other nodes can change is guarded in the database itself:
 * - claims: queued → running with `FOR UPDATE SKIP LOCKED`, stamping this node and a lease; only the claiming node
 *   (while its claim stands) can complete, requeue or fail a running job, so a job ends exactly once;
 * - budgets, quotas, concurrency limits and nonces: admissions (and adapter downloads) of every node hold one
 *   transaction-scoped advisory lock from their first check to their commit (`exclusive`, on a second connection);
 * - nonces of signed operator requests: one atomic upsert;
 * - revocations: every admission reads the key row.
 * See docs/decisions/2026-12-05-multi-node.md.
 */
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { getTableColumns, type Table } from 'drizzle-orm'
import { WeftError } from '@weft/core'
import * as schema from './schema-pg.js'
import { JOB_EVENTS_MAX_AGE_MS, utcDay, type AdapterRow, type JobEventRecord, type StoredJobEvent, type AuditEntry, type AuditRow, type EditRow, type JobRow, type KeyRow, type NodeRow, type ResultRow, type Store, type TrainCheckpointRow } from './store.js'
import { STORE_MAX_RESULT_BYTES } from '../jobs/limits.js'

const MIGRATIONS = fileURLToPath(new URL('../../drizzle-pg', import.meta.url))
const WORKER = new URL('./pg-worker.mjs', import.meta.url)
/** the advisory lock every node's admissions hold from their first budget check to their commit */
const ADMISSION_LOCK = 7_461_002
/** a statement that has not answered in this long fails (the thread is blocked meanwhile) */
const STATEMENT_WAIT_MS = 60_000
export const DEFAULT_LEASE_MS = 10_000

type Reply = { rows: unknown[][]; count: number } | { error: { message: string; code: string | null } }

export interface PgStoreOptions {
  /** how long a claim holds without renewal (default 10 s): a dead node's jobs are taken over after this */
  leaseMs?: number
  /** this node's id (default: random) */
  node?: string
}

/** Runs SQL on the database thread, synchronously. */
class Bridge {
  private readonly worker: Worker
  private readonly port: MessagePort
  private readonly flag: Int32Array
  private dead: Error | null = null
  private sent = 0

  constructor (url: string) {
    const signal = new SharedArrayBuffer(4)
    this.flag = new Int32Array(signal)
    const { port1, port2 } = new MessageChannel()
    this.port = port1
    this.worker = new Worker(WORKER, { workerData: { url, port: port2, signal, migrations: MIGRATIONS }, transferList: [port2] })
    this.worker.unref()
    this.worker.on('error', error => { this.dead = error })
    this.worker.on('exit', () => { this.dead ??= new Error('the database thread exited') })
    this.call({}, 120_000) // connected and migrated
  }

  query (text: string, params: unknown[] = []): { rows: unknown[][]; count: number } {
    return this.call({ sql: text, params })
  }

  /**
   * The shared counter holds how many replies the thread has sent; a call waits until it reaches its own number (a
   * late wake-up from an earlier reply cannot end the wait early), and the reply carries the request's id.
   */
  call (message: Record<string, unknown>, waitMs = STATEMENT_WAIT_MS): { rows: unknown[][]; count: number } {
    if (this.dead !== null) throw new WeftError('INTERNAL', `the PostgreSQL store is unavailable: ${this.dead.message}`)
    const id = ++this.sent
    this.port.postMessage({ ...message, id })
    const deadline = performance.now() + waitMs
    for (;;) {
      const replies = Atomics.load(this.flag, 0)
      if (replies >= id) break
      const left = deadline - performance.now()
      if (left <= 0 || Atomics.wait(this.flag, 0, replies, left) === 'timed-out') {
        this.dead = new Error(`PostgreSQL did not answer within ${waitMs} ms`)
        throw new WeftError('INTERNAL', this.dead.message)
      }
    }
    const received = receiveMessageOnPort(this.port)
    const reply = received?.message as (Reply & { id: number }) | undefined
    if (reply === undefined || reply.id !== id) {
      this.dead = new Error('the database thread answered out of order')
      throw new WeftError('INTERNAL', this.dead.message)
    }
    if ('error' in reply) throw new PgError(reply.error.message, reply.error.code)
    return reply
  }

  close (): void {
    try { this.call({ end: true }, 5000) } catch { /* already gone */ }
    void this.worker.terminate()
  }
}

class PgError extends Error {
  constructor (message: string, readonly code: string | null) { super(message); this.name = 'PgError' }
}

/** column keys and SQL names of a table, in declaration order (rows come back as arrays in this order) */
function columnsOf (table: Table): { keys: string[]; list: string; binary: Set<string> } {
  const columns = Object.entries(getTableColumns(table))
  return {
    keys: columns.map(([key]) => key),
    list: columns.map(([, column]) => `"${column.name}"`).join(', '),
    binary: new Set(columns.filter(([, column]) => column.getSQLType() === 'bytea').map(([key]) => key)),
  }
}

const C = {
  keys: columnsOf(schema.keys), jobs: columnsOf(schema.jobs), results: columnsOf(schema.results), audit: columnsOf(schema.audit),
  edits: columnsOf(schema.edits), adapters: columnsOf(schema.adapters), trainCheckpoints: columnsOf(schema.trainCheckpoints),
}

const asBuffer = (value: unknown): unknown => value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value

function mapRows<T> (cols: { keys: string[]; binary: Set<string> }, rows: unknown[][]): T[] {
  return rows.map(row => {
    const out: Record<string, unknown> = {}
    cols.keys.forEach((key, i) => { out[key] = cols.binary.has(key) ? asBuffer(row[i]) : row[i] })
    return out as T
  })
}

const ACTIVE = "('queued', 'running')"

export class PgStore implements Store {
  readonly shared = true
  readonly node: string
  readonly leaseMs: number
  private readonly bridge: Bridge
  private depth = 0
  private lockClient: pg.Client | null = null
  /** engine events of jobs this node runs, not written yet (appendJobEvents) */
  private pendingEvents: JobEventRecord[] = []
  private readonly editsCache = new Map<string, readonly EditRow[]>()

  constructor (private readonly url: string, options: PgStoreOptions = {}) {
    this.node = options.node ?? `node_${randomBytes(6).toString('hex')}`
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
    this.bridge = new Bridge(url)
  }

  private q (text: string, params: unknown[] = []): { rows: unknown[][]; count: number } { return this.bridge.query(text, params) }
  private one<T> (cols: { keys: string[]; binary: Set<string> }, text: string, params: unknown[]): T | undefined { return mapRows<T>(cols, this.q(text, params).rows)[0] }
  private num (text: string, params: unknown[] = []): number { return Number(this.q(text, params).rows[0]?.[0] ?? 0) }

  async close (): Promise<void> {
    this.bridge.close()
    const client = this.lockClient
    this.lockClient = null
    if (client !== null) await client.end().catch(() => {})
  }

  transaction<T> (fn: () => T): T {
    if (this.depth > 0) return fn()
    this.flushJobEvents() // a job's events are stored before a commit that may end it
    this.q('BEGIN')
    this.depth++
    try {
      const value = fn()
      this.depth--
      this.q('COMMIT')
      return value
    } catch (error) {
      this.depth--
      try { this.q('ROLLBACK') } catch { /* the connection is gone: the server rolled back */ }
      throw error
    }
  }

  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const client = await this.lockConnection()
    try {
      await client.query('BEGIN')
      await client.query('SELECT pg_advisory_xact_lock($1)', [ADMISSION_LOCK])
    } catch (error) {
      this.dropLockConnection(client)
      throw new WeftError('INTERNAL', `could not take the admission lock: ${(error as Error).message}`)
    }
    try {
      return await fn()
    } finally {
      await client.query('COMMIT').catch(() => this.dropLockConnection(client))
    }
  }

  private async lockConnection (): Promise<pg.Client> {
    if (this.lockClient !== null) return this.lockClient
    const client = new pg.Client({ connectionString: this.url, application_name: 'weft-host-lock' })
    client.on('error', () => this.dropLockConnection(client))
    await client.connect()
    this.lockClient = client
    return client
  }

  private dropLockConnection (client: pg.Client): void {
    if (this.lockClient === client) this.lockClient = null
    void client.end().catch(() => {})
  }

  // ── keys ──
  addKey (entry: { kid: string; publicKey: Uint8Array; role: 'researcher' | 'operator'; label?: string | null; account?: string; now: number }): KeyRow {
    return this.transaction(() => {
      const existing = this.one<KeyRow>(C.keys, `SELECT ${C.keys.list} FROM keys WHERE kid = $1 FOR UPDATE`, [entry.kid])
      if (existing !== undefined && existing.revokedAt !== null) {
        throw new WeftError('KEY_REVOKED', `key ${entry.kid} was revoked${existing.revokedReason ? ` (${existing.revokedReason})` : ''} and cannot be registered again; use a new key`, { kid: entry.kid })
      }
      const accountId = entry.account ?? entry.kid
      this.q('INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [accountId, entry.label ?? accountId, entry.now])
      this.q(`INSERT INTO keys (kid, account_id, public_key, role, label, created_at) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (kid) DO UPDATE SET role = excluded.role, label = excluded.label`, [entry.kid, accountId, entry.publicKey, entry.role, entry.label ?? null, entry.now])
      return this.getKey(entry.kid)!
    })
  }

  getKey (kid: string): KeyRow | undefined { return this.one<KeyRow>(C.keys, `SELECT ${C.keys.list} FROM keys WHERE kid = $1`, [kid]) }

  listKeys (): KeyRow[] { return mapRows<KeyRow>(C.keys, this.q(`SELECT ${C.keys.list} FROM keys ORDER BY created_at`).rows) }

  revokeKey (kid: string, reason: string, now: number): boolean {
    return this.q('UPDATE keys SET revoked_at = $2, revoked_reason = $3 WHERE kid = $1 AND revoked_at IS NULL', [kid, now, reason]).count > 0
  }

  // ── replay protection ──
  /** one atomic upsert: of two nodes recording the same unexpired nonce, exactly one succeeds */
  useNonce (kid: string, nonce: string, expiresAt: number, now: number): boolean {
    return this.q(`INSERT INTO nonces (kid, nonce, expires_at) VALUES ($1, $2, $3)
      ON CONFLICT (kid, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= $4`, [kid, nonce, expiresAt, now]).count > 0
  }

  nonceUsed (kid: string, nonce: string, now: number): boolean {
    return this.q('SELECT 1 FROM nonces WHERE kid = $1 AND nonce = $2 AND expires_at > $3', [kid, nonce, now]).rows.length > 0
  }

  recordNonce (kid: string, nonce: string, expiresAt: number): void {
    this.q('INSERT INTO nonces (kid, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT (kid, nonce) DO UPDATE SET expires_at = excluded.expires_at', [kid, nonce, expiresAt])
  }

  // ── jobs ──
  /** a job admission started at once (state 'running') is claimed by this node */
  insertJob (row: JobRow): void {
    const claimed = row.state === 'running'
    const values: JobRow = { ...row, node: claimed ? this.node : null, leaseUntil: claimed ? (row.startedAt ?? row.submittedAt) + this.leaseMs : null }
    if (claimed) { row.node = values.node; row.leaseUntil = values.leaseUntil }
    this.q(`INSERT INTO jobs (${C.jobs.list}) VALUES (${C.jobs.keys.map((_, i) => `$${i + 1}`).join(', ')})`, C.jobs.keys.map(k => values[k as keyof JobRow]))
  }

  getJob (id: string): JobRow | undefined { return this.one<JobRow>(C.jobs, `SELECT ${C.jobs.list} FROM jobs WHERE id = $1`, [id]) }
  jobByRequest (kid: string, requestDigest: string): JobRow | undefined {
    return this.one<JobRow>(C.jobs, `SELECT ${C.jobs.list} FROM jobs WHERE kid = $1 AND request_digest = $2 ORDER BY submitted_at LIMIT 1`, [kid, requestDigest])
  }

  queuedJobs (limit = 1000): JobRow[] {
    return mapRows<JobRow>(C.jobs, this.q(`SELECT ${C.jobs.list} FROM jobs WHERE state = 'queued' ORDER BY submitted_at, id LIMIT $1`, [Math.min(limit, 2 ** 31 - 1)]).rows)
  }

  queuedIds (limit = 1000): string[] {
    return this.q("SELECT id FROM jobs WHERE state = 'queued' ORDER BY submitted_at, id LIMIT $1", [Math.min(limit, 2 ** 31 - 1)]).rows.map(r => r[0] as string)
  }

  queuePosition (job: JobRow): number {
    if (job.state !== 'queued') return 0
    return this.num("SELECT count(*) FROM jobs WHERE state = 'queued' AND submitted_at < $1", [job.submittedAt]) + 1
  }

  activeJobs (kid: string): number { return this.num(`SELECT count(*) FROM jobs WHERE kid = $1 AND state IN ${ACTIVE}`, [kid]) }

  /** Claims those of `ids` still queued and not being claimed by another node right now (SKIP LOCKED). */
  markRunning (ids: string[], now: number): string[] {
    if (ids.length === 0) return []
    const claimed = this.q(`UPDATE jobs SET state = 'running', started_at = $2, attempts = attempts + 1, node = $3, lease_until = $4
      WHERE id IN (SELECT id FROM jobs WHERE id = ANY($1::text[]) AND state = 'queued' FOR UPDATE SKIP LOCKED) RETURNING id`,
    [ids, now, this.node, now + this.leaseMs]).rows.map(r => r[0] as string)
    const set = new Set(claimed)
    return ids.filter(id => set.has(id))
  }

  requeue (id: string): void {
    this.q("UPDATE jobs SET state = 'queued', started_at = NULL, node = NULL, lease_until = NULL WHERE id = $1 AND state = 'running' AND node = $2", [id, this.node])
  }

  /** A queued job (any node's) or one this node runs; a job another node runs is cancelled too (its result is then discarded). */
  endJob (id: string, state: 'failed' | 'cancelled', error: { code: string; message: string; details: Record<string, unknown> }, now: number): boolean {
    this.flushJobEvents()
    // one statement: the job ends and its training checkpoint goes with it
    return this.num(`WITH ended AS (UPDATE jobs SET state = $2, error = $3, ended_at = $4 WHERE id = $1 AND state IN ${ACTIVE}
      AND (state = 'queued' OR node = $5 OR $2 = 'cancelled') RETURNING id),
      gone AS (DELETE FROM train_checkpoints WHERE job_id IN (SELECT id FROM ended))
      SELECT count(*) FROM ended`, [id, state, JSON.stringify(error), now, this.node]) > 0
  }

  completeJob (job: JobRow, result: { saves: Uint8Array; receipt: Uint8Array; egressBytes: number; stats: unknown; edits: string[]; revision: string }, now: number, retentionMs: number): boolean {
    if (result.saves.byteLength > STORE_MAX_RESULT_BYTES) {
      throw new WeftError('RESULT_TOO_LARGE', `a result of ${result.saves.byteLength} bytes exceeds what the store holds (${STORE_MAX_RESULT_BYTES} bytes)`, { limit: 'store', limitBytes: STORE_MAX_RESULT_BYTES, egressBytes: result.egressBytes })
    }
    return this.transaction(() => {
      // only while this node's claim stands: a job taken over after a lease expiry is completed by its new node only
      const changed = this.q("UPDATE jobs SET state = 'completed', ended_at = $2, revision = $3 WHERE id = $1 AND state = 'running' AND node = $4",
        [job.id, now, result.revision, this.node]).count
      if (changed === 0) return false
      this.q('DELETE FROM train_checkpoints WHERE job_id = $1', [job.id])
      this.q('INSERT INTO results (job_id, saves, receipt, egress_bytes, stats, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [job.id, result.saves, result.receipt, result.egressBytes, JSON.stringify(result.stats ?? null), now, now + retentionMs])
      this.q('INSERT INTO egress (kid, job_id, model, bytes, day, at) VALUES ($1, $2, $3, $4, $5, $6)', [job.kid, job.id, job.model, result.egressBytes, utcDay(now), now])
      this.log({ at: now, actor: job.kid, action: 'job-end', jobId: job.id, programDigest: job.programDigest, model: job.model,
        revision: result.revision, edits: JSON.stringify(result.edits), egressBytes: result.egressBytes })
      return true
    })
  }

  getResult (jobId: string, now: number): ResultRow | undefined {
    return this.one<ResultRow>(C.results, `SELECT ${C.results.list} FROM results WHERE job_id = $1 AND expires_at > $2`, [jobId, now])
  }

  /** At start: other nodes may be running jobs, so only jobs whose claim has expired are taken over. */
  recover (maxAttempts: number, now: number): { requeued: string[]; failed: string[] } { return this.takeOver(maxAttempts, now) }

  renewLeases (ids: readonly string[], now: number): void {
    if (ids.length === 0) return
    this.q("UPDATE jobs SET lease_until = $3 WHERE id = ANY($1::text[]) AND state = 'running' AND node = $2", [[...ids], this.node, now + this.leaseMs])
  }

  takeOver (maxAttempts: number, now: number): { requeued: string[]; failed: string[] } {
    return this.transaction(() => {
      const expired = this.q("SELECT id, attempts, node FROM jobs WHERE state = 'running' AND lease_until < $1 ORDER BY submitted_at FOR UPDATE SKIP LOCKED", [now]).rows
      const requeued: string[] = []
      const failed: string[] = []
      const cancelled = new Set(this.cancelRequested((expired as unknown[][]).map(r => r[0] as string)))
      for (const [id, attempts, node] of expired as [string, number, string | null][]) {
        if (cancelled.has(id)) {
          // its submitter cancelled it while it ran on the node that stopped: it ends cancelled, not run again
          const error = { code: 'JOB_CANCELLED', message: 'job cancelled by its submitter (its node stopped before it could)', details: { reason: 'node-lost', node } }
          this.q("UPDATE jobs SET state = 'cancelled', error = $2, ended_at = $3, node = $4 WHERE id = $1", [id, JSON.stringify(error), now, this.node])
          failed.push(id)
          continue
        }
        if (attempts < maxAttempts) {
          this.q("UPDATE jobs SET state = 'queued', started_at = NULL, node = NULL, lease_until = NULL WHERE id = $1", [id])
          requeued.push(id)
          continue
        }
        const error = { code: 'EXECUTION_FAILED', message: `the provider node running this job stopped (attempt ${attempts} of ${maxAttempts}); it was not retried again`, details: { reason: 'node-lost', node, attempts } }
        this.q("UPDATE jobs SET state = 'failed', error = $2, ended_at = $3, node = $4 WHERE id = $1", [id, JSON.stringify(error), now, this.node])
        failed.push(id)
      }
      if (failed.length > 0) this.q('DELETE FROM train_checkpoints WHERE job_id = ANY($1::text[])', [failed])
      if (requeued.length + failed.length > 0) this.log({ at: now, actor: 'provider', action: 'jobs-taken-over', detail: JSON.stringify({ node: this.node, requeued, failed }) })
      return { requeued, failed }
    })
  }

  jobStates (ids: readonly string[]): { id: string; state: string; node: string | null; error: string | null }[] {
    if (ids.length === 0) return []
    return this.q('SELECT id, state, node, error FROM jobs WHERE id = ANY($1::text[])', [[...ids]]).rows
      .map(([id, state, node, error]) => ({ id: id as string, state: state as string, node: node as string | null, error: error as string | null }))
  }

  sweep (now: number): { results: number; nonces: number; events: number } {
    return {
      results: this.q('DELETE FROM results WHERE expires_at <= $1', [now]).count,
      nonces: this.q('DELETE FROM nonces WHERE expires_at <= $1', [now]).count,
      events: this.q('DELETE FROM job_events WHERE at <= $1', [now - JOB_EVENTS_MAX_AGE_MS]).count,
    }
  }

  // ── job events shared between nodes ──
  appendJobEvents (events: readonly JobEventRecord[]): void { for (const e of events) this.pendingEvents.push(e) }

  /** one multi-row INSERT of the buffered events */
  flushJobEvents (): void {
    if (this.pendingEvents.length === 0) return
    const events = this.pendingEvents
    this.pendingEvents = []
    this.q('INSERT INTO job_events (job_id, event, data, at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])',
      [events.map(e => e.jobId), events.map(e => e.event), events.map(e => e.data), events.map(e => e.at)])
  }

  jobEventsAfter (jobIds: readonly string[], after: number, limit = 10_000): StoredJobEvent[] {
    if (jobIds.length === 0) return []
    return this.q('SELECT id, job_id, event, data FROM job_events WHERE job_id = ANY($1::text[]) AND id > $2 ORDER BY id LIMIT $3', [[...jobIds], after, limit]).rows
      .map(([id, jobId, event, data]) => ({ id: Number(id), jobId: jobId as string, event: event as string, data: data as string }))
  }

  requestCancel (jobId: string, now: number): void {
    this.q("INSERT INTO job_events (job_id, event, data, at) VALUES ($1, 'cancel-request', '{}', $2)", [jobId, now])
  }

  cancelRequested (jobIds: readonly string[]): string[] {
    if (jobIds.length === 0) return []
    return this.q("SELECT DISTINCT job_id FROM job_events WHERE job_id = ANY($1::text[]) AND event = 'cancel-request'", [[...jobIds]]).rows.map(r => r[0] as string)
  }

  deleteJobEvents (jobIds: readonly string[]): number {
    if (jobIds.length === 0) return 0
    return this.q('DELETE FROM job_events WHERE job_id = ANY($1::text[])', [[...jobIds]]).count
  }

  // ── egress ledger ──
  egressToday (now: number, kid?: string): number {
    return kid === undefined
      ? this.num('SELECT coalesce(sum(bytes), 0)::bigint FROM egress WHERE day = $1', [utcDay(now)])
      : this.num('SELECT coalesce(sum(bytes), 0)::bigint FROM egress WHERE day = $1 AND kid = $2', [utcDay(now), kid])
  }

  reservedEgress (kid?: string): number {
    return kid === undefined
      ? this.num(`SELECT coalesce(sum(estimated_egress), 0)::bigint FROM jobs WHERE state IN ${ACTIVE}`)
      : this.num(`SELECT coalesce(sum(estimated_egress), 0)::bigint FROM jobs WHERE state IN ${ACTIVE} AND kid = $1`, [kid])
  }

  committedEgress (now: number, kid?: string): number {
    return kid === undefined
      ? this.num(`SELECT (SELECT coalesce(sum(bytes), 0) FROM egress WHERE day = $1) + (SELECT coalesce(sum(estimated_egress), 0) FROM jobs WHERE state IN ${ACTIVE})`, [utcDay(now)])
      : this.num(`SELECT (SELECT coalesce(sum(bytes), 0) FROM egress WHERE day = $1 AND kid = $2) + (SELECT coalesce(sum(estimated_egress), 0) FROM jobs WHERE state IN ${ACTIVE} AND kid = $2)`, [utcDay(now), kid])
  }

  jobsSince (kid: string, since: number): number { return this.num('SELECT count(*) FROM jobs WHERE kid = $1 AND submitted_at >= $2', [kid, since]) }

  counts (): { queued: number; running: number } {
    const rows = this.q(`SELECT state, count(*) FROM jobs WHERE state IN ${ACTIVE} GROUP BY state`).rows
    const get = (state: string): number => Number(rows.find(r => r[0] === state)?.[1] ?? 0)
    return { queued: get('queued'), running: get('running') }
  }

  // ── settings ──
  getSetting (key: string): Buffer | undefined {
    const row = this.q('SELECT value FROM settings WHERE key = $1', [key]).rows[0]
    return row === undefined ? undefined : asBuffer(row[0]) as Buffer
  }

  setSetting (key: string, value: Uint8Array): void {
    this.q('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value])
  }

  initSetting (key: string, value: Uint8Array): Buffer {
    this.q('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value])
    return this.getSetting(key)!
  }

  // ── audit ──
  log (entry: AuditEntry): void {
    this.q('INSERT INTO audit (at, actor, action, job_id, program_digest, model, revision, edits, egress_bytes, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
      [entry.at, entry.actor, entry.action, entry.jobId ?? null, entry.programDigest ?? null, entry.model ?? null, entry.revision ?? null, entry.edits ?? null, entry.egressBytes ?? null, entry.detail ?? null])
  }

  auditLog (limit = 100): AuditRow[] { return mapRows<AuditRow>(C.audit, this.q(`SELECT ${C.audit.list} FROM audit ORDER BY id DESC LIMIT $1`, [limit]).rows) }

  // ── provider-wide edits and revisions ──
  addEdit (row: { id: string; model: string; name: string; fragment: Uint8Array; digest: string; now: number }): void {
    this.q('INSERT INTO edits (id, model, name, fragment, digest, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [row.id, row.model, row.name, row.fragment, row.digest, row.now])
  }

  removeEdit (model: string, id: string, now: number): boolean {
    return this.q('UPDATE edits SET removed_at = $3 WHERE id = $1 AND model = $2 AND removed_at IS NULL', [id, model, now]).count > 0
  }

  /**
   * Other nodes add and remove edits, so they are read on every call; the array returned stays the same object
   * while the edits in force are the same (callers key derived data on it).
   */
  activeEdits (model: string): readonly EditRow[] {
    const rows = mapRows<EditRow>(C.edits, this.q(`SELECT ${C.edits.list} FROM edits WHERE model = $1 AND removed_at IS NULL ORDER BY created_at, id`, [model]).rows)
    const cached = this.editsCache.get(model)
    if (cached !== undefined && cached.length === rows.length && cached.every((e, i) => e.id === rows[i]!.id && e.digest === rows[i]!.digest)) return cached
    const frozen = Object.freeze(rows)
    this.editsCache.set(model, frozen)
    return frozen
  }

  // ── kept adapters ──
  putAdapter (row: AdapterRow): AdapterRow | undefined {
    return this.transaction(() => {
      const old = this.one<AdapterRow>(C.adapters, `SELECT ${C.adapters.list} FROM adapters WHERE kid = $1 AND name = $2 FOR UPDATE`, [row.kid, row.name])
      if (old !== undefined) this.q('DELETE FROM adapters WHERE id = $1', [old.id])
      this.q(`INSERT INTO adapters (${C.adapters.list}) VALUES (${C.adapters.keys.map((_, i) => `$${i + 1}`).join(', ')})`, C.adapters.keys.map(k => row[k as keyof AdapterRow]))
      return old
    })
  }

  getAdapter (kid: string, name: string): AdapterRow | undefined {
    return this.one<AdapterRow>(C.adapters, `SELECT ${C.adapters.list} FROM adapters WHERE kid = $1 AND name = $2`, [kid, name])
  }

  listAdapters (kid: string): AdapterRow[] {
    return mapRows<AdapterRow>(C.adapters, this.q(`SELECT ${C.adapters.list} FROM adapters WHERE kid = $1 ORDER BY name`, [kid]).rows)
  }

  deleteAdapter (kid: string, name: string): AdapterRow | undefined {
    return this.one<AdapterRow>(C.adapters, `DELETE FROM adapters WHERE kid = $1 AND name = $2 RETURNING ${C.adapters.list}`, [kid, name])
  }

  adapterFiles (): Set<string> { return new Set(this.q('SELECT file FROM adapters').rows.map(r => r[0] as string)) }

  chargeEgress (entry: { kid: string; ref: string; model: string; bytes: number; action: string; detail?: unknown }, now: number): void {
    this.transaction(() => {
      this.q('INSERT INTO egress (kid, job_id, model, bytes, day, at) VALUES ($1, $2, $3, $4, $5, $6)', [entry.kid, entry.ref, entry.model, entry.bytes, utcDay(now), now])
      this.log({ at: now, actor: entry.kid, action: entry.action, model: entry.model, egressBytes: entry.bytes, detail: entry.detail === undefined ? null : JSON.stringify(entry.detail) })
    })
  }

  recordRevision (model: string, revision: string, path: string, now: number): void {
    this.q('INSERT INTO revisions (model, revision, path, activated_at) VALUES ($1, $2, $3, $4)', [model, revision, path, now])
  }

  latestRevision (model: string): { revision: string; path: string } | undefined {
    const row = this.q('SELECT revision, path FROM revisions WHERE model = $1 ORDER BY id DESC LIMIT 1', [model]).rows[0]
    return row === undefined ? undefined : { revision: row[0] as string, path: row[1] as string }
  }

  // ── nodes and leases ──
  heartbeatNode (id: string, url: string, now: number): void {
    this.q('INSERT INTO nodes (id, url, started_at, seen_at) VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at', [id, url, now])
  }

  liveNodes (since: number): NodeRow[] {
    return this.q('SELECT id, url, started_at, seen_at FROM nodes WHERE seen_at >= $1 ORDER BY started_at, id', [since]).rows
      .map(r => ({ id: r[0] as string, url: r[1] as string, startedAt: Number(r[2]), seenAt: Number(r[3]) }))
  }

  removeNode (id: string): void { this.q('DELETE FROM nodes WHERE id = $1', [id]) }

  forgetNodes (before: number): number { return this.q('DELETE FROM nodes WHERE seen_at < $1', [before]).count }

  acquireLease (name: string, holder: string, now: number, until: number): boolean {
    // one statement: two nodes racing for an expired lease cannot both get it (the row lock orders them)
    return this.q('INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until WHERE leases.holder = excluded.holder OR leases.until < $4 RETURNING holder',
      [name, holder, until, now]).rows.length > 0
  }

  releaseLease (name: string, holder: string): void { this.q('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]) }

  // ── training checkpoints ──
  /** one statement, only while this node's claim on the running job stands (a node that lost it writes nothing) */
  putTrainCheckpoint (entry: { jobId: string; step: number; state: Uint8Array; now: number }): boolean {
    return this.q(`INSERT INTO train_checkpoints (job_id, step, state, updated_at)
      SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND state = 'running' AND node = $5)
      ON CONFLICT (job_id) DO UPDATE SET step = excluded.step, state = excluded.state, updated_at = excluded.updated_at`,
    [entry.jobId, entry.step, entry.state, entry.now, this.node]).count > 0
  }

  getTrainCheckpoint (jobId: string): TrainCheckpointRow | undefined {
    return this.one<TrainCheckpointRow>(C.trainCheckpoints, `SELECT ${C.trainCheckpoints.list} FROM train_checkpoints WHERE job_id = $1`, [jobId])
  }
}
