/**
 * The workbench's HTTP server (hono): the page and its bundle, a small JSON API over the backend (fabric, models,
 * runs), run progress as server-sent events, and the downloads. Bad input is a JSON error with the WeftError code
 * and a message the page shows; nothing here answers 500 for a bad form.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Hono, type Context } from 'hono'
import { streamSSE } from 'hono/streaming'
import { serve } from '@hono/node-server'
import { WeftError, encodeSafetensors } from '@weft/core'
import type { Backend } from './backend.js'
import { WEB_OUT, ensureBundle } from './bundle.js'
import { Runs, mainProgram, programCbor, programJson, receiptBytes } from './runs.js'
import { isKind, validateParams, EXPERIMENTS, type ExperimentKind } from './shared/experiments.js'
import { layerCount } from './experiments.js'

const PAGE = (title: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<div id="app"><noscript>The Weft workbench needs JavaScript.</noscript></div>
</body>
</html>
`

function concat (parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0))
  let offset = 0
  for (const part of parts) { out.set(part, offset); offset += part.length }
  return out
}

function errorBody (error: unknown): { status: number; body: { error: { code: string; message: string; details?: Record<string, unknown> } } } {
  if (WeftError.is(error)) {
    return { status: error.status, body: { error: { code: error.code, message: error.message, details: error.details } } }
  }
  // transport failures talking to a provider or the directory: a gateway problem, not ours
  const message = error instanceof Error ? error.message : String(error)
  return { status: 502, body: { error: { code: 'PROVIDER_UNAVAILABLE', message } } }
}

async function readJson (c: Context): Promise<Record<string, unknown>> {
  let body: unknown
  try { body = await c.req.json() } catch { throw new WeftError('DECODE_FAILED', 'the request body is not JSON') }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new WeftError('DECODE_FAILED', 'the request body must be a JSON object')
  return body as Record<string, unknown>
}

export interface WorkbenchApp { app: Hono; runs: Runs }

export function createWorkbenchApp (backend: Backend): WorkbenchApp {
  const app = new Hono()
  const runs = new Runs(backend)

  app.onError((error, c) => {
    const { status, body } = errorBody(error)
    return c.json(body, status as 400)
  })
  app.notFound(c => c.req.path.startsWith('/api/')
    ? c.json({ error: { code: 'ROUTE_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404)
    : c.html(PAGE('Weft workbench')))

  app.get('/', c => c.html(PAGE('Weft workbench')))
  app.get('/assets/:file', async c => {
    const file = c.req.param('file')
    const type = file === 'app.js' ? 'text/javascript; charset=utf-8' : file === 'app.css' ? 'text/css; charset=utf-8' : null
    if (type === null) return c.json({ error: { code: 'ROUTE_NOT_FOUND', message: `no asset ${file}` } }, 404)
    await ensureBundle()
    return c.body(readFileSync(join(WEB_OUT, file)), 200, { 'Content-Type': type, 'Cache-Control': 'no-cache' })
  })

  app.get('/api/info', c => c.json({ mode: backend.mode, connect: backend.connectSource, experiments: EXPERIMENTS }))
  app.get('/api/fabric', async c => c.json(await backend.fabric()))
  app.get('/api/models', async c => c.json({ models: await backend.weft.listModels() }))
  app.get('/api/models/:name/manifest', async c => {
    const model = await backend.weft.model(c.req.param('name'))
    return c.json({ manifest: model.manifest, layers: layerCount(model) })
  })

  app.post('/api/runs', async c => {
    const body = await readJson(c)
    const { kind, model, params } = body
    if (!isKind(kind)) throw new WeftError('PROGRAM_INVALID', `unknown experiment '${String(kind)}': one of ${EXPERIMENTS.map(e => e.kind).join(', ')}`, { field: 'kind' })
    if (typeof model !== 'string' || model.length === 0) throw new WeftError('MODEL_NOT_FOUND', 'choose a model', { field: 'model' })
    const problems = validateParams(kind, params)
    if (problems.length > 0) throw new WeftError('PROGRAM_INVALID', problems.map(p => p.message).join('; '), { field: problems[0]!.field, problems })
    const run = await runs.start(kind as ExperimentKind, model, params as never)
    return c.json({ id: run.summary.id }, 202)
  })

  app.get('/api/runs/:id', c => c.json(runs.get(c.req.param('id')).summary))

  app.get('/api/runs/:id/events', c => {
    const run = runs.get(c.req.param('id'))
    return streamSSE(c, async stream => {
      const queue: ({ stage: string; text: string } | null)[] = [...run.events]
      const done = run.summary.status === 'completed' || run.summary.status === 'failed'
      if (done) queue.push(null)
      let wake: (() => void) | null = null
      const listener = (event: { stage: string; text: string } | null): void => { queue.push(event); wake?.(); wake = null }
      if (!done) run.listeners.add(listener)
      stream.onAbort(() => { run.listeners.delete(listener); wake?.() })
      try {
        for (;;) {
          const event = queue.shift()
          if (event === undefined) {
            if (stream.aborted) return
            await new Promise<void>(resolve => { wake = resolve })
            continue
          }
          if (event === null) {
            await stream.writeSSE({ event: 'end', data: JSON.stringify(run.summary) })
            return
          }
          await stream.writeSSE({ event: 'progress', data: JSON.stringify(event) })
        }
      } finally { run.listeners.delete(listener) }
    })
  })

  const download = (c: Context, bytes: Uint8Array | string, name: string, type: string): Response => c.body(
    (typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes) as Uint8Array<ArrayBuffer>, 200,
    { 'Content-Type': type, 'Content-Disposition': `attachment; filename="${name}"` })

  const finished = (id: string): ReturnType<Runs['get']> => {
    const run = runs.get(id)
    if (run.summary.status !== 'completed') throw new WeftError('JOB_NOT_READY', `run ${id} is ${run.summary.status}; downloads are ready when it completes`, { run: id })
    return run
  }

  app.get('/api/runs/:id/results.safetensors', c => {
    const run = finished(c.req.param('id'))
    const metadata = { experiment: run.summary.kind, model: run.summary.model, program: run.summary.programDigest ?? '', provider: run.summary.provider ?? '' }
    return download(c, concat(encodeSafetensors(run.tensors, metadata)), `${run.summary.kind}.safetensors`, 'application/octet-stream')
  })
  app.get('/api/runs/:id/program.cbor', c => {
    const run = finished(c.req.param('id'))
    return download(c, programCbor(mainProgram(run)!), `${run.summary.kind}.program.cbor`, 'application/cbor')
  })
  app.get('/api/runs/:id/program.json', c => {
    const run = finished(c.req.param('id'))
    return download(c, programJson(mainProgram(run)!), `${run.summary.kind}.program.json`, 'application/json')
  })
  app.get('/api/runs/:id/receipt.cbor', c => {
    const run = finished(c.req.param('id'))
    const bytes = receiptBytes(run)
    if (bytes === null) throw new WeftError('JOB_NOT_FOUND', 'this run has no receipt (embedded runs are not signed by a provider)', { run: run.summary.id })
    return download(c, bytes, `${run.summary.kind}.receipt.cbor`, 'application/cose')
  })

  return { app, runs }
}

export interface WorkbenchServer { url: string; port: number; close: () => Promise<void> }

/** Serves the workbench on 127.0.0.1 (`port` 0: any free port); the bundle is built first if needed. */
export async function startWorkbench (backend: Backend, options: { port?: number; hostname?: string } = {}): Promise<WorkbenchServer> {
  await ensureBundle()
  const { app } = createWorkbenchApp(backend)
  const hostname = options.hostname ?? '127.0.0.1'
  return await new Promise<WorkbenchServer>((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: options.port ?? 0, hostname }, info => {
      resolve({
        url: `http://${hostname}:${info.port}`, port: info.port,
        close: () => new Promise<void>(done => { server.close(() => done()); (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.() }),
      })
    })
    server.once('error', reject)
  })
}
