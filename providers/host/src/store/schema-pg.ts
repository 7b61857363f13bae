/**
 * The same provider state as schema.ts, in drizzle's PostgreSQL dialect (multi-node deployments, `--db postgres://…`):
 * same tables, columns and indexes; integers that hold milliseconds or byte counts are bigint (read back as numbers,
 * all < 2^53), blobs are bytea. Migrations in ../../drizzle-pg are generated from this
 * (`npx drizzle-kit generate --config providers/host/drizzle-pg.config.ts`). See docs/decisions/2026-12-05-multi-node.md.
 */
import { pgTable, text, bigint, bigserial, customType, primaryKey, index, uniqueIndex } from 'drizzle-orm/pg-core'

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' })
const int = (name: string) => bigint(name, { mode: 'number' })

export const accounts = pgTable('accounts', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: int('created_at').notNull(),
})

export const keys = pgTable('keys', {
  kid: text('kid').primaryKey(),
  accountId: text('account_id').notNull().references(() => accounts.id),
  publicKey: bytea('public_key').notNull(),
  role: text('role').notNull(),
  label: text('label'),
  createdAt: int('created_at').notNull(),
  revokedAt: int('revoked_at'),
  revokedReason: text('revoked_reason'),
})

export const jobs = pgTable('jobs', {
  id: text('id').primaryKey(),
  kid: text('kid').notNull(),
  model: text('model').notNull(),
  revision: text('revision').notNull(),
  programDigest: text('program_digest').notNull(),
  requestDigest: text('request_digest').notNull(),
  program: bytea('program').notNull(),
  state: text('state').notNull(),
  attempts: int('attempts').notNull().default(0),
  error: text('error'),
  estimatedEgress: int('estimated_egress').notNull(),
  maxEgress: int('max_egress'),
  timeoutMs: int('timeout_ms').notNull(),
  submittedAt: int('submitted_at').notNull(),
  startedAt: int('started_at'),
  endedAt: int('ended_at'),
  node: text('node'),
  leaseUntil: int('lease_until'),
}, table => [
  index('jobs_state_idx').on(table.state, table.submittedAt),
  index('jobs_kid_state_idx').on(table.kid, table.state),
  // a re-sent envelope's job, by the digest of its bytes (GET /v1/requests/{digest})
  index('jobs_kid_request_idx').on(table.kid, table.requestDigest),
])

export const results = pgTable('results', {
  jobId: text('job_id').primaryKey(),
  saves: bytea('saves').notNull(),
  receipt: bytea('receipt').notNull(),
  egressBytes: int('egress_bytes').notNull(),
  stats: text('stats'),
  createdAt: int('created_at').notNull(),
  expiresAt: int('expires_at').notNull(),
}, table => [index('results_expiry_idx').on(table.expiresAt)])

export const egress = pgTable('egress', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  kid: text('kid').notNull(),
  jobId: text('job_id').notNull(),
  model: text('model').notNull(),
  bytes: int('bytes').notNull(),
  day: text('day').notNull(),
  at: int('at').notNull(),
}, table => [index('egress_day_kid_idx').on(table.day, table.kid)])

export const audit = pgTable('audit', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  at: int('at').notNull(),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  jobId: text('job_id'),
  programDigest: text('program_digest'),
  model: text('model'),
  revision: text('revision'),
  edits: text('edits'),
  egressBytes: int('egress_bytes'),
  detail: text('detail'),
}, table => [index('audit_at_idx').on(table.at)])

export const nonces = pgTable('nonces', {
  kid: text('kid').notNull(),
  nonce: text('nonce').notNull(),
  expiresAt: int('expires_at').notNull(),
}, table => [primaryKey({ columns: [table.kid, table.nonce] }), index('nonces_expiry_idx').on(table.expiresAt)])

export const edits = pgTable('edits', {
  id: text('id').primaryKey(),
  model: text('model').notNull(),
  name: text('name').notNull(),
  fragment: bytea('fragment').notNull(),
  digest: text('digest').notNull(),
  createdAt: int('created_at').notNull(),
  removedAt: int('removed_at'),
})

export const revisions = pgTable('revisions', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  model: text('model').notNull(),
  revision: text('revision').notNull(),
  path: text('path').notNull(),
  activatedAt: int('activated_at').notNull(),
})

export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: bytea('value').notNull(),
})

export const adapters = pgTable('adapters', {
  id: text('id').primaryKey(),
  kid: text('kid').notNull(),
  name: text('name').notNull(),
  model: text('model').notNull(),
  revision: text('revision').notNull(),
  params: text('params').notNull(),
  file: text('file').notNull(),
  bytes: int('bytes').notNull(),
  digest: text('digest').notNull(),
  jobId: text('job_id'),
  programDigest: text('program_digest'),
  training: text('training'),
  attach: text('attach'),
  createdAt: int('created_at').notNull(),
}, table => [uniqueIndex('adapters_kid_name_idx').on(table.kid, table.name)])

export const nodes = pgTable('nodes', {
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  startedAt: int('started_at').notNull(),
  seenAt: int('seen_at').notNull(),
})

export const leases = pgTable('leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  until: int('until').notNull(),
})

export const jobEvents = pgTable('job_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  jobId: text('job_id').notNull(),
  event: text('event').notNull(),
  data: text('data').notNull(),
  at: int('at').notNull(),
}, table => [index('job_events_job_idx').on(table.jobId, table.id), index('job_events_at_idx').on(table.at)])

export const trainCheckpoints = pgTable('train_checkpoints', {
  jobId: text('job_id').primaryKey(),
  step: int('step').notNull(),
  state: bytea('state').notNull(),
  updatedAt: int('updated_at').notNull(),
})
