/**
 * `weft provider start --model <folder> [--policy open|allow-list|closed] [--egress-per-day 50MB] [--port N] [--db file]`:
 * starts a provider on 127.0.0.1 with the onnx backend in worker threads and prints its URL, id and policy summary.
 */
import { parseArgs } from 'node:util'
import path from 'node:path'
import { existsSync } from 'node:fs'
import { UsageError, WeftError, fromHex, intFlag, isHubName, keyId, resolveHubModel } from '@weft/core'
import { createHost, type HostInit } from '../host.js'
import { workerBackend } from '../engine/worker-backend.js'
import { openPolicy } from '../policy/open-policy.js'
import { allowListPolicy } from '../policy/allow-list-policy.js'
import { closedModelPolicy } from '../policy/closed-model-policy.js'
import { parseBytes } from '../policy/components.js'
import { readKeyFile } from './key-file.js'
import { startDirectoryPublisher } from './directory-publisher.js'
import type { Store } from '../store/store.js'
import { randomBytes } from 'node:crypto'

const USAGE = `usage: weft provider start --model <model> [--model <model> …] [options]
  --model M                 a checkpoint folder, an .onnx file, or org/name[@revision] from the Hugging Face cache (repeatable)
  --policy P                open (default), allow-list or closed
  --allow KID               a key id the allow-list policy admits (repeatable)
  --egress-per-day SIZE     closed policy: bytes all keys may take out per day (e.g. 50MB)
  --egress-per-key-per-day SIZE  closed policy: bytes one key may take out per day (e.g. 5MB)
  --per-job-cap SIZE        closed policy: bytes one job may return (e.g. 1MB)
  --forbid op,op            closed policy: ops programs may not use
  --forbid-low-precision-casts R  closed policy: refuse casts below float32 of weight-derived values (weight-derived) or of any value (all)
  --forbid-embedding-reads  closed policy: refuse reads that return embedding rows exactly
  --adapter-downloads D     closed policy: kept adapters never leave (host-only, default) or leave within the budgets (counted)
  --max-train-steps N       optimizer steps one job may run
  --checkpoint-every-steps N  store a running training job's state at most every N steps (default 10; 0: never)
  --checkpoint-every-ms N   … and at most every N ms (default 30000): a job run again resumes from it
  --adapter-dir DIR         kept adapters' files (default <db>.adapters)
  --max-result-bytes SIZE   largest estimated result per job (default 64MiB)
  --max-result-bytes-in-flight SIZE  estimated results of one key's queued + running jobs (default 256MiB)
  --max-saves N             saves per job (default 256)
  --max-text-bytes SIZE     UTF-8 bytes of a job's text invokes, checked before tokenizing (default 256KiB)
  --max-envelope-lifetime S seconds of exp − iat a request envelope may span (default 3600)
  --operator-key FILE       the operator's key file (may submit provider-wide edits, revoke keys)
  --register HEX            register a researcher's public key (repeatable)
  --identity FILE           the provider's Ed25519 key file (default: one generated once and kept in the database)
  --port N                  HTTP port on 127.0.0.1 (default 0: any free port)
  --db FILE|URL             the SQLite database (default weft-provider.db), or postgres://user@host:port/db: PostgreSQL
                            shared by several provider nodes (one provider; see README, multi-node deployment)
  --lease-ms N              PostgreSQL: how long a node's claim on a running job holds without renewal (default 10000)
  --durability D            normal (default: commits survive a process crash) or full (also power loss)
  --workers N               engine workers (default 1)
  --isolation I             thread (default) or process
  --intra-op-threads N      onnxruntime threads per worker (default 1: leave cores to the HTTP thread)
  --batch-window-ms N       how long the scheduler waits to batch co-tenant jobs
  --max-batch-jobs N        jobs per batch at most
  --job-timeout-ms N        a job's time limit
  --batch-sizes S           any (default: every queued job) or pow2 (1, 2, 4, … jobs: fewer graphs to compile)
  --session-cache N         compiled graphs kept per model (default 64)
  --session-cache-bytes SIZE  memory the compiled graphs of one model may hold (default 2GiB; least recently used released beyond it)
  --directory MULTIADDR     announce the provider on the libp2p directory through this bootstrap peer (repeatable)
  --endorsement FILE        an endorsement from weft endorse to carry in the directory record (repeatable)
  --p2p-listen MULTIADDR    the directory node's listen address (default /ip4/127.0.0.1/tcp/0)
  --public-url URL          this node's base URL as clients reach it (default: the URL it listens on); with --directory
                            every node of a provider lists its URL in the shared store and the record lists them all
  --node-heartbeat-ms N     how often a node says it is alive (default 2000); unseen for 3 heartbeats it is no longer
                            listed, and another node takes over publishing the record
  -h, --help                this text`

