/**
 * Opens the provider's SQLite file (WAL, foreign keys, busy timeout) and applies the checked-in drizzle-kit
 * migrations (providers/host/drizzle) with drizzle's migrator. See docs/decisions/2026-11-27-provider-store.md.
 */
import Database from 'better-sqlite3'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { fileURLToPath } from 'node:url'
import * as schema from './schema.js'

export type Db = BetterSQLite3Database<typeof schema>

const MIGRATIONS = fileURLToPath(new URL('../../drizzle', import.meta.url))

export interface OpenedDatabase { db: Db; sqlite: Database.Database }

/**
 * 'normal' (default): `synchronous = NORMAL` under WAL — a commit is a write() to the WAL, durable across a process
 * crash (kill -9), not across power loss or an OS crash, which may lose the commits since the last checkpoint (the
 * database stays consistent). 'full': `synchronous = FULL`, one fsync of the WAL per commit (~1 ms per commit here).
 */
export type Durability = 'normal' | 'full'

export interface OpenOptions {
  durability?: Durability
  /** WAL pages after which a commit checkpoints by itself (SQLite's default 1000; raised when a checkpointer thread runs) */
  autoCheckpointPages?: number
}

/** `path` is a file (or ':memory:' for throwaway tests). */
export function openDatabase (path: string, options: OpenOptions = {}): OpenedDatabase {
  const sqlite = new Database(path)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`)
  if (options.autoCheckpointPages !== undefined) sqlite.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(options.autoCheckpointPages))}`)
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder: MIGRATIONS })
  return { db, sqlite }
}
