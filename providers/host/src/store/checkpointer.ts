/**
 * WAL checkpoints off the event loop. With `synchronous = NORMAL` a commit only appends to the WAL (no fsync); the
 * fsyncs happen when the WAL is checkpointed into the database file, which SQLite by default does inside whichever
 * commit pushes the WAL past 1000 pages — on the provider's HTTP thread. Measured with one-save jobs of 32 KiB
 * (admission, start, completion commits): 1.0 ms of SQLite time per job with automatic checkpoints, 0.24 ms without.
 * So the main connection's automatic checkpoint is raised to a backstop and a worker thread with its own connection
 * runs PASSIVE checkpoints (they never block the writer) every `intervalMs`. Durability is unchanged: the same
 * frames reach the same files with the same fsyncs, only on another thread.
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'

/** the main connection still checkpoints by itself past this many WAL pages (~40 MiB) if the thread falls behind */
export const BACKSTOP_CHECKPOINT_PAGES = 10_000
const DEFAULT_CHECKPOINT_INTERVAL_MS = 200

const BODY = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.path, { fileMustExist: true })
db.pragma('busy_timeout = 1000')
db.pragma('wal_autocheckpoint = 0')
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)') } catch (error) { parentPort.postMessage({ error: String(error && error.message || error) }) } }
const timer = setInterval(checkpoint, workerData.intervalMs)
parentPort.on('message', message => {
  if (message === 'now') { checkpoint(); parentPort.postMessage('done'); return }
  if (message === 'stop') { clearInterval(timer); checkpoint(); db.close(); parentPort.close() }
})
`

export interface Checkpointer {
  /** runs one checkpoint now and resolves when it is done (tests) */
  now (): Promise<void>
  stop (): Promise<void>
}

export function startCheckpointer (path: string, intervalMs = DEFAULT_CHECKPOINT_INTERVAL_MS): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(BODY, { eval: true, workerData: { path, intervalMs, driver } })
  worker.unref()
  worker.on('message', message => {
    if (typeof message === 'object' && message !== null && 'error' in message) console.error('[weft host] WAL checkpoint failed:', (message as { error: string }).error)
  })
  worker.on('error', error => console.error('[weft host] WAL checkpointer stopped:', error.message))
  const exited = new Promise<void>(resolve => worker.once('exit', () => resolve()))
  return {
    now: async () => {
      const done = new Promise<void>(resolve => worker.once('message', () => resolve()))
      worker.postMessage('now')
      await done
    },
    stop: async () => {
      worker.postMessage('stop')
      await exited
    },
  }
}