const OPTIONS = {
  model: { type: 'string', multiple: true }, policy: { type: 'string', default: 'open' }, help: { type: 'boolean', short: 'h', default: false },
  'egress-per-day': { type: 'string' }, 'egress-per-key-per-day': { type: 'string' }, 'per-job-cap': { type: 'string' },
  forbid: { type: 'string' }, 'adapter-downloads': { type: 'string', default: 'host-only' }, 'max-train-steps': { type: 'string' }, 'checkpoint-every-steps': { type: 'string' }, 'checkpoint-every-ms': { type: 'string' }, 'adapter-dir': { type: 'string' },
  allow: { type: 'string', multiple: true }, 'operator-key': { type: 'string' },
  register: { type: 'string', multiple: true }, port: { type: 'string', default: '0' }, db: { type: 'string', default: 'weft-provider.db' },
  workers: { type: 'string', default: '1' }, 'batch-window-ms': { type: 'string' }, 'job-timeout-ms': { type: 'string' },
  'max-batch-jobs': { type: 'string' }, isolation: { type: 'string', default: 'thread' }, 'intra-op-threads': { type: 'string', default: '1' },
  durability: { type: 'string', default: 'normal' }, identity: { type: 'string' }, 'lease-ms': { type: 'string' },
  directory: { type: 'string', multiple: true }, endorsement: { type: 'string', multiple: true }, 'p2p-listen': { type: 'string', default: '/ip4/127.0.0.1/tcp/0' }, 'batch-sizes': { type: 'string', default: 'any' }, 'session-cache': { type: 'string', default: '64' },
  'max-result-bytes': { type: 'string' }, 'max-result-bytes-in-flight': { type: 'string' }, 'max-saves': { type: 'string' },
  'max-text-bytes': { type: 'string' }, 'max-envelope-lifetime': { type: 'string' },
  'session-cache-bytes': { type: 'string', default: '2GiB' },
  'forbid-low-precision-casts': { type: 'string' }, 'forbid-embedding-reads': { type: 'boolean' },
  'public-url': { type: 'string' }, 'node-heartbeat-ms': { type: 'string' },
} as const

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values']

function policiesOf (values: Values): NonNullable<HostInit['policies']> {
  if (values.policy === 'open') return [openPolicy()]
  if (values.policy === 'allow-list') return [allowListPolicy({ keys: values.allow ?? [] })]
  if (values.policy === 'closed') {
    return [closedModelPolicy({
      egressPerDay: values['egress-per-day'], egressPerKeyPerDay: values['egress-per-key-per-day'], perJobCap: values['per-job-cap'],
      ...(values.forbid === undefined ? {} : { forbiddenOps: values.forbid.split(',').map(s => s.trim()).filter(Boolean) }),
      ...(values['forbid-low-precision-casts'] === undefined ? {} : { forbidLowPrecisionCasts: lowPrecisionRule(values['forbid-low-precision-casts']) }),
      forbidEmbeddingReads: values['forbid-embedding-reads'] === true,
      adapterDownloads: values['adapter-downloads'] === 'counted' ? 'counted' : 'host-only',
    })]
  }
  throw new UsageError(`--policy is open, allow-list or closed, not '${values.policy}'`)
}

function lowPrecisionRule (value: string): 'weight-derived' | 'all' {
  if (value === 'weight-derived' || value === 'all') return value
  throw new UsageError(`--forbid-low-precision-casts is weight-derived or all, not '${value}'`)
}

