/**
 * One provider served by three nodes, found through the libp2p directory (issue 14): three `weft provider start`
 * processes on one real PostgreSQL server, each started with `--directory`; one of them holds the publisher lease and
 * publishes the provider's one record, which lists all three endpoints. A researcher's SDK discovers the provider on
 * the directory and traces demo-gpt2 (numbers checked against the transformers reference). A connection cut after a
 * node accepted a job: the SDK finds that job on another node by the envelope's digest, and it runs once. Then a node is killed with
 * SIGKILL right after it accepted a job: the SDK follows the job on another node and gets its result; later traces
 * go to the remaining nodes. Then the publishing node itself is killed while a fourth node joins: another node takes
 * the publisher lease over, the newer record lists the live nodes and the client's runs reach the new node. Last, the
 * nodes stop cleanly: the record goes on without the leaving publisher, and the last node withdraws it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { generateKeyPair, toHex, type Program } from '@weft/core'
import { createDirectoryNode, type DirectoryNode, type VerifiedRecord } from '@weft/federation'
import pg from 'pg'
import { Weft, type RoutingExecutor, type RouteEvent } from '../src/index.js'
import { connectRemote, type RemoteExecutor } from '../src/remote/index.js'
import { breakingProxy } from './fixtures/breaking-proxy.js'
import { DEMO } from '../../providers/host/test/helpers.js'
import { killHard, startProviderProcess, type ProviderProcess } from '../../providers/host/test/process.js'
import { startPostgres, type Postgres } from '../../providers/host/test/postgres.js'
import { maxAbsDiff, reference, referencePrompts } from './fixtures/reference.js'

const PROMPT = referencePrompts('demo-gpt2').prompts[0]! // 'The capital of France is'
const EXPECTED = reference('demo-gpt2', 'p0.module.transformer.h.1') // the transformers reference, [5, 256]

let server: Postgres
let hub: DirectoryNode
/** the researcher's directory node (what Weft.discover would start), bootstrapped from the hub */
let client: DirectoryNode
let nodes: ProviderProcess[] = []
let args: string[] = []
let dbUrl = ''

/** one token-id trace of the reference prompt saving transformer.h.1's output (what `trace` records) */
const program = (): Program => ({
  version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: referencePrompts('demo-gpt2').token_ids[0]! }],
  nodes: [['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]],
})
const alive = (node: ProviderProcess): boolean => node.child.exitCode === null && node.child.signalCode === null
/** the node's last word on publishing says it publishes */
const publishes = (node: ProviderProcess): boolean => {
  const said = node.output().split('\n').filter(line => /^directory: (publishing|this node no longer holds)/.test(line)).at(-1)
  return said?.startsWith('directory: publishing') === true
}
/**
 * The node publishing the record the hub holds now (the record lists its publisher first), once that is settled: the
 * record can reach the hub before its publisher's log line reaches us, and on a loaded machine the publisher lease
 * may legitimately move (a node whose heartbeat stalls past the lease loses it), so wait until the hub's record names
 * a live node that says it publishes.
 */
