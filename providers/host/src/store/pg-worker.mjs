// PgStore's database thread: one node-postgres connection. The provider's thread posts one statement at a time and
// waits (Atomics.wait) for the reply, so the Store stays synchronous and a transaction (BEGIN … COMMIT, posted as
// separate statements) holds this one connection with nothing interleaved. Plain JS: no TypeScript loader needed.
import { workerData } from 'node:worker_threads'
import pg from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'

const { url, port, signal, migrations } = workerData
const flag = new Int32Array(signal)
/** bigint columns hold milliseconds and byte counts (< 2^53): numbers, as SQLite returns them */
pg.types.setTypeParser(20, value => Number(value))
/** serialises nodes that start together: drizzle's migrator is not safe to run concurrently */
const MIGRATION_LOCK = 7_461_001

const client = new pg.Client({ connectionString: url, application_name: 'weft-host' })
let broken = null
client.on('error', error => { broken = error })
const ready = (async () => {
  await client.connect()
  await client.query("SET lock_timeout = '20s'")
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
  try { await migrate(drizzle(client), { migrationsFolder: migrations }) } finally { await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]) }
})()
ready.catch(() => {})

const param = value => value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value

port.on('message', async message => {
  let reply
  try {
    await ready
    if (broken !== null) throw broken
    if (message.end === true) { await client.end(); reply = { rows: [], count: 0 } } else if (message.sql === undefined) reply = { rows: [], count: 0 }
    else {
      const result = await client.query({ text: message.sql, values: message.params.map(param), rowMode: 'array' })
      reply = { rows: result.rows, count: result.rowCount ?? 0 }
    }
  } catch (error) {
    reply = { error: { message: String(error?.message ?? error), code: error?.code ?? null } }
  }
  port.postMessage({ ...reply, id: message.id })
  // the reply is queued on the port before the count that announces it
  Atomics.add(flag, 0, 1)
  Atomics.notify(flag, 0)
})
