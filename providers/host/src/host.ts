/**
 * createHost: composes a provider from data — a SQLite file, backends (BackendV1), models, policies (PolicyV1 or
 * factories), limits — loads the models, recovers jobs a crash left behind and returns the hono app plus `listen`.
 */
import { serve, type ServerType } from '@hono/node-server'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import type { Hono } from 'hono'
import path from 'node:path'
import { generateKeyPair, keyId, publicKeyOf, type BackendV1, type PolicySummary, type PolicyV1 } from '@weft/core'
import { utcDay, type Store } from './store/store.js'
import { openStore, isPostgresUrl } from './store/open-store.js'
import { RemoteJobs } from './jobs/remote-jobs.js'
import type { Durability } from './store/open-database.js'
import { ModelRegistry, type ModelConfig } from './models/model-registry.js'
import { JobEvents } from './jobs/job-events.js'
import { Scheduler } from './jobs/scheduler.js'
import { DEFAULT_LIMITS, checkLimits, type HostLimits } from './jobs/limits.js'
import { admitJob, serialLock, type SerialLock } from './jobs/admission.js'
import { EngineSpeed } from './jobs/engine-speed.js'
import { Adapters } from './adapters/adapters.js'
import { runDownloadPolicies } from './policy/run-policies.js'
import { createApp } from './http/app.js'
import { TokenizerThread } from './engine/tokenizer-thread.js'
import type { HostContext } from './http/host-context.js'
import type { EgressLedger, PolicyComponents, PolicyFactory } from './policy/components.js'

export interface HostInit {
  /**
   * SQLite file ('<file>.db'; ':memory:' only for throwaway tests, nothing survives), or a `postgres://` URL: a
   * PostgreSQL database that any number of provider nodes share (docs/decisions/2026-12-05-multi-node.md)
   */
  dbPath: string
  /** PostgreSQL only: how long a node's claim on a running job holds without renewal (default 10 s) */
  leaseMs?: number
  /** 'normal' (default): commits survive a process crash; 'full': also power loss, one fsync per commit (store ADR) */
  durability?: Durability
  /**
   * where kept adapters' values live (one file each); default `<dbPath>.adapters` beside the database, or a
   * temporary directory (deleted on close) for ':memory:'
   */
  adapterDir?: string
  backends: Record<string, BackendV1>
  models: ModelConfig[]
  policies?: (PolicyV1 | PolicyFactory)[]
  limits?: Partial<HostLimits>
  /** the provider's signing key; default: generated once and kept in the database */
  identity?: { secretKey: Uint8Array }
  /** public keys that may call operator routes (besides registered keys with role 'operator') */
  operatorKeys?: Uint8Array[]
  /** let researcher keys register themselves with proof of possession (default false) */
  selfRegistration?: boolean
  /** batches running at once per model (match the backend's engine workers; default 1) */
  batchesPerModel?: number
  /** batch sizes the scheduler forms (default 'any'; see SchedulerDeps) */
  batchSizes?: 'powers-of-two' | 'any'
  now?: () => number
}

export interface Host {
  readonly app: Hono
  readonly providerId: string
  readonly publicKey: Uint8Array
  readonly context: HostContext
  /** serves the app on 127.0.0.1 (port 0 = any free port) */
  listen (options?: { port?: number; hostname?: string }): Promise<{ url: string; port: number }>
  close (): Promise<void>
}

function identityOf (store: Store, init: HostInit): Uint8Array {
  if (init.identity !== undefined) return init.identity.secretKey
  const stored = store.getSetting('identity.secretKey')
  if (stored !== undefined) return new Uint8Array(stored)
  // nodes starting together on one shared store: the first key stored is everyone's
  return new Uint8Array(store.initSetting('identity.secretKey', generateKeyPair().secretKey))
}

