/**
 * Multi-node providers (issue 14): the acceptance run at full length — 32 clients × 30 s across three provider nodes
 * on one real PostgreSQL server, one node killed with SIGKILL at mid-run — with every ledger invariant checked (the
 * suite throws if one fails), and the throughput of three nodes vs one on this machine (one node on SQLite is the
 * baseline), with the projected scaling from each node's CPU time.
 *
 * The load driver and the checks are the e2e test's (providers/host/test/multi-node-load.ts): each client submits to
 * the nodes in turn, follows its job's events on the next node and fetches the result from the one after.
 */
import { mkdtempSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { generateKeyPair, keyId, publicKeyOf, toHex, type Program } from '@weft/core'
import { killHard, startProviderProcess, type ProviderProcess } from '../../providers/host/test/process.js'
import { startPostgres, type Postgres } from '../../providers/host/test/postgres.js'
import { checkLoadLedger, cpuMsOf, runMultiNodeLoad, settleJobs, type LoadReport, type LoadUser } from '../../providers/host/test/multi-node-load.js'
import { fmt, loadNote, type BenchSuite, type BenchTable } from '../harness.js'

const DEMO = fileURLToPath(new URL('../../models/demo-gpt2', import.meta.url))
const CLIENTS = 32
const ACCEPTANCE_MS = 30_000
const THROUGHPUT_MS = 20_000
const WARMUP_MS = 3_000
/** cores of the machines the projection assumes for each node (and for the database server) */
const CORES_PER_MACHINE = 2

/** four prompt tokens through demo-gpt2, the mean of the logits saved (the e2e test's load Program) */
const program: Program = { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [464, 3139, 286, 481] }], nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['mean', { axes: null, keepdims: false }, [0]], ['save', { name: 'm' }, [1]]] }

const users: LoadUser[] = Array.from({ length: CLIENTS }, () => { const k = generateKeyPair(); return { secretKey: k.secretKey, kid: keyId(publicKeyOf(k.secretKey)) } })
const kids = users.map(u => u.kid)
const flags = (db: string): string[] => ['--model', DEMO, '--db', db, '--policy', 'closed', '--lease-ms', '3000', ...users.flatMap(u => ['--register', toHex(publicKeyOf(u.secretKey))])]

interface Measured { label: string; nodes: number; store: string; report: LoadReport; nodeCpuMs: number; pgCpuMs: number; benchCpuMs: number; completed: number; note?: string }

const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]! }

