// The store: WAL checkpoints run on their own thread (the main connection only as a backstop), durability modes,
// the edits cache follows every change.
import { afterEach, expect, test } from 'vitest'
import { existsSync, statSync } from 'node:fs'
import { SqliteStore as Store } from '../src/store/store.js'
import { BACKSTOP_CHECKPOINT_PAGES } from '../src/store/checkpointer.js'
import { tempDb } from './helpers.js'

const open: Store[] = []
const store = (path: string, options?: ConstructorParameters<typeof Store>[1]): Store => { const s = new Store(path, options); open.push(s); return s }
afterEach(() => { for (const s of open.splice(0)) s.close() })

function addJobs (s: Store, n: number): void {
  for (let i = 0; i < n; i++) {
    s.insertJob({
      id: `job_${i}_${Math.random()}`, kid: 'k', model: 'm', revision: 'r', programDigest: 'p', requestDigest: 'q', program: Buffer.alloc(4096, i),
      state: 'queued', attempts: 0, error: null, estimatedEgress: 1, maxEgress: null, timeoutMs: 1000, submittedAt: i, startedAt: null, endedAt: null, node: null, leaseUntil: null,
    })
  }
}

test('a file database checkpoints on the checkpointer thread; the main connection keeps only a backstop', async () => {
  const path = tempDb('wal')
  const s = store(path, { checkpointIntervalMs: 60_000 })
  expect(s.sqlite.pragma('journal_mode', { simple: true })).toBe('wal')
  expect(s.sqlite.pragma('synchronous', { simple: true })).toBe(1) // NORMAL
  expect(s.sqlite.pragma('wal_autocheckpoint', { simple: true })).toBe(BACKSTOP_CHECKPOINT_PAGES)
  addJobs(s, 300) // > 1000 WAL pages: SQLite's default would have checkpointed inside one of these commits
  const [before] = s.sqlite.pragma('wal_checkpoint(NOOP)') as { log: number; checkpointed: number }[]
  expect(before!.log).toBeGreaterThan(1000)
  expect(before!.checkpointed).toBe(0)
  await s.checkpointer!.now()
  const [after] = s.sqlite.pragma('wal_checkpoint(NOOP)') as { log: number; checkpointed: number }[]
  expect(after!.checkpointed).toBe(after!.log)
  expect(statSync(path).size).toBeGreaterThan(300 * 4096) // the pages reached the database file
  addJobs(s, 1) // the next writer restarts the WAL from its beginning
  const [restarted] = s.sqlite.pragma('wal_checkpoint(NOOP)') as { log: number }[]
  expect(restarted!.log).toBeLessThan(20)
})

test("durability 'full' is synchronous = FULL; in-memory stores have no checkpointer", () => {
  expect(store(tempDb('full'), { durability: 'full' }).sqlite.pragma('synchronous', { simple: true })).toBe(2)
  expect(store(':memory:').checkpointer).toBeNull()
})

test('a closed store leaves a database that reopens with every committed row', async () => {
  const path = tempDb('reopen')
  const s = new Store(path)
  addJobs(s, 50)
  s.close()
  await new Promise(resolve => setTimeout(resolve, 100))
  expect(store(path).counts().queued).toBe(50)
  expect(existsSync(path)).toBe(true)
})

test('the edits cache follows additions and removals', () => {
  const s = store(tempDb('edits'))
  const empty = s.activeEdits('m')
  expect(empty).toEqual([])
  expect(s.activeEdits('m')).toBe(empty) // cached: same array
  s.addEdit({ id: 'e1', model: 'm', name: 'steer', fragment: new Uint8Array([0x80]), digest: 'd1', now: 1 })
  expect(s.activeEdits('m').map(e => e.id)).toEqual(['e1'])
  s.addEdit({ id: 'e2', model: 'm', name: 'ablate', fragment: new Uint8Array([0x80]), digest: 'd2', now: 2 })
  expect(s.activeEdits('m').map(e => e.id)).toEqual(['e1', 'e2'])
  expect(s.removeEdit('other', 'e1', 3)).toBe(false) // an edit is removed through its own model only
  expect(s.activeEdits('m').map(e => e.id)).toEqual(['e1', 'e2'])
  expect(s.removeEdit('m', 'e1', 3)).toBe(true)
  expect(s.activeEdits('m').map(e => e.id)).toEqual(['e2'])
  expect(s.activeEdits('other')).toEqual([])
})

test('a revoked key stays revoked: registering it again (operator, self-registration, CLI --register) is refused', () => {
  const s = store(tempDb('keys'))
  const publicKey = new Uint8Array(32).fill(7)
  s.addKey({ kid: 'k1', publicKey, role: 'researcher', label: 'a', now: 1 })
  expect(s.addKey({ kid: 'k1', publicKey, role: 'operator', label: 'b', now: 2 })).toMatchObject({ role: 'operator', label: 'b', revokedAt: null })
  expect(s.revokeKey('k1', 'leaked', 3)).toBe(true)
  expect(() => s.addKey({ kid: 'k1', publicKey, role: 'researcher', now: 4 })).toThrow(expect.objectContaining({ code: 'KEY_REVOKED' }))
  expect(s.getKey('k1')).toMatchObject({ revokedAt: 3, revokedReason: 'leaked', role: 'operator' })
})
