/** `--db`: a SQLite file (default, one provider process) or a `postgres://` URL (PostgreSQL shared by provider nodes). */
import { SqliteStore, type Store } from './store.js'
import { PgStore, type PgStoreOptions } from './pg-store.js'
import type { Durability } from './open-database.js'

export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db)

export function openStore (db: string, options: { durability?: Durability } & PgStoreOptions = {}): Store {
  if (isPostgresUrl(db)) return new PgStore(db, { leaseMs: options.leaseMs, node: options.node })
  return new SqliteStore(db, { durability: options.durability })
}