export const providerCommand = {
  summary: 'run a provider: `provider start --model <model> [--policy …] [--port N] [--db file]`',
  usage: USAGE,
  async run (argv: string[]): Promise<number> {
    const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS })
    if (positionals.length === 0) throw new UsageError('missing the subcommand (start)')
    if (positionals[0] !== 'start') throw new UsageError(`unknown subcommand '${positionals[0]}' (start)`)
    if (positionals.length > 1) throw new UsageError(`unexpected arguments: ${positionals.slice(1).join(' ')}`)
    if (values.model === undefined) throw new UsageError('missing --model')
    for (const name of ['port', 'workers', 'intra-op-threads', 'session-cache', 'batch-window-ms', 'job-timeout-ms', 'max-batch-jobs', 'max-saves', 'max-envelope-lifetime', 'max-train-steps', 'lease-ms', 'node-heartbeat-ms'] as const) {
      if (values[name] !== undefined) intFlag(name, values[name])
    }
    if (values['node-heartbeat-ms'] !== undefined && Number(values['node-heartbeat-ms']) < 50) throw new UsageError('--node-heartbeat-ms must be at least 50')
    if (values['public-url'] !== undefined) publicUrlOf(values['public-url'])
    if (values.isolation !== 'thread' && values.isolation !== 'process') throw new UsageError(`--isolation is thread or process, not '${values.isolation}'`)
    policiesOf(values)
    if (values['adapter-downloads'] !== 'host-only' && values['adapter-downloads'] !== 'counted') throw new UsageError(`--adapter-downloads is host-only or counted, not '${values['adapter-downloads']}'`)
    const operator = values['operator-key'] === undefined ? null : readKeyFile(values['operator-key'])
    const limits: HostInit['limits'] = {
      ...(values['batch-window-ms'] === undefined ? {} : { batchWindowMs: Number(values['batch-window-ms']) }),
      ...(values['job-timeout-ms'] === undefined ? {} : { jobTimeoutMs: Number(values['job-timeout-ms']) }),
      ...(values['max-batch-jobs'] === undefined ? {} : { maxBatchJobs: Number(values['max-batch-jobs']) }),
      ...(values['max-result-bytes'] === undefined ? {} : { maxResultBytesPerJob: parseBytes(values['max-result-bytes']) }),
      ...(values['max-result-bytes-in-flight'] === undefined ? {} : { maxResultBytesInFlightPerKey: parseBytes(values['max-result-bytes-in-flight']) }),
      ...(values['max-saves'] === undefined ? {} : { maxSaves: Number(values['max-saves']) }),
      ...(values['max-text-bytes'] === undefined ? {} : { maxTextBytes: parseBytes(values['max-text-bytes']) }),
      ...(values['max-envelope-lifetime'] === undefined ? {} : { maxEnvelopeLifetimeSeconds: Number(values['max-envelope-lifetime']) }),
      ...(values['max-train-steps'] === undefined ? {} : { maxTrainSteps: Number(values['max-train-steps']) }),
      ...(values['checkpoint-every-steps'] === undefined ? {} : { checkpointEverySteps: Number(values['checkpoint-every-steps']) }),
      ...(values['checkpoint-every-ms'] === undefined ? {} : { checkpointEveryMs: Number(values['checkpoint-every-ms']) }),
    }
    const workers = Number(values.workers)
    const isolation = values.isolation === 'process' ? 'process' : 'thread'
    if (values.durability !== 'normal' && values.durability !== 'full') throw new UsageError(`--durability is normal or full, not '${values.durability}'`)
    if (values['batch-sizes'] !== 'pow2' && values['batch-sizes'] !== 'any') throw new UsageError(`--batch-sizes is pow2 or any, not '${values['batch-sizes']}'`)
    let sessionCacheBytes: number
    try {
      sessionCacheBytes = parseBytes(values['session-cache-bytes'])
      if (!(sessionCacheBytes > 0)) throw new Error('it must be positive')
    } catch (error) { throw new UsageError(`--session-cache-bytes: ${(error as Error).message}`) }
    const identity = values.identity === undefined ? undefined : { secretKey: readKeyFile(values.identity).secretKey }
    const host = await createHost({
      dbPath: values.db,
      ...(values['lease-ms'] === undefined ? {} : { leaseMs: Number(values['lease-ms']) }),
      ...(values['adapter-dir'] === undefined ? {} : { adapterDir: values['adapter-dir'] }),
      ...(identity === undefined ? {} : { identity }),
      durability: values.durability,
      backends: { onnx: workerBackend({ module: onnxModule(), factory: 'onnxBackend', init: { intraOpThreads: Number(values['intra-op-threads']), sessionCacheSize: Number(values['session-cache']), sessionCacheBytes }, workers, isolation }) },
      models: values.model.map(modelSource),
      policies: policiesOf(values),
      limits,
      operatorKeys: operator === null ? [] : [operator.publicKey],
      selfRegistration: values.policy === 'open',
      batchesPerModel: workers,
      batchSizes: values['batch-sizes'] === 'pow2' ? 'powers-of-two' : 'any',
    })
    for (const hex of values.register ?? []) {
      const publicKey = fromHex(hex)
      try {
        host.context.store.addKey({ kid: keyId(publicKey), publicKey, role: 'researcher', now: Date.now() })
      } catch (error) {
        if (!WeftError.is(error, 'KEY_REVOKED')) throw error
        console.warn(`--register: ${error.message}`)
      }
    }
    const { url } = await host.listen({ port: Number(values.port) })
    console.log(`weft provider listening on ${url}`)
    console.log(`provider id: ${host.providerId}`)
    if (host.context.store.node !== null) console.log(`store: PostgreSQL shared by the provider's nodes; this node: ${host.context.store.node}`)
    console.log(`models: ${host.context.registry.list().map(m => `${m.name} (${m.manifest.revision.slice(0, 19)}…)`).join(', ')}`)
    console.log(`policy: ${JSON.stringify(host.context.policySummaries())}`)
    const announced = values.directory === undefined
      ? null
      : await announce({
        seed: identity?.secretKey ?? storedIdentity(host), store: host.context.store, localUrl: url,
        publicUrl: values['public-url'] === undefined ? url : publicUrlOf(values['public-url']),
        bootstrap: values.directory, listen: values['p2p-listen'], endorsementFiles: values.endorsement ?? [],
        heartbeatMs: values['node-heartbeat-ms'] === undefined ? undefined : Number(values['node-heartbeat-ms']),
      })
    await new Promise<void>(resolve => {
      // withdraw the directory record first, so clients stop choosing this provider before it goes away
      const stop = (): void => { void (announced?.stop() ?? Promise.resolve()).finally(() => host.close()).then(resolve) }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    return 0
  },
}

