/**
 * Job routes: submit a signed Program (application/cose), follow it (status JSON or SSE), fetch its result
 * (CBOR saves + the provider-signed receipt) and cancel it. A job id is an unguessable capability. The key that
 * signed an envelope can ask which job it created (`GET /v1/requests/{digest}`): a client whose connection broke
 * after sending learns whether it was accepted instead of sending the Program twice.
 */
import { Hono, type Context } from 'hono'
import { streamSSE } from 'hono/streaming'
import { WeftError, ERROR_CODES, decodeProgram, encodeCbor, type ErrorCode, type WireError } from '@weft/core'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { HostContext } from './host-context.js'
import type { JobRow } from '../store/store.js'
import { isTerminal, type JobEvent } from '../jobs/job-events.js'
import { splitStats, type StoredResult } from '../jobs/complete-job.js'
import { keyOf } from './operator-auth.js'

const MAX_WAIT_SECONDS = 60
const REQUEST_DIGEST = /^sha256:[0-9a-f]{64}$/
/** how long a cancel waits for the node running the job to end it (multi-node) */
const CANCEL_WAIT_MS = 2_000
/** a comment line goes out on an event stream idle this long (keeps proxies from closing it) */
const KEEP_ALIVE_MS = 15_000

export function jobRoutes (host: HostContext): Hono {
  const app = new Hono()

  app.post('/jobs', async c => {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/cose') throw new WeftError('UNSUPPORTED_MEDIA_TYPE', `POST /v1/jobs takes a COSE_Sign1 envelope as application/cose, not '${type || 'nothing'}'`, { contentType: type })
    const bytes = new Uint8Array(await c.req.arrayBuffer())
    const { admitted, row, program } = await host.admit(bytes)
    const wait = preferWait(c.req.header('prefer'))
    const ended = wait > 0 ? host.events.waitForEnd(admitted.job, wait * 1000) : null
    if (row.state === 'queued') host.scheduler.queued(row, program) // else admission already started it
    c.header('Location', `/v1/jobs/${admitted.job}`)
    c.header('Weft-Job', admitted.job)
    if (ended !== null && (await ended) !== null) {
      const fresh = host.scheduler.takeFresh(admitted.job)
      if (fresh !== undefined) return resultBody(c, host, admitted.job, row.kid, fresh)
      return resultResponse(c, host, host.store.getJob(admitted.job)!)
    }
    return c.json(admitted, 202)
  })

  app.get('/jobs/:id', c => c.json(statusOf(host, jobOf(host, c.req.param('id')))))

  // the job an envelope created, asked by the key that signed it (Weft-Key); another key's answer is the same 404
  // as none, so a digest tells nothing to anyone else
  app.get('/requests/:digest', async c => {
    const kid = await keyOf(host, c)
    const digest = c.req.param('digest')
    if (!REQUEST_DIGEST.test(digest)) throw new WeftError('JOB_NOT_FOUND', `no job of request '${digest.slice(0, 80)}': a request digest is sha256: and 64 lowercase hex digits`, { request: digest.slice(0, 80) })
    const row = host.store.jobByRequest(kid, digest)
    if (row === undefined) throw new WeftError('JOB_NOT_FOUND', `no job of request ${digest} signed by key ${kid} on this provider`, { request: digest })
    return c.json(statusOf(host, row))
  })

  app.get('/jobs/:id/result', c => resultResponse(c, host, jobOf(host, c.req.param('id'))))

  app.delete('/jobs/:id', async c => {
    const row = jobOf(host, c.req.param('id'))
    const cancelled = host.scheduler.cancel(row)
    let now = host.store.getJob(row.id)!
    // a job another node runs (multi-node): that node cancels it within a poll; answer with the outcome when it has
    // (a training job keeps running until its current step ends, as it would on one node)
    if (cancelled && host.store.shared && now.state === 'running' && now.node !== host.store.node && !trains(now)) {
      const deadline = Date.now() + CANCEL_WAIT_MS
      while (now.state === 'running' && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 10))
        now = host.store.getJob(row.id)!
      }
    }
    return c.json({ ...statusOf(host, now), cancelled })
  })

  app.get('/jobs/:id/events', c => {
    const row = jobOf(host, c.req.param('id'))
    return streamSSE(c, async stream => {
      const queue: JobEvent[] = []
      let wake: (() => void) | null = null
      const unsubscribe = host.events.subscribe(row.id, event => { queue.push(event); wake?.() })
      stream.onAbort(() => { unsubscribe(); wake?.() })
      const snapshot = snapshotEvents(host, host.store.getJob(row.id)!)
      let id = 0
      const write = async (event: JobEvent): Promise<void> => { await stream.writeSSE({ event: event.event, data: JSON.stringify(event.data), id: String(id++) }) }
      // one keep-alive timer per stream, re-armed at each wait (a timer per wait left one pending per event)
      let keepAlive: NodeJS.Timeout | null = null
      // each training step once per stream, in order: a step reported between the subscription and the snapshot is in
      // both, and a job resumed from a checkpoint (after a restart or a take-over) replays the steps before it and
      // runs again the ones its earlier run did after it (the same values: the resume is exact)
      let lastStep = 0
      const repeated = (event: JobEvent): boolean => {
        if (event.data.stage !== 'train-step') return false
        const step = Number(event.data.step)
        if (step <= lastStep) return true
        lastStep = step
        return false
      }
      try {
        for (const event of snapshot) if (!repeated(event)) await write(event)
        if (snapshot.some(e => isTerminal(e.event))) return
        while (!stream.aborted) {
          if (queue.length === 0) {
            await new Promise<void>(resolve => {
              wake = resolve
              if (keepAlive === null) { keepAlive = setTimeout(() => wake?.(), KEEP_ALIVE_MS); keepAlive.unref() } else keepAlive.refresh()
            })
            wake = null
            if (queue.length === 0 && !stream.aborted) await stream.write(': keep-alive\n\n')
            continue
          }
          const event = queue.shift()!
          if (repeated(event)) continue
          await write(event)
          if (isTerminal(event.event)) return
        }
      } finally {
        unsubscribe()
        if (keepAlive !== null) clearTimeout(keepAlive)
      }
    })
  })

  return app
}

