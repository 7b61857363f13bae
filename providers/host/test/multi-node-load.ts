/**
 * The multi-node load driver and its ledger checks, shared by the e2e test (short run) and `npm run bench multi-node`
 * (32 clients × 30 s): N clients, each submitting to the provider's nodes in turn, following its job's events on
 * another node and fetching the result from a third. A node that stops answering (killed) is skipped from then on; a
 * job it accepted is followed on the others until it ends. `checkLoadLedger` then reads the shared database and
 * returns every invariant of issue 14 as a named check (test-only code: not part of the package's dist).
 */
import { readFileSync } from 'node:fs'
import type pg from 'pg'
import { createRequestEnvelope, decodeCbor, type Program } from '@weft/core'
import type { ProviderProcess } from './process.js'

export interface LoadUser { secretKey: Uint8Array; kid: string }

export interface LoadReport {
  /** jobs a node answered 202 for, and which node */
  accepted: { job: string; node: string }[]
  /** requests that failed (a dead node's connections), by node URL */
  clientErrors: { node: string; message: string }[]
  /** refusals (non-202 answers to a submission) */
  refused: { status: number; code: string }[]
  /** result bytes (egress.bytes of the result as fetched) per completed job */
  resultBytes: Map<string, number>
  failed: string[]
  /** submission → result fetched (or failure seen), ms, per accepted job that ended during the run */
  latencies: number[]
  elapsedMs: number
}

