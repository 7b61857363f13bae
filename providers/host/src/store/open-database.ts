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

/** `path` is a file (or ':memory:' for throwaway tests). */
export function openDatabase (path: string): OpenedDatabase {
  const sqlite = new Database(path)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  const db = drizzle(sqlite, { schema })
  migrate(db, { migrationsFolder: MIGRATIONS })
  return { db, sqlite }
}