/** `--model`: a checkpoint folder or .onnx file (named after it), or `org/name[@revision]` from the Hugging Face cache. */
function modelSource (source: string): { name: string; path: string } {
  if (!existsSync(source) && isHubName(source)) {
    const hub = resolveHubModel(source)
    return { name: hub.repo, path: hub.path }
  }
  return { name: path.basename(path.resolve(source)).replace(/\.onnx$/, ''), path: path.resolve(source) }
}

/** The identity createHost generated and kept in the database (the libp2p peer id derives from the same seed). */
function storedIdentity (host: { context: { store: { getSetting: (key: string) => Uint8Array | null | undefined } } }): Uint8Array {
  const secretKey = host.context.store.getSetting('identity.secretKey')
  if (secretKey == null) throw new Error('the provider has no stored identity; pass --identity <key file>')
  return secretKey
}

/**
 * Lists this node in the provider's directory record (libp2p is loaded only when asked for): this node's public URL
 * goes into the store, and whichever node holds the publisher lease publishes the record listing every live node.
 */
async function announce (options: { seed: Uint8Array; store: Store; localUrl: string; publicUrl: string; bootstrap: string[]; listen: string; endorsementFiles: string[]; heartbeatMs?: number }): Promise<{ stop: () => Promise<void> }> {
  const { readEndorsementFile } = await import('@weft/federation/cli')
  return await startDirectoryPublisher({
    store: options.store, seed: options.seed, node: options.store.node ?? `node_${randomBytes(8).toString('hex')}`,
    publicUrl: options.publicUrl, localUrl: options.localUrl, bootstrap: options.bootstrap, listen: [options.listen],
    endorsements: options.endorsementFiles.map(readEndorsementFile), heartbeatMs: options.heartbeatMs,
  })
}

/** `--public-url`: an http(s) base URL without credentials, query or fragment (what a record's endpoint must be) */
function publicUrlOf (value: string): string {
  let url: URL
  try { url = new URL(value) } catch { throw new UsageError(`--public-url '${value}' is not a URL`) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--public-url must be http(s), not ${url.protocol}`)
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') throw new UsageError('--public-url must be a base URL without credentials, query or fragment')
  return value
}

/** the module the engine workers load the ONNX backend from */
function onnxModule (): string {
  return '@weft/onnx'
}
