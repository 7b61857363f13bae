/**
 * Body of an engine worker (a worker thread or a child process): loads one model with the backend named by the
 * spec and runs batches on request. Messages are plain data (protocol.ts).
 */
import { parentPort } from 'node:worker_threads'
import { WeftError, type ModelHandleV1, type JobResult, type WireError } from '@weft/core'
import { loadBackend } from './load-backend.js'
import type { FromWorker, ToWorker } from './protocol.js'

interface Port { postMessage (message: FromWorker, transfer?: ArrayBuffer[]): void; on (event: 'message', listener: (message: ToWorker) => void): void }

function portOf (): Port {
  if (parentPort !== null) return parentPort as unknown as Port
  if (process.send !== undefined) {
    return {
      postMessage: message => { process.send!(message) },
      on: (_event, listener) => { process.on('message', message => listener(message as ToWorker)) },
    }
  }
  throw new Error('engine-worker.ts must run in a worker thread or a forked child process')
}

const port = portOf()
let handle: ModelHandleV1 | null = null
/** the signal of each run in progress (a 'stop' message aborts it) */
const runs = new Map<number, AbortController>()
function send (message: FromWorker, transfer: ArrayBuffer[] = []): void {
  try { port.postMessage(message, transfer) } catch { port.postMessage(message) } // some engine buffers cannot be detached: copy them
}

function toWire (error: unknown): WireError {
  if (WeftError.is(error)) return error.toWire()
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), details: {} }
}

/** The saves' buffers, each once, so results move to the main thread without a copy. */
function transferables (results: JobResult[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>()
  for (const result of results) {
    if (!result.ok) continue
    for (const tensor of [...Object.values(result.saves), ...Object.values(result.params ?? {})]) {
      if (tensor.data.buffer instanceof ArrayBuffer) buffers.add(tensor.data.buffer)
    }
  }
  return [...buffers]
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'load') {
    loadBackend(message.spec)
      .then(backend => backend.loadModel(message.source))
      .then(loaded => { handle = loaded; send({ type: 'loaded', manifest: loaded.manifest }) })
      .catch(error => send({ type: 'load-error', error: toWire(error) }))
    return
  }
  if (message.type === 'stop') { runs.get(message.id)?.abort(); return }
  const { id, jobs } = message
  if (handle === null) { send({ type: 'run-error', id, error: { code: 'PROVIDER_UNAVAILABLE', message: 'engine worker has no model loaded', details: {} } }); return }
  const progress = progressSender(id, message.reportStart !== false)
  const controller = new AbortController()
  runs.set(id, controller)
  handle.run(jobs, { onProgress: progress.event, signal: controller.signal })
    .then(results => { progress.flush(); send({ type: 'result', id, results }, transferables(results)) })
    .catch(error => { progress.flush(); send({ type: 'run-error', id, error: toWire(error) }) })
    .finally(() => runs.delete(id))
})

/** progress of a run younger than this is held and sent just before its result (one wake-up of the host, not three) */
const PROGRESS_HOLD_MS = 20

/**
 * Progress events of a young run are held and sent together with its result, so a short run wakes the host's event
 * loop once instead of once per stage; runs that take longer report each stage as it happens. With `reportStart`
 * the first event goes out at once: the host starts the job's time limit on it when the engine was busy.
 */
function progressSender (id: number, reportStart: boolean): { event: (event: { stage: string; detail?: Record<string, unknown> }) => void; flush: () => void } {
  const started = performance.now()
  const held: { stage: string; detail?: Record<string, unknown> }[] = []
  let first = reportStart
  const flush = (): void => { for (const event of held.splice(0)) send({ type: 'progress', id, event }) }
  return {
    event: event => {
      // streamed tokens are never held: their point is to arrive before the result
      if (first || event.stage === 'token' || performance.now() - started >= PROGRESS_HOLD_MS) { first = false; flush(); send({ type: 'progress', id, event }); return }
      held.push(event)
    },
    flush,
  }
}
