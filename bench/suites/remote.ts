/**
 * Remote mode: round-trip overhead of a one-save trace over embedded execution (provider process on loopback),
 * and throughput of 16 concurrent clients with co-tenant batching vs one job per forward pass.
 */
import path from 'node:path'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { generateKeyPair, signBytes, toHex, verifyBytes, type Program } from '@weft/core'
import { LocalExecutor } from '@weft/sdk'
import { connectRemote, type RemoteExecutor } from '../../sdk/src/remote/index.js'
import { startProviderProcess, type ProviderProcess } from '../../providers/host/test/process.js'
import { fmt, ratio, timeIt, type BenchSuite, type BenchTable } from '../harness.js'

const MODELS = fileURLToPath(new URL('../../models', import.meta.url))
const DEMO = path.join(MODELS, 'demo-gpt2')

function oneSave (ids: number[]): Program {
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids }], nodes: [['read', { site: 'transformer.h.3', port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]] }
}

async function provider (extra: string[] = []): Promise<ProviderProcess> {
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'weft-bench-')), 'bench.db')
  return await startProviderProcess(['--model', DEMO, '--db', db, '--policy', 'open', ...extra])
}

async function client (p: ProviderProcess): Promise<RemoteExecutor> {
  return await connectRemote({ provider: p.url, key: toHex(generateKeyPair().secretKey) })
}

async function overhead (): Promise<BenchTable> {
  const program = oneSave([464, 3139, 286, 481, 318, 642, 13, 383])
  const local = new LocalExecutor({ modelsDir: MODELS })
  const embedded = await timeIt(() => local.run(program), { warmup: 10, reps: 200 })
  const rows: (string | number)[][] = [['embedded (LocalExecutor)', fmt(embedded.p50), fmt(embedded.p99), '—', '—']]
  for (const isolation of ['thread', 'process']) {
    const p = await provider(['--isolation', isolation])
    try {
      const remote = await client(p)
      const timing = await timeIt(() => remote.run(program), { warmup: 10, reps: 200 })
      rows.push([`remote, engine in a ${isolation}`, fmt(timing.p50), fmt(timing.p99), fmt(timing.p50 - embedded.p50), fmt(timing.p99 - embedded.p99)])
    } finally { await p.stop() }
  }
  await local.close()
  // the four Ed25519 operations of a round trip (client signs, provider verifies, provider signs the receipt, client verifies it)
  const key = generateKeyPair()
  const message = new Uint8Array(700)
  const signature = signBytes(message, key.secretKey)
  const signMs = (await timeIt(() => signBytes(message, key.secretKey), { warmup: 20, reps: 200 })).p50
  const verifyMs = (await timeIt(() => verifyBytes(signature, message, key.publicKey), { warmup: 20, reps: 200 })).p50
  rows.push(['of which Ed25519 (2 signs + 2 verifies, core)', fmt(2 * signMs + 2 * verifyMs), '', '', ''])
  return {
    title: 'Remote round trip vs embedded, one-save trace (8 tokens, h.3 output), ms',
    columns: ['mode', 'p50', 'p99', 'overhead p50', 'overhead p99'],
    rows,
    note: 'Remote = sign (Ed25519) → POST /v1/jobs with Prefer: wait → verify, validate, queue, run, sign receipt → verify receipt and digests. Provider is a separate process on 127.0.0.1. Target: overhead p50 ≤ 3 ms.',
  }
}

async function throughput (): Promise<BenchTable> {
  const clients = 16
  const perClient = 12
  const program = (k: number): Program => oneSave(Array.from({ length: 32 }, (_, i) => (i * 31 + k) % 4096))
  const rows: (string | number)[][] = []
  const rates: number[] = []
  for (const [label, extra] of [['co-tenant batching (default)', []], ['one job per forward (--max-batch-jobs 1)', ['--max-batch-jobs', '1']]] as const) {
    const p = await provider([...extra])
    try {
      const executors = await Promise.all(Array.from({ length: clients }, async () => await client(p)))
      const burst = async (n: number): Promise<void> => { await Promise.all(executors.map(async (e, k) => { for (let i = 0; i < n; i++) await e.run(program(k)) })) }
      await burst(3) // warm: compile the batch shapes that occur
      const t0 = performance.now()
      await burst(perClient)
      const seconds = (performance.now() - t0) / 1000
      const rate = clients * perClient / seconds
      rates.push(rate)
      rows.push([label, clients * perClient, seconds.toFixed(2), rate.toFixed(0)])
    } finally { await p.stop() }
  }
  rows.push(['speed-up', '', '', ratio(rates[0]!, rates[1]!)])
  return {
    title: `Throughput: ${clients} concurrent clients (different keys), one-save traces of 32 tokens`,
    columns: ['scheduling', 'jobs', 'seconds', 'jobs/s'],
    rows,
    note: 'Each client runs its jobs back to back; with co-tenant batching the jobs waiting while the engine is busy run as rows of one forward pass. Target ≥ 3×.',
  }
}

const suite: BenchSuite = {
  name: 'remote',
  run: async () => [await overhead(), await throughput()],
}
export default suite