function trains (row: JobRow): boolean {
  try { return decodeProgram(row.program).train !== undefined } catch { return false }
}

function jobOf (host: HostContext, id: string): JobRow {
  const row = host.store.getJob(id)
  if (row === undefined) throw new WeftError('JOB_NOT_FOUND', `no job '${id}' on this provider`, { job: id })
  return row
}

function preferWait (prefer: string | undefined): number {
  const match = /(?:^|[,;\s])wait=(\d+(?:\.\d+)?)/.exec(prefer ?? '')
  return match === null ? 0 : Math.min(MAX_WAIT_SECONDS, Number(match[1]))
}

function statusOf (host: HostContext, row: JobRow): Record<string, unknown> {
  return {
    job: row.id, state: row.state, model: row.model, revision: row.revision, programDigest: row.programDigest,
    requestDigest: row.requestDigest, position: host.store.queuePosition(row), attempts: row.attempts,
    submittedAt: row.submittedAt, startedAt: row.startedAt, endedAt: row.endedAt,
    estimatedEgressBytes: row.estimatedEgress, error: row.error === null ? null : JSON.parse(row.error) as WireError,
  }
}

/** The events a late subscriber needs to catch up with the job's current state. */
function snapshotEvents (host: HostContext, row: JobRow): JobEvent[] {
  const events: JobEvent[] = [{ event: 'job-received', data: { job: row.id, model: row.model, submittedAt: row.submittedAt } }]
  if (row.state === 'queued') events.push({ event: 'job-queued', data: { job: row.id, position: host.store.queuePosition(row) } })
  if (row.state === 'running') events.push({ event: 'job-start', data: { job: row.id } }, ...host.scheduler.trainingProgress(row.id))
  if (row.state === 'completed') {
    const result = host.store.getResult(row.id, host.now())
    const { extras } = splitStats(JSON.parse(result?.stats ?? 'null'))
    events.push({ event: 'job-end', data: { job: row.id, egressBytes: result?.egressBytes ?? null, ...extras } })
  }
  if (row.state === 'failed' || row.state === 'cancelled') events.push({ event: 'job-error', data: { job: row.id, state: row.state, error: JSON.parse(row.error ?? 'null') } })
  return events
}

function resultResponse (c: Context, host: HostContext, row: JobRow): Response {
  c.header('Weft-Job', row.id)
  if (row.state === 'queued' || row.state === 'running') {
    throw new WeftError('JOB_NOT_READY', `job ${row.id} is ${row.state}; follow GET /v1/jobs/${row.id}/events or retry later`, { job: row.id, state: row.state, position: host.store.queuePosition(row) })
  }
  if (row.state !== 'completed') {
    const error = JSON.parse(row.error ?? '{}') as WireError
    const code = (error.code in ERROR_CODES ? error.code : 'INTERNAL') as ErrorCode
    return c.json({ code, message: error.message, details: { ...error.details, job: row.id, state: row.state } }, ERROR_CODES[code].status as ContentfulStatusCode)
  }
  const result = host.store.getResult(row.id, host.now())
  if (result === undefined) throw new WeftError('RESULT_EXPIRED', `the result of job ${row.id} is past its retention time and was deleted`, { job: row.id })
  return resultBody(c, host, row.id, row.kid, { saves: result.saves, receipt: result.receipt, egressBytes: result.egressBytes, stats: JSON.parse(result.stats ?? 'null') as unknown })
}

/** 200 `Result` (CBOR): the stored saves bytes and receipt as they are, egress left today, stats (+ training, adapter). */
function resultBody (c: Context, host: HostContext, job: string, kid: string, result: StoredResult): Response {
  c.header('Weft-Job', job)
  const { stats, extras } = splitStats(result.stats)
  const body = encodeCbor({
    job,
    saves: plain(result.saves),
    receipt: plain(result.receipt),
    egress: { bytes: result.egressBytes, remainingToday: host.remainingEgress(kid) },
    stats: stats ?? null,
    ...extras,
  })
  return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/cbor' })
}

/** A Uint8Array view of the same bytes (a Buffer from SQLite encodes the same, but keep the encoder's input plain). */
const plain = (bytes: Uint8Array): Uint8Array => bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