async function measure (label: string, store: 'sqlite' | 'postgres', count: number, server: Postgres, durationMs: number, kill?: (nodes: ProviderProcess[], db: pg.Client | null) => Promise<{ killed: ProviderProcess; node: string; running: string[] }>): Promise<Measured & { checks?: Awaited<ReturnType<typeof checkLoadLedger>> }> {
  const db = store === 'postgres' ? await server.createDatabase(`weft_bench_${label.replace(/\W+/g, '_')}`) : path.join(mkdtempSync(path.join(tmpdir(), 'weft-bench-')), 'bench.db')
  const nodes = await Promise.all(Array.from({ length: count }, async () => await startProviderProcess(flags(db), 120_000)))
  const client = store === 'postgres' ? new pg.Client(db) : null
  await client?.connect()
  try {
    const warm = await runMultiNodeLoad({ nodes, users, durationMs: WARMUP_MS, program }) // sessions compiled, connections warm
    const cpu0 = nodes.map(n => cpuMsOf(n.child.pid!))
    const pgPids = store === 'postgres' ? server.pids() : []
    const pgCpu = (): number => pgPids.reduce((sum, pid) => { try { return sum + cpuMsOf(pid) } catch { return sum } }, 0)
    const pg0 = pgCpu()
    const bench0 = process.cpuUsage()
    let killed: { killed: ProviderProcess; node: string; running: string[] } | undefined
    let killedCpu = 0
    const report = await runMultiNodeLoad({
      nodes, users, durationMs, program,
      ...(kill === undefined ? {} : {
        during: async () => {
          await new Promise(resolve => setTimeout(resolve, durationMs / 2))
          const victim = nodes[nodes.length - 1]!
          killedCpu = cpuMsOf(victim.child.pid!) - cpu0[nodes.length - 1]!
          killed = await kill(nodes, client)
        },
      }),
    })
    const bench = process.cpuUsage(bench0)
    const nodeCpuMs = nodes.reduce((sum, n, i) => sum + (killed?.killed === n ? killedCpu : cpuMsOf(n.child.pid!) - cpu0[i]!), 0)
    const measured: Measured = {
      label, nodes: count, store, report, nodeCpuMs, pgCpuMs: pgCpu() - pg0, benchCpuMs: (bench.user + bench.system) / 1000,
      completed: report.resultBytes.size,
    }
    if (client === null) return measured
    // the warm-up's jobs are the same keys' and in the same store: the checks cover both runs
    await settleJobs(client, kids, 60_000)
    const both: LoadReport = {
      ...report, accepted: [...warm.accepted, ...report.accepted], clientErrors: [...warm.clientErrors, ...report.clientErrors],
      refused: [...warm.refused, ...report.refused], resultBytes: new Map([...warm.resultBytes, ...report.resultBytes]), failed: [...warm.failed, ...report.failed],
    }
    const checks = await checkLoadLedger(client, both, { kids, nodes: count, ...(killed === undefined ? {} : { killed: { url: killed.killed.url, node: killed.node, running: killed.running } }) })
    return { ...measured, checks }
  } finally {
    await client?.end()
    for (const node of nodes) await node.stop().catch(() => {})
  }
}

/** SIGKILL of the last node once its engine runs one of the jobs (as in the e2e test) */
async function killLast (nodes: ProviderProcess[], db: pg.Client | null): Promise<{ killed: ProviderProcess; node: string; running: string[] }> {
  const victim = nodes[nodes.length - 1]!
  const node = /this node: (\S+)/.exec(victim.output())![1]!
  let running: string[] = []
  while (running.length === 0) {
    running = (await db!.query("SELECT id FROM jobs WHERE state = 'running' AND node = $1", [node])).rows.map(r => r.id as string)
    if (running.length === 0) await new Promise(resolve => setTimeout(resolve, 2))
  }
  await killHard(victim)
  return { killed: victim, node, running }
}

