/**
 * One provider, three provider processes on 127.0.0.1 sharing one real PostgreSQL server (issue 14): one identity,
 * keys registered on one node admitted by all, budgets and nonces that hold across nodes under real concurrency,
 * events and results from any node, co-tenant batches of jobs that reached different nodes, and a load run of 32
 * clients during which one node is killed with SIGKILL: every accepted job ends completed or failed with a reason,
 * exactly once in the ledger, and the egress ledger equals the bytes of the results. (The 30 s version: npm run bench.)
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import pg from 'pg'
import { createRequestEnvelope, decodeCbor, generateKeyPair, fromHex, keyId, publicKeyOf, toHex, verifyReceipt, type Program } from '@weft/core'
import { DEMO } from './helpers.js'
import { startProviderProcess, type ProviderProcess } from './process.js'
import { startPostgres, type Postgres } from './postgres.js'
import { checkLoadLedger, killWhileRunning, runMultiNodeLoad, settleJobs, type LoadUser } from './multi-node-load.js'

/** the load run's length: short here (`npm run bench multi-node` runs 30 s) */
const LOAD_MS = 4_000
const BUDGET = 3_500 // --egress-per-key-per-day: three 1024-byte jobs fit, a fourth does not

const makeUser = (): LoadUser => { const k = generateKeyPair(); return { secretKey: k.secretKey, kid: keyId(publicKeyOf(k.secretKey)) } }
const loadUsers = Array.from({ length: 32 }, makeUser)
const budgetUser = makeUser()
const revokedUser = makeUser()

function residProgram (): Program {
  // one token's layer-0 residual: [1, 1, 256] float32 = 1024 bytes, exactly as estimated at admission
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [464] }], nodes: [['read', { site: 'transformer.h.0', port: 'output', invoke: 0 }, []], ['save', { name: 'r' }, [0]]] }
}

let server: Postgres
let url: string
let db: pg.Client
let nodes: ProviderProcess[] = []

const args = (): string[] => ['--model', DEMO, '--db', url, '--policy', 'closed', '--egress-per-key-per-day', String(BUDGET), '--lease-ms', '1500', '--batch-window-ms', '100',
  ...[...loadUsers, budgetUser, revokedUser].flatMap(u => ['--register', toHex(publicKeyOf(u.secretKey))])]

beforeAll(async () => {
  server = await startPostgres()
  url = await server.createDatabase('weft_multi')
  // all three at once: migrations are serialised, the first identity stored is everyone's
  nodes = await Promise.all([0, 1, 2].map(async () => await startProviderProcess(args())))
  db = new pg.Client(url)
  await db.connect()
}, 180_000)

afterAll(async () => {
  await db?.end()
  for (const node of nodes) await node.stop().catch(() => {})
  await server?.stop()
})