const publisherNow = async (timeoutMs = 15_000): Promise<ProviderProcess> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const endpoint = (await hub.find('demo-gpt2'))[0]?.record.endpoint
    const node = nodes.find(n => n.url === endpoint)
    if (node !== undefined && alive(node) && publishes(node)) return node
    if (Date.now() > deadline) throw new Error(`no settled publisher within ${timeoutMs} ms; ${situation()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** the provider's record on the hub (or `on` another directory node) once `accept` holds (the directory is eventually consistent) */
async function recordWhere (accept: (entry: VerifiedRecord) => boolean, timeoutMs = 15_000, on: DirectoryNode = hub): Promise<VerifiedRecord> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = (await on.find('demo-gpt2')).find(accept)
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`no such record within ${timeoutMs} ms; ${situation()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** what the hub holds and what each node said about the directory (failure messages) */
const situation = (): string => {
  const held = JSON.stringify(hub.records().map(r => ({ endpoint: r.record.endpoint, endpoints: r.record.endpoints, seq: r.record.seq })))
  const logs = nodes.map(n => `${n.url}${alive(n) ? '' : ' (dead)'}:\n${n.output().split('\n').filter(line => /^directory|^\[weft/.test(line)).join('\n')}`).join('\n')
  return `hub holds ${held}\n${logs}`
}

/** waits for a node's log to catch up (its record may reach the hub before its log line reaches us) */
async function until (condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
}

beforeAll(async () => {
  server = await startPostgres()
  const url = await server.createDatabase('weft_directory')
  dbUrl = url
  hub = await createDirectoryNode({})
  client = await createDirectoryNode({ bootstrap: hub.multiaddrs })
  args = ['--model', DEMO, '--db', url, '--policy', 'open', '--lease-ms', '1500', '--node-heartbeat-ms', '1000', '--directory', hub.multiaddrs[0]!]
  nodes = await Promise.all([0, 1, 2].map(async () => await startProviderProcess(args)))
}, 120_000)

afterAll(async () => {
  for (const node of nodes) await node.stop().catch(() => {})
  await client?.stop()
  await hub?.stop()
  await server?.stop()
})

describe('a provider of three nodes behind one directory record', () => {
  let weft: Weft
  let routing: RoutingExecutor
  const events: RouteEvent[] = []
  afterAll(async () => { await weft?.close() })

  const trace = async (onProgress?: (event: { stage: string; detail?: Record<string, unknown> }) => void): Promise<number[]> => {
    const model = await weft.model<any>('demo-gpt2')
    const out = await model.trace(PROMPT, (m: any) => ({ h: m.transformer.h[1].output.save() }), onProgress === undefined ? {} : { onProgress })
    expect(out.h.shape).toEqual([1, ...EXPECTED.shape])
    return Array.from(out.h.data as Float32Array)
  }

  test('one node publishes one record listing the three endpoints; the SDK finds it and traces the reference numbers', async () => {
    const record = await recordWhere(entry => entry.record.endpoints?.length === 3)
    expect(new Set(nodes.map(n => n.providerId)).size).toBe(1)
    expect(record.record.provider).toBe(nodes[0]!.providerId)
    expect([...record.record.endpoints!].sort()).toEqual(nodes.map(n => n.url).sort())
    await until(() => nodes.some(publishes))
    const publishing = nodes.filter(publishes)
    expect(publishing, situation()).toHaveLength(1)
    expect(record.record.endpoint).toBe(publishing[0]!.url) // the publisher lists itself first
    expect(record.record.endpoints![0]).toBe(record.record.endpoint)

    weft = await Weft.discover({ directory: client, key: toHex(generateKeyPair().secretKey), findTimeoutMs: 10_000, onRoute: event => events.push(event) })
    routing = weft.executor as RoutingExecutor
    expect(maxAbsDiff(await trace(), EXPECTED.data)).toBeLessThan(1e-4)
    // submissions rotate over the nodes: three runs are accepted by three different nodes
    const runs = await Promise.all([0, 1, 2].map(async () => await routing.run(program())))
    expect(new Set(runs.map(r => r.endpoint))).toEqual(new Set(nodes.map(n => n.url)))
    for (const run of runs) expect(maxAbsDiff(Array.from(run.saves.h!.data as Float32Array), EXPECTED.data)).toBeLessThan(1e-4)
  })

  test('the connection to the node that accepted a job breaks before its answer: the SDK finds the job on another node by the envelope\'s digest; it runs once', async () => {
    const [first, second] = nodes
    const proxy = await breakingProxy(first!.url)
    const db = new pg.Client(dbUrl)
    await db.connect()
    try {
      const researcher = generateKeyPair()
      const executor = await connectRemote({ provider: proxy.url, endpoints: [second!.url], key: toHex(researcher.secretKey), providerId: first!.providerId }) as RemoteExecutor
      await executor.register() // through the proxy to the first node; the store is shared
      const run = await executor.run(program())
      expect(proxy.cut()).toBe(1) // the first node accepted the envelope; its answer was cut
      expect(run.endpoint).toBe(second!.url) // followed on the other node
      expect(maxAbsDiff(Array.from(run.saves.h!.data as Float32Array), EXPECTED.data)).toBeLessThan(1e-4)
      const digest = run.receipt!.fields.requestDigest
      const { rows } = await db.query('SELECT count(*)::int AS n FROM jobs WHERE request_digest = $1', [digest])
      expect(rows[0].n).toBe(1)
      const charged = await db.query('SELECT count(*)::int AS n, coalesce(sum(bytes), 0)::int AS bytes FROM egress WHERE kid = $1', [executor.kid])
      expect(charged.rows[0]).toEqual({ n: 1, bytes: run.egress!.bytes })
      await executor.close()
    } finally {
      proxy.close()
      await db.end()
    }
  })

  test('a node killed (SIGKILL) right after accepting a job: the job is followed on another node; later traces use the others', async () => {
    const publisher = await publisherNow()
    const victims = nodes.filter(n => n !== publisher)
    let killed: ProviderProcess | undefined
    // rotation sends each trace to the next node: within three traces one is accepted by a non-publishing node
    for (let i = 0; i < 3 && killed === undefined; i++) {
      const h = await trace(event => {
        const endpoint = event.stage === 'received' ? event.detail?.endpoint : undefined
        const victim = victims.find(v => v.url === endpoint)
        if (victim !== undefined && killed === undefined) { killed = victim; victim.child.kill('SIGKILL') }
      })
      expect(maxAbsDiff(h, EXPECTED.data)).toBeLessThan(1e-4)
    }
    expect(killed).toBeDefined()
    await new Promise<void>(resolve => { if (!alive(killed!)) resolve(); else killed!.child.once('exit', () => resolve()) })
    for (let i = 0; i < 4; i++) expect(maxAbsDiff(await trace(), EXPECTED.data)).toBeLessThan(1e-4)
    // the provider was never dropped: one selection, no failover between providers
    expect(events.map(e => e.type)).toEqual(['select'])
    // the publisher notices the dead node (three missed heartbeats) and re-publishes two endpoints
    const record = await recordWhere(entry => entry.record.endpoints?.length === 2)
    expect([...record.record.endpoints!].sort()).toEqual(nodes.filter(alive).map(n => n.url).sort())
  })

  test('the publishing node killed (SIGKILL) as a fourth node joins: the lease is taken over, the new record lists the live nodes, the client uses them', async () => {
    const publisher = await publisherNow()
    const survivor = nodes.find(n => alive(n) && n !== publisher)!
    const before = (await hub.find('demo-gpt2'))[0]!.record.seq
    const joining = startProviderProcess(args)
    await killHard(publisher)
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(await trace(), EXPECTED.data)).toBeLessThan(1e-4)
    const joined = await joining
    nodes.push(joined)
    const record = await recordWhere(entry => entry.record.seq > before && [...entry.record.endpoints ?? []].sort().join() === [survivor.url, joined.url].sort().join())
    await recordWhere(entry => entry.record.seq >= record.record.seq, 10_000, client) // gossip reached the researcher
    const publishing = nodes.find(n => n.url === record.record.endpoint)!
    await until(() => publishes(publishing))
    expect(publishes(publishing), situation()).toBe(true)
    // the routed client follows the newer record: its next runs are spread over the two live nodes, the new one included
    const runs = await Promise.all([0, 1].map(async () => await routing.run(program())))
    expect(new Set(runs.map(r => r.endpoint))).toEqual(new Set([survivor.url, joined.url]))
    for (const run of runs) expect(maxAbsDiff(Array.from(run.saves.h!.data as Float32Array), EXPECTED.data)).toBeLessThan(1e-4)
    expect(events.map(e => e.type)).toEqual(['select'])
  })

  test('nodes leaving cleanly (SIGTERM): the publisher re-publishes without itself; the last node withdraws the record', async () => {
    const publisher = await publisherNow()
    const other = nodes.find(n => alive(n) && n !== publisher)!
    const seq = (await hub.find('demo-gpt2'))[0]!.record.seq
    await publisher.stop()
    const record = await recordWhere(entry => entry.record.seq > seq && entry.record.endpoint === other.url)
    expect(record.record.endpoints).toBeUndefined() // one node: endpoint alone
    expect(maxAbsDiff(await trace(), EXPECTED.data)).toBeLessThan(1e-4)
    const withdrawn = new Promise<void>(resolve => { const off = hub.onChange(change => { if (change.type === 'withdrawn') { off(); resolve() } }) })
    await other.stop()
    await withdrawn
    expect(await hub.find('demo-gpt2')).toEqual([])
  })
})
