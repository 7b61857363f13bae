/**
 * Durable provider state (drizzle + better-sqlite3): accounts and keys, jobs, results, egress ledger,
 * audit log, replay nonces, provider-wide edits, model revisions and kept adapters. Migrations in ../../drizzle are generated from this.
 */
import { sqliteTable, text, integer, blob, primaryKey, index, uniqueIndex } from 'drizzle-orm/sqlite-core'

export const accounts = sqliteTable('accounts', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: integer('created_at').notNull(),
})

export const keys = sqliteTable('keys', {
  kid: text('kid').primaryKey(),
  accountId: text('account_id').notNull().references(() => accounts.id),
  publicKey: blob('public_key', { mode: 'buffer' }).notNull(),
  /** 'researcher' submits jobs; 'operator' may also manage keys, edits and revisions */
  role: text('role').notNull(),
  label: text('label'),
  createdAt: integer('created_at').notNull(),
  revokedAt: integer('revoked_at'),
  revokedReason: text('revoked_reason'),
})

export const jobs = sqliteTable('jobs', {
  id: text('id').primaryKey(),
  kid: text('kid').notNull(),
  model: text('model').notNull(),
  revision: text('revision').notNull(),
  programDigest: text('program_digest').notNull(),
  requestDigest: text('request_digest').notNull(),
  /** the Program as submitted (deterministic CBOR); provider-wide edits are applied when it runs */
  program: blob('program', { mode: 'buffer' }).notNull(),
  /** 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' */
  state: text('state').notNull(),
  attempts: integer('attempts').notNull().default(0),
  /** JSON WireError when failed or cancelled */
  error: text('error'),
  estimatedEgress: integer('estimated_egress').notNull(),
  maxEgress: integer('max_egress'),
  timeoutMs: integer('timeout_ms').notNull(),
  submittedAt: integer('submitted_at').notNull(),
  startedAt: integer('started_at'),
  endedAt: integer('ended_at'),
  /** the provider node whose engine claimed the job (multi-node PostgreSQL deployments; null on SQLite) */
  node: text('node'),
  /** until when that claim holds (ms); a running job whose lease expired is taken over by another node */
  leaseUntil: integer('lease_until'),
}, table => [
  index('jobs_state_idx').on(table.state, table.submittedAt),
  index('jobs_kid_state_idx').on(table.kid, table.state),
  // a re-sent envelope's job, by the digest of its bytes (GET /v1/requests/{digest})
  index('jobs_kid_request_idx').on(table.kid, table.requestDigest),
])

export const results = sqliteTable('results', {
  jobId: text('job_id').primaryKey(),
  /** CBOR map name → tensor */
  saves: blob('saves', { mode: 'buffer' }).notNull(),
  receipt: blob('receipt', { mode: 'buffer' }).notNull(),
  egressBytes: integer('egress_bytes').notNull(),
  stats: text('stats'),
  createdAt: integer('created_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
}, table => [index('results_expiry_idx').on(table.expiresAt)])

export const egress = sqliteTable('egress', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  kid: text('kid').notNull(),
  jobId: text('job_id').notNull(),
  model: text('model').notNull(),
  bytes: integer('bytes').notNull(),
  /** UTC day 'YYYY-MM-DD' the bytes count against */
  day: text('day').notNull(),
  at: integer('at').notNull(),
}, table => [index('egress_day_kid_idx').on(table.day, table.kid)])

export const audit = sqliteTable('audit', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  at: integer('at').notNull(),
  /** who: a key id, or 'provider' */
  actor: text('actor').notNull(),
  /** 'job-accepted' | 'job-end' | 'job-error' | 'key-added' | 'key-revoked' | 'edit-added' | 'edit-removed' | 'revision-swapped' | 'job-refused' | 'adapter-deleted' | 'adapter-download' */
  action: text('action').notNull(),
  jobId: text('job_id'),
  programDigest: text('program_digest'),
  model: text('model'),
  revision: text('revision'),
  edits: text('edits'),
  egressBytes: integer('egress_bytes'),
  detail: text('detail'),
}, table => [index('audit_at_idx').on(table.at)])

export const nonces = sqliteTable('nonces', {
  kid: text('kid').notNull(),
  nonce: text('nonce').notNull(),
  expiresAt: integer('expires_at').notNull(),
}, table => [primaryKey({ columns: [table.kid, table.nonce] }), index('nonces_expiry_idx').on(table.expiresAt)])