async function post (node: ProviderProcess, user: LoadUser, program: Program, nonce?: string): Promise<Response> {
  const envelope = createRequestEnvelope({ program, audience: node.providerId, secretKey: user.secretKey, kid: user.kid, ...(nonce === undefined ? {} : { nonce }) })
  return await fetch(`${node.url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
}

describe('three provider nodes on one PostgreSQL database', () => {
  test('one provider identity; every node serves the same models', async () => {
    expect(new Set(nodes.map(n => n.providerId)).size).toBe(1)
    for (const node of nodes) expect(((await (await fetch(`${node.url}/v1/models`)).json()) as { models: { name: string }[] }).models.map(m => m.name)).toContain('demo-gpt2')
  })

  test('concurrent admissions on the three nodes cannot together pass a per-key egress budget', async () => {
    const responses = await Promise.all(Array.from({ length: 12 }, async (_, i) => await post(nodes[i % 3]!, budgetUser, residProgram())))
    const accepted = responses.filter(r => r.status === 202)
    expect(accepted.length, await responses.find(r => r.status !== 202)?.clone().text()).toBe(3)
    for (const refused of responses.filter(r => r.status !== 202)) expect(((await refused.json()) as { code: string }).code).toBe('EGRESS_BUDGET_EXCEEDED')
    const publicKey = fromHex(((await (await fetch(`${nodes[1]!.url}/v1/version`)).json()) as { publicKey: string }).publicKey)
    const jobs = await Promise.all(accepted.map(async r => ((await r.json()) as { job: string }).job))
    // results fetched from a node other than the one that accepted them, once they end
    for (const job of jobs) {
      let body: Response
      for (;;) {
        body = await fetch(`${nodes[2]!.url}/v1/jobs/${job}/result`)
        if (body.status !== 409 && body.status !== 425 && body.status !== 202) break
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      expect(body.status).toBe(200)
      const result = decodeCbor(new Uint8Array(await body.arrayBuffer())) as { receipt: Uint8Array; egress: { bytes: number } }
      expect(result.egress.bytes).toBe(1024)
      expect(verifyReceipt(result.receipt, publicKey).provider).toBe(nodes[0]!.providerId)
    }
    const { rows } = await db.query('SELECT coalesce(sum(bytes), 0)::bigint AS n FROM egress WHERE kid = $1', [budgetUser.kid])
    expect(Number(rows[0].n)).toBe(3 * 1024)
  })

  test('a nonce is accepted by one node only, however many nodes receive the envelope at once', async () => {
    const nonce = `shared-${Date.now()}`
    const responses = await Promise.all(nodes.map(async node => await post(node, loadUsers[0]!, residProgramSmall(), nonce)))
    expect(responses.filter(r => r.status === 202).length).toBe(1)
    for (const r of responses.filter(r => r.status !== 202)) expect(((await r.json()) as { code: string }).code).toBe('NONCE_REPLAYED')
  })

  test('a key revoked in the shared store is refused by every node', async () => {
    const first = await post(nodes[1]!, revokedUser, residProgramSmall())
    expect(first.status, await first.clone().text()).toBe(202)
    await db.query("UPDATE keys SET revoked_at = $2, revoked_reason = 'lost laptop' WHERE kid = $1", [revokedUser.kid, Date.now()]) // what POST /v1/keys/:kid/revoke commits
    for (const node of nodes) {
      const response = await post(node, revokedUser, residProgramSmall())
      expect(response.status).toBe(401)
      expect(((await response.json()) as { code: string }).code).toBe('KEY_REVOKED')
    }
  })

  test('32 clients across the nodes, one node killed with SIGKILL: no accepted job lost or run twice; ledger = result bytes; batches span nodes', async () => {
    const victim = nodes[2]!
    let victimJobs: string[] = []
    let victimNode = ''
    const report = await runMultiNodeLoad({
      nodes, users: loadUsers, durationMs: LOAD_MS, program: residProgramSmall(),
      // under load, once the victim's engine runs one of the jobs: SIGKILL
      during: async () => {
        await new Promise(resolve => setTimeout(resolve, 1_000))
        for (let i = 0; i < 500 && !/this node: \S+\n/.test(victim.output()); i++) await new Promise(resolve => setTimeout(resolve, 10))
        victimNode = /this node: (\S+)\n/.exec(victim.output())![1]!
        victimJobs = await killWhileRunning(db, victim, victimNode)
      },
    })
    expect(report.accepted.length).toBeGreaterThanOrEqual(32)
    // every accepted job is in the store; jobs the killed node admitted or ran (even ones whose 202 never reached
    // their client) end too, on the surviving nodes; then every invariant (the bench checks the same ones)
    const kids = loadUsers.map(u => u.kid)
    await settleJobs(db, kids)
    const checks = await checkLoadLedger(db, report, { kids, killed: { url: victim.url, node: victimNode, running: victimJobs }, nodes: nodes.length })
    for (const c of checks) expect(c.ok, `${c.check}: ${c.detail}`).toBe(true)
    const failed = checks.find(c => c.check === 'failures are node-lost only')!
    expect(Number(/^(\d+) failed/.exec(failed.detail)![1])).toBeLessThanOrEqual(2)
  }, 120_000)
})

function residProgramSmall (): Program {
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [464, 3139, 286, 481] }], nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['mean', { axes: null, keepdims: false }, [0]], ['save', { name: 'm' }, [1]]] }
}