export async function runMultiNodeLoad (options: { nodes: ProviderProcess[]; users: LoadUser[]; durationMs: number; program: Program; during?: () => Promise<void> }): Promise<LoadReport> {
  const { nodes, users, program } = options
  const dead = new Set<string>()
  const report: LoadReport = { accepted: [], clientErrors: [], refused: [], resultBytes: new Map(), failed: [], latencies: [], elapsedMs: 0 }
  const alive = (from: number): ProviderProcess[] => {
    const list = nodes.map((_, i) => nodes[(from + i) % nodes.length]!).filter(n => !dead.has(n.url))
    if (list.length === 0) throw new Error('every node is down')
    return list
  }
  const failedOn = (node: ProviderProcess, error: unknown): void => {
    report.clientErrors.push({ node: node.url, message: (error as Error).message })
    dead.add(node.url)
  }
  const started = performance.now()
  const stopAt = started + options.durationMs
  // the load goes on until `during` (a kill under load) is done too: a kill must happen while jobs run
  let duringDone = options.during === undefined
  const going = (): boolean => performance.now() < stopAt || !duringDone

  async function follow (job: string, turn: number, submitted: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const node = alive(turn + 1 + attempt)[0]!
      let ended: 'job-end' | 'job-error'
      try {
        ended = await untilEnd(`${node.url}/v1/jobs/${job}/events`)
      } catch (error) { failedOn(node, error); continue }
      if (ended === 'job-error') { report.failed.push(job); report.latencies.push(performance.now() - submitted); return }
      const from = alive(turn + 2 + attempt)[0]!
      let response: Response
      try { response = await fetch(`${from.url}/v1/jobs/${job}/result`) } catch (error) { failedOn(from, error); continue }
      if (response.status !== 200) throw new Error(`result of ${job} from ${from.url}: ${response.status} ${await response.text()}`)
      const result = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { egress: { bytes: number } }
      report.resultBytes.set(job, result.egress.bytes)
      report.latencies.push(performance.now() - submitted)
      return
    }
  }

  async function client (index: number): Promise<void> {
    const user = users[index % users.length]!
    for (let turn = index; going(); turn++) {
      const node = alive(turn)[0]!
      const envelope = createRequestEnvelope({ program, audience: node.providerId, secretKey: user.secretKey, kid: user.kid })
      let response: Response
      const submitted = performance.now()
      try {
        response = await fetch(`${node.url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
      } catch (error) { failedOn(node, error); continue }
      if (response.status !== 202) {
        report.refused.push({ status: response.status, code: ((await response.json()) as { code: string }).code })
        await new Promise(resolve => setTimeout(resolve, 20))
        continue
      }
      const { job } = (await response.json()) as { job: string }
      report.accepted.push({ job, node: node.url })
      await follow(job, turn, submitted)
    }
  }

  await Promise.all([...users.map(async (_, i) => await client(i)), options.during?.().finally(() => { duringDone = true })])
  report.elapsedMs = performance.now() - started
  return report
}

/** Reads a job's SSE stream until its terminal event. */
async function untilEnd (url: string): Promise<'job-end' | 'job-error'> {
  const response = await fetch(url, { headers: { accept: 'text/event-stream' } })
  if (response.status !== 200 || response.body === null) throw new Error(`events ${url}: ${response.status}`)
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of response.body) {
    text += decoder.decode(chunk as Uint8Array, { stream: true })
    const match = /event: (job-end|job-error)\n/.exec(text)
    if (match !== null) { await response.body.cancel().catch(() => {}); return match[1] as 'job-end' | 'job-error' }
  }
  throw new Error(`events ${url}: the stream ended before the job did`)
}

/** Waits until none of these keys' jobs is queued or running (a killed node's jobs are taken over meanwhile). */
export async function settleJobs (db: pg.Client, kids: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while ((await db.query("SELECT 1 FROM jobs WHERE kid = ANY($1::text[]) AND state IN ('queued', 'running') LIMIT 1", [kids])).rows.length > 0) {
    if (Date.now() > deadline) throw new Error(`jobs still queued or running ${timeoutMs} ms after the load ended`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export interface LedgerCheck { check: string; ok: boolean; detail: string }

/**
 * Every invariant of a load run, read from the shared database (call after settleJobs): each accepted job is stored
 * and ended exactly once (completed, or failed with reason node-lost), charged once in the egress ledger and audited
 * once; the ledger equals the stored results' bytes and what the clients received; only the killed node's
 * connections failed; the killed node's running jobs were taken over and completed on another node (attempt 2); and
 * co-tenant batches held jobs accepted by different nodes.
 */
export async function checkLoadLedger (db: pg.Client, report: LoadReport, options: { kids: string[]; killed?: { url: string; node: string; running: string[] }; nodes: number }): Promise<LedgerCheck[]> {
  const checks: LedgerCheck[] = []
  const check = (name: string, ok: boolean, detail: string): void => { checks.push({ check: name, ok, detail }) }
  const { kids, killed } = options
  const errors = report.clientErrors.filter(e => killed === undefined || !e.node.startsWith(killed.url))
  check('client errors (other than the killed node\'s connections)', errors.length === 0, errors.length === 0 ? '0' : `${errors.length}: ${errors.slice(0, 3).map(e => `${e.node} ${e.message}`).join('; ')}`)
  check('refused submissions', report.refused.length === 0, String(report.refused.length))
  const { rows } = await db.query('SELECT id, state, error, attempts, node, started_at FROM jobs WHERE kid = ANY($1::text[])', [kids])
  const ids = new Set(rows.map(r => r.id as string))
  const lost = report.accepted.filter(a => !ids.has(a.job))
  check('accepted jobs (202) found in the store', lost.length === 0, `${report.accepted.length - lost.length} of ${report.accepted.length}`)
  const open = rows.filter(r => r.state !== 'completed' && r.state !== 'failed')
  check('every job ended (completed or failed)', open.length === 0, `${rows.length - open.length} of ${rows.length} stored`)
  const badFailures = rows.filter(r => r.state === 'failed' && (JSON.parse(r.error as string) as { details?: { reason?: string } }).details?.reason !== 'node-lost')
  const failedCount = rows.filter(r => r.state === 'failed').length
  check('failures are node-lost only', badFailures.length === 0, `${failedCount} failed, ${badFailures.length} for another reason`)
  const completed = new Set(rows.filter(r => r.state === 'completed').map(r => r.id as string))
  const ledger = await db.query('SELECT job_id, count(*)::int AS n, sum(bytes)::bigint AS bytes FROM egress WHERE kid = ANY($1::text[]) GROUP BY job_id', [kids])
  const charged = new Set(ledger.rows.map(r => r.job_id as string))
  const twice = ledger.rows.filter(r => r.n !== 1).length
  const unmatched = [...completed].filter(id => !charged.has(id)).length + [...charged].filter(id => !completed.has(id)).length
  check('egress ledger: one charge per completed job, none for others', twice === 0 && unmatched === 0, `${completed.size} completed, ${charged.size} charged, ${twice} charged twice, ${unmatched} mismatched`)
  const ends = await db.query("SELECT job_id, count(*)::int AS n FROM audit WHERE action = 'job-end' AND actor = ANY($1::text[]) GROUP BY job_id", [kids])
  const auditTwice = ends.rows.filter(r => r.n !== 1).length
  check('audit log: one job-end per completed job', ends.rows.length === completed.size && auditTwice === 0, `${ends.rows.length} audited, ${auditTwice} twice`)
  const stored = await db.query('SELECT coalesce(sum(r.egress_bytes), 0)::bigint AS n FROM results r JOIN jobs j ON j.id = r.job_id WHERE j.kid = ANY($1::text[])', [kids])
  const ledgerBytes = ledger.rows.reduce((n, r) => n + Number(r.bytes), 0)
  check('egress ledger bytes = stored result bytes', ledgerBytes === Number(stored.rows[0].n), `${ledgerBytes} = ${Number(stored.rows[0].n)}`)
  const byJob = new Map(ledger.rows.map(r => [r.job_id as string, Number(r.bytes)]))
  let clientBytes = 0
  let mismatched = 0
  for (const [job, bytes] of report.resultBytes) { clientBytes += bytes; if (byJob.get(job) !== bytes) mismatched++ }
  check('result bytes clients received = their ledger charges', mismatched === 0, `${report.resultBytes.size} results, ${clientBytes} bytes, ${mismatched} mismatched`)
  check('every accepted job reached its client (result or failure)', report.resultBytes.size + report.failed.length === report.accepted.length, `${report.resultBytes.size} results + ${report.failed.length} failures of ${report.accepted.length}`)
  if (killed !== undefined) {
    const taken = killed.running.map(id => rows.find(r => r.id === id))
    const good = taken.filter(r => r !== undefined && Number(r.attempts) === 2 && r.state === 'completed' && r.node !== killed.node)
    check('killed node\'s running jobs: taken over, completed on another node (attempt 2)', killed.running.length > 0 && good.length === killed.running.length, `${good.length} of ${killed.running.length}`)
  }
  if (options.nodes > 1) {
    // co-tenant batches: jobs claimed together (same node, same claim time) that were accepted by different nodes
    const acceptedBy = new Map(report.accepted.map(a => [a.job, a.node]))
    const batches = new Map<string, Set<string>>()
    for (const row of rows) {
      if (row.node === null || row.started_at === null || !acceptedBy.has(row.id)) continue
      const key = `${row.node}@${row.started_at}`
      if (!batches.has(key)) batches.set(key, new Set())
      batches.get(key)!.add(acceptedBy.get(row.id)!)
    }
    const spanning = [...batches.values()].filter(admittedBy => admittedBy.size > 1).length
    check('co-tenant batches span jobs accepted by different nodes', spanning > 0, `${spanning} of ${batches.size} batches`)
  }
  return checks
}

/**
 * SIGKILL of a node while its engine runs jobs: the node is frozen (SIGSTOP) before its running jobs are read, so the
 * list is exactly what it held when it died (a job it was about to commit cannot complete between the read and the
 * kill); a node found idle is let go on for a moment and tried again. Returns the ids of the jobs it was running.
 */
export async function killWhileRunning (db: pg.Client, provider: ProviderProcess, node: string, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs
  const runningHere = async (): Promise<string[]> => (await db.query("SELECT id FROM jobs WHERE state = 'running' AND node = $1", [node])).rows.map(r => r.id as string)
  for (;;) {
    if (Date.now() > deadline) throw new Error(`node ${node} ran no job within ${timeoutMs} ms of load`)
    // watch without stopping the node (stopped, it would claim nothing); stop it only once it runs a job
    if ((await runningHere()).length === 0) { await new Promise(resolve => setTimeout(resolve, 5)); continue }
    provider.child.kill('SIGSTOP')
    await new Promise(resolve => setTimeout(resolve, 20)) // a commit already sent reaches the server
    const running = await runningHere()
    if (running.length > 0) {
      const exited = new Promise<void>(resolve => provider.child.once('exit', () => resolve()))
      provider.child.kill('SIGKILL')
      await exited
      return running
    }
    provider.child.kill('SIGCONT')
    await new Promise(resolve => setTimeout(resolve, 3))
  }
}

/** user + system CPU time (ms) a process has used so far, all its threads (Linux /proc/<pid>/stat) */
export function cpuMsOf (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[11] = utime, fields[12] = stime (fields 14 and 15 of proc(5)), in clock ticks (100 Hz on Linux)
  return (Number(fields[11]) + Number(fields[12])) * 10
}