export async function createHost (init: HostInit): Promise<Host> {
  const now = init.now ?? Date.now
  const limits: HostLimits = { ...DEFAULT_LIMITS, ...init.limits }
  checkLimits(limits)
  const store = openStore(init.dbPath, { durability: init.durability, leaseMs: init.leaseMs })
  const secretKey = identityOf(store, init)
  const publicKey = publicKeyOf(secretKey)
  const providerId = keyId(publicKey)
  const memory = init.dbPath === ':memory:' || init.dbPath === ''
  const adapterDir = init.adapterDir ?? (memory ? mkdtempSync(path.join(tmpdir(), 'weft-adapters-')) : isPostgresUrl(init.dbPath) ? path.resolve('weft-adapters') : `${init.dbPath}.adapters`)
  const adapters = new Adapters(store, adapterDir)
  // a crash between an adapter file's write and its row's commit left a file nothing names (with a shared store,
  // another node may be between those two steps right now: no sweep)
  const swept = store.shared ? [] : adapters.sweep()
  if (swept.length > 0) console.error(`[weft host] removed ${swept.length} adapter file(s) no row names (a crash before their commit)`)
  const registry = new ModelRegistry(init.backends, store)
  try {
    for (const model of init.models) await registry.load(model)
  } catch (error) {
    await registry.close(); await store.close(); throw error
  }
  const ledger: EgressLedger = {
    committedToday: (at, kid) => store.committedEgress(at, kid),
    jobsToday: (at, kid) => store.jobsSince(kid, Date.parse(utcDay(at))),
  }
  const components: PolicyComponents = {
    ledger,
    models: () => registry.list().map(m => m.manifest),
  }
  const policies = (init.policies ?? []).map(p => typeof p === 'function' ? p(components) : p)
  const events = new JobEvents()
  // the summaries result responses read their budgets from, until the served models change (a load or a swap: the
  // closed-model policy's horizon depends on them); the policies are fixed for the host's life
  let summaryCache: { manifests: readonly unknown[]; summaries: PolicySummary[] } | null = null
  const freshSummaries = (): PolicySummary[] => {
    const manifests = registry.list().map(m => m.manifest)
    const summaries = policies.map(p => p.summary())
    summaryCache = { manifests, summaries }
    return summaries
  }
  const cachedSummaries = (): PolicySummary[] => {
    const manifests = registry.list().map(m => m.manifest)
    if (summaryCache !== null && summaryCache.manifests.length === manifests.length && manifests.every((m, i) => m === summaryCache!.manifests[i])) return summaryCache.summaries
    return freshSummaries()
  }
  const tokenizer = new TokenizerThread()
  const pendingNonces = new Set<string>()
  // one admission at a time on this node, and (shared store) one at a time across every node of the provider
  const local = serialLock()
  const serially: SerialLock = async section => await local(async () => await store.exclusive(section))
  const speed = new EngineSpeed(limits.engineCostPerMs)
  const scheduler = new Scheduler({
    store, registry, events, limits, now, signer: { providerId, secretKey }, batchesPerModel: init.batchesPerModel ?? 1, batchSizes: init.batchSizes,
    adapters, speed,
    onEgress: (row, bytes) => {
      for (const policy of policies) void policy.record?.({ keyId: row.kid, program: { version: 1, model: { name: row.model, revision: row.revision }, mode: 'trace', invokes: [], nodes: [] }, manifest: registry.get(row.model).manifest, estimatedEgressBytes: row.estimatedEgress, now: now() }, bytes)
    },
  })
  const context: HostContext = {
    store, registry, scheduler, events, limits, policies, providerId, publicKey, startedAt: now(), now,
    operatorKeys: new Map((init.operatorKeys ?? []).map(key => [keyId(key), key])),
    selfRegistration: init.selfRegistration ?? false,
    admit: async bytes => await admitJob({
      store, registry, policies, limits, providerId, now, pendingNonces, serially, adapters, speed, tokenizer,
      startNow: (row, program) => scheduler.startNow(row, program), abandon: id => scheduler.abandon(id),
    }, bytes),
    adapters,
    // policy check and ledger charge one at a time with admissions: budgets see every reservation and download
    downloadAdapter: async (kid, name) => await serially(async () => {
      const row = adapters.get(kid, name)
      const at = now()
      await runDownloadPolicies(policies, { keyId: kid, model: row.model, adapter: name, bytes: row.bytes, now: at }, limits.policyTimeoutMs)
      const bytes = adapters.valuesBytes(row)
      store.chargeEgress({ kid, ref: `adapter:${row.id}`, model: row.model, bytes: row.bytes, action: 'adapter-download', detail: { adapter: name, id: row.id, digest: row.digest } }, at)
      return { bytes, egressBytes: row.bytes, digest: row.digest }
    }),
    remainingEgress: kid => remainingEgress(context, ledger, kid, cachedSummaries()),
    policySummaries: freshSummaries,
  }
  const app = createApp(context)
  scheduler.start()
  const sweep = setInterval(() => store.sweep(now()), 60_000)
  sweep.unref()
  // several nodes on one store: mirror their queue, renew this node's claims, take over expired ones, relay events
  const remote = store.shared ? new RemoteJobs({ store, scheduler, events, limits, now }) : null
  let server: ServerType | null = null

  return {
    app, providerId, publicKey, context,
    async listen (options = {}) {
      const hostname = options.hostname ?? '127.0.0.1'
      const info = await new Promise<{ port: number }>(resolve => {
        server = serve({ fetch: app.fetch, port: options.port ?? 0, hostname }, address => resolve(address))
      })
      return { url: `http://${hostname}:${info.port}`, port: info.port }
    },
    async close () {
      clearInterval(sweep)
      remote?.stop()
      scheduler.close()
      if (server !== null) await new Promise<void>(resolve => { server!.close(() => resolve()); (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.() })
      await tokenizer.close()
      await registry.close()
      await store.close()
      if (memory && init.adapterDir === undefined) rmSync(adapterDir, { recursive: true, force: true })
    },
  }
}

/** The tightest per-key and aggregate daily budgets any policy publishes, minus what is committed today. */
function remainingEgress (host: HostContext, ledger: EgressLedger, kid: string, summaries: readonly PolicySummary[]): number | null {
  const now = host.now()
  let remaining: number | null = null
  for (const summary of summaries) {
    const perKey = summary.egressPerKeyPerDay
    const perDay = summary.egressPerDay
    if (typeof perKey === 'number') remaining = Math.min(remaining ?? Infinity, perKey - ledger.committedToday(now, kid))
    if (typeof perDay === 'number') remaining = Math.min(remaining ?? Infinity, perDay - ledger.committedToday(now))
  }
  return remaining === null ? null : Math.max(0, remaining)
}