export const edits = sqliteTable('edits', {
  id: text('id').primaryKey(),
  model: text('model').notNull(),
  name: text('name').notNull(),
  /** CBOR array of ProgramNode; read/write nodes are instantiated once per invoke */
  fragment: blob('fragment', { mode: 'buffer' }).notNull(),
  digest: text('digest').notNull(),
  createdAt: integer('created_at').notNull(),
  removedAt: integer('removed_at'),
})

export const revisions = sqliteTable('revisions', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  model: text('model').notNull(),
  revision: text('revision').notNull(),
  path: text('path').notNull(),
  activatedAt: integer('activated_at').notNull(),
})

/** Provider-level settings that must survive restarts (the provider's signing identity, …). */
export const settings = sqliteTable('settings', {
  key: text('key').primaryKey(),
  value: blob('value', { mode: 'buffer' }).notNull(),
})

/**
 * Adapters kept on the provider (a training Program's `keep`): owned by one key, bound to the model revision they
 * were trained on. The values live in a file of the provider's adapter directory (deterministic CBOR map param name →
 * tensor), written and fsynced under a temporary name and renamed before this row is committed: a row always names
 * a complete file; a file without a row (a crash in between) is deleted at start.
 */
export const adapters = sqliteTable('adapters', {
  id: text('id').primaryKey(),
  /** owner: the key id that kept it; every other key is told it does not exist */
  kid: text('kid').notNull(),
  name: text('name').notNull(),
  model: text('model').notNull(),
  revision: text('revision').notNull(),
  /** JSON { [param]: { shape, dtype } } */
  params: text('params').notNull(),
  /** file name inside the adapter directory */
  file: text('file').notNull(),
  /** tensor data bytes (what a download would move) */
  bytes: integer('bytes').notNull(),
  /** 'sha256:' + hex of the file */
  digest: text('digest').notNull(),
  jobId: text('job_id'),
  programDigest: text('program_digest'),
  /** JSON { steps, completed, cancelled, finalLoss } of the run that produced it, or null */
  training: text('training'),
  /** JSON list of attachments (`keep.attach`: how the adapter applies to later traces), or null */
  attach: text('attach'),
  createdAt: integer('created_at').notNull(),
}, table => [uniqueIndex('adapters_kid_name_idx').on(table.kid, table.name)])

/**
 * The provider's nodes (several processes sharing one database, docs/decisions/2026-12-05-multi-node.md): each
 * node's public base URL and when it last said it is alive. The directory record lists the nodes seen lately.
 */
export const nodes = sqliteTable('nodes', {
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  startedAt: integer('started_at').notNull(),
  seenAt: integer('seen_at').notNull(),
})

/** Named leases among the nodes (e.g. which node publishes the directory record): one holder until `until`. */
export const leases = sqliteTable('leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  until: integer('until').notNull(),
})

/**
 * Engine events of running jobs (progress, generated tokens, training steps) and cancel requests, shared between the
 * nodes of a multi-node provider (PostgreSQL): the node running a job appends them, nodes streaming the job to a
 * client read them, a node that received a cancel for a job another node runs appends a 'cancel-request'. Rows are
 * deleted shortly after their job ends (and by the sweep after an hour). Unused by a single SQLite provider.
 */
export const jobEvents = sqliteTable('job_events', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  jobId: text('job_id').notNull(),
  /** 'job-progress' | 'job-token' | 'cancel-request' */
  event: text('event').notNull(),
  /** the event's data (JSON) */
  data: text('data').notNull(),
  at: integer('at').notNull(),
}, table => [index('job_events_job_idx').on(table.jobId, table.id), index('job_events_at_idx').on(table.at)])

/**
 * The last checkpoint of a running training job (docs/decisions/2026-12-06-training-checkpoints.md): one row per job,
 * overwritten at each checkpoint, deleted when the job ends. A job run again (after a restart or a take-over)
 * continues from it.
 */
export const trainCheckpoints = sqliteTable('train_checkpoints', {
  jobId: text('job_id').primaryKey(),
  /** completed optimizer steps */
  step: integer('step').notNull(),
  /** deterministic CBOR of the engine's TrainingCheckpoint (trained params, optimizer state, loss curve) */
  state: blob('state', { mode: 'buffer' }).notNull(),
  updatedAt: integer('updated_at').notNull(),
})