async function run (): Promise<BenchTable[]> {
  const load = loadavg()[0]!
  const server = await startPostgres()
  try {
    // the acceptance run first (its checks decide whether the suite passes), then the throughput configurations
    const acceptance = await measure('3 nodes, PostgreSQL, node 3 killed at 15 s', 'postgres', 3, server, ACCEPTANCE_MS, killLast)
    const sqlite = await measure('1 node, SQLite', 'sqlite', 1, server, THROUGHPUT_MS)
    const pg1 = await measure('1 node, PostgreSQL', 'postgres', 1, server, THROUGHPUT_MS)
    const pg3 = await measure('3 nodes, PostgreSQL', 'postgres', 3, server, THROUGHPUT_MS)
    const checks = [
      ...acceptance.checks!.map(c => ({ ...c, run: acceptance.label })),
      ...pg1.checks!.map(c => ({ ...c, run: pg1.label })),
      ...pg3.checks!.map(c => ({ ...c, run: pg3.label })),
    ]
    const invariants: BenchTable = {
      title: `multi-node acceptance: ${CLIENTS} clients × ${ACCEPTANCE_MS / 1000} s across 3 nodes, one killed with SIGKILL at mid-run (and the throughput runs' ledgers)`,
      columns: ['run', 'invariant', 'holds', 'detail'],
      rows: checks.map(c => [c.run, c.check, c.ok ? 'yes' : 'NO', c.detail]),
      note: `${acceptance.report.accepted.length} jobs accepted in the ${ACCEPTANCE_MS / 1000} s run (${acceptance.completed} results fetched by their clients, ${acceptance.report.failed.length} failures reported); ${acceptance.report.clientErrors.length} requests failed on the killed node's connections (clients then moved on).`,
    }
    const failed = checks.filter(c => !c.ok)
    if (failed.length > 0) {
      console.error(JSON.stringify(invariants, null, 2))
      throw new Error(`multi-node invariants failed: ${failed.map(c => `${c.run}: ${c.check} (${c.detail})`).join('; ')}`)
    }
    const base = sqlite.completed / (sqlite.report.elapsedMs / 1000)
    const row = (m: Measured): (string | number)[] => {
      const seconds = m.report.elapsedMs / 1000
      const jobsPerS = m.completed / seconds
      const nodeCpuPerJob = m.nodeCpuMs / m.completed
      const pgCpuPerJob = m.pgCpuMs / m.completed
      // a node on a machine of its own with CORES_PER_MACHINE cores, all busy at the CPU cost per job measured here;
      // bounded by a database server of CORES_PER_MACHINE cores at its CPU cost per job
      const perNode = CORES_PER_MACHINE * 1000 / nodeCpuPerJob
      const dbCeiling = m.store === 'postgres' ? CORES_PER_MACHINE * 1000 / pgCpuPerJob : Infinity
      const projected = (n: number): string => m.store === 'postgres' ? Math.min(n * perNode, dbCeiling).toFixed(0) : n === 1 ? perNode.toFixed(0) : '—'
      return [m.label, m.completed, jobsPerS.toFixed(1), (jobsPerS / base).toFixed(2) + '×', fmt(quantile(m.report.latencies, 0.5)), fmt(quantile(m.report.latencies, 0.95)),
        fmt(nodeCpuPerJob), m.store === 'postgres' ? fmt(pgCpuPerJob) : '—', fmt(m.benchCpuMs / m.completed), projected(1), projected(3), projected(8), m.store === 'postgres' ? dbCeiling.toFixed(0) : '—']
    }
    const throughput: BenchTable = {
      title: `multi-node throughput: ${CLIENTS} clients, demo-gpt2 4-token trace (lm_head mean), ${THROUGHPUT_MS / 1000} s per configuration`,
      columns: ['configuration', 'jobs', 'jobs/s', 'vs 1 node SQLite', 'p50 ms', 'p95 ms', 'node CPU ms/job', 'PostgreSQL CPU ms/job', 'clients CPU ms/job',
        `projected jobs/s: 1 node × ${CORES_PER_MACHINE} cores`, '3 nodes', '8 nodes', `database ceiling (${CORES_PER_MACHINE} cores)`],
      rows: [row(sqlite), row(pg1), row(pg3), row(acceptance)],
      note: `machine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}; ${loadNote(load)} Every process (nodes, PostgreSQL, the ${CLIENTS} clients) shares these cores, so more nodes cannot add throughput here. ` +
        'jobs = results fetched by their clients during the run (after a 3 s warm-up); latency = submission to result fetched, the events followed on another node and the result fetched from a third. ' +
        'CPU ms/job = user + system time of the processes (/proc/<pid>/stat, every thread: HTTP, admission, signing, the engine thread, the database thread) over the run, per job. ' +
        `Projection: each node on a machine of its own with ${CORES_PER_MACHINE} cores kept fully busy at the CPU cost per job measured in that configuration (an upper bound: a node's main and engine threads are each serial), ` +
        `clients elsewhere, capped by a ${CORES_PER_MACHINE}-core PostgreSQL server at its measured CPU cost per job; network latency between machines is not modelled.`,
    }
    return [invariants, throughput]
  } finally {
    await server.stop()
  }
}

const suite: BenchSuite = { name: 'multi-node', run }
export default suite
