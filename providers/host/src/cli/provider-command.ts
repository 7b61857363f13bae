/**
 * `weft provider start --model <folder> [--policy open|allow-list|closed] [--egress-per-day 50MB] [--port N] [--db file]`:
 * starts a provider on 127.0.0.1 with the onnx backend in worker threads and prints its URL, id and policy summary.
 */
import { parseArgs } from 'node:util'
import path from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { WeftError, fromHex, keyId } from '@weft/core'
import { createHost, type HostInit } from '../host.js'
import { workerBackend } from '../engine/worker-backend.js'
import { openPolicy } from '../policy/open-policy.js'
import { allowListPolicy } from '../policy/allow-list-policy.js'
import { closedModelPolicy } from '../policy/closed-model-policy.js'
import { parseBytes } from '../policy/components.js'
import { readKeyFile } from './key-file.js'

const USAGE = `usage: weft provider start --model <folder> [--model <folder> …] [--policy open|allow-list|closed]
  [--egress-per-day 50MB] [--egress-per-key-per-day 5MB] [--per-job-cap 1MB] [--forbid op,op]
  [--adapter-downloads host-only|counted (closed policy: kept adapters never leave (default) / leave within the budgets)]
  [--max-train-steps N] [--adapter-dir <dir> (kept adapters' files; default <db>.adapters)]
  [--allow <kid> …] [--operator-key <key file>] [--register <public key hex> …]
  [--max-result-bytes 64MiB (largest estimated result per job)] [--max-result-bytes-in-flight 256MiB (per key, queued + running)]
  [--max-saves 256 (saves per job)] [--max-text-bytes 256KiB (text invokes per job, checked before tokenizing)]
  [--max-envelope-lifetime 3600 (seconds of exp − iat accepted)]
  [--port N] [--db file] [--workers N] [--isolation thread|process] [--intra-op-threads N (default 1: leave cores to the HTTP thread)] [--batch-window-ms N] [--max-batch-jobs N] [--job-timeout-ms N]
  [--batch-sizes any|pow2 (default any: every queued job; pow2: 1, 2, 4, … jobs, fewer graphs to compile)]
  [--session-cache N (compiled graphs kept per model, default 64: every batch size up to 32 stays compiled)]
  [--session-cache-bytes 2GiB (memory the compiled graphs of one model may hold; least recently used are released beyond it)]
  [--forbid-low-precision-casts weight-derived|all] [--forbid-embedding-reads] (closed policy: see docs/adding-a-policy.md)
  [--durability normal|full (default normal: commits survive a process crash; full: also power loss, one fsync per commit)]
  [--identity <key file> (the provider's Ed25519 key; default: one generated once and kept in the database)]
  [--directory <multiaddr> … (announce the provider on the libp2p directory through these bootstrap peers)]
  [--endorsement <file> … (endorsements from \`weft endorse\` to carry in the directory record)]
  [--p2p-listen <multiaddr> (default /ip4/127.0.0.1/tcp/0)]`

const OPTIONS = {
  model: { type: 'string', multiple: true }, policy: { type: 'string', default: 'open' }, help: { type: 'boolean', short: 'h', default: false },
  'egress-per-day': { type: 'string' }, 'egress-per-key-per-day': { type: 'string' }, 'per-job-cap': { type: 'string' },
  forbid: { type: 'string' }, 'adapter-downloads': { type: 'string', default: 'host-only' }, 'max-train-steps': { type: 'string' }, 'adapter-dir': { type: 'string' },
  allow: { type: 'string', multiple: true }, 'operator-key': { type: 'string' },
  register: { type: 'string', multiple: true }, port: { type: 'string', default: '0' }, db: { type: 'string', default: 'weft-provider.db' },
  workers: { type: 'string', default: '1' }, 'batch-window-ms': { type: 'string' }, 'job-timeout-ms': { type: 'string' },
  'max-batch-jobs': { type: 'string' }, isolation: { type: 'string', default: 'thread' }, 'intra-op-threads': { type: 'string', default: '1' },
  durability: { type: 'string', default: 'normal' }, identity: { type: 'string' },
  directory: { type: 'string', multiple: true }, endorsement: { type: 'string', multiple: true }, 'p2p-listen': { type: 'string', default: '/ip4/127.0.0.1/tcp/0' }, 'batch-sizes': { type: 'string', default: 'any' }, 'session-cache': { type: 'string', default: '64' },
  'max-result-bytes': { type: 'string' }, 'max-result-bytes-in-flight': { type: 'string' }, 'max-saves': { type: 'string' },
  'max-text-bytes': { type: 'string' }, 'max-envelope-lifetime': { type: 'string' },
  'session-cache-bytes': { type: 'string', default: '2GiB' },
  'forbid-low-precision-casts': { type: 'string' }, 'forbid-embedding-reads': { type: 'boolean' },
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
  throw new Error(`unknown --policy '${values.policy}' (open, allow-list or closed)`)
}

function lowPrecisionRule (value: string): 'weight-derived' | 'all' {
  if (value === 'weight-derived' || value === 'all') return value
  throw new Error(`--forbid-low-precision-casts is 'weight-derived' or 'all', not '${value}'`)
}

export const providerCommand = {
  summary: 'run a provider: `provider start --model <folder> [--policy …] [--port N] [--db file]`',
  async run (argv: string[]): Promise<number> {
    const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS })
    if (values.help) { console.log(USAGE); return 0 }
    if (positionals[0] !== 'start' || values.model === undefined) { console.error(USAGE); return 2 }
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
    }
    if (values['adapter-downloads'] !== 'host-only' && values['adapter-downloads'] !== 'counted') { console.error(`--adapter-downloads is 'host-only' or 'counted', not '${values['adapter-downloads']}'`); return 2 }
    const workers = Number(values.workers)
    const isolation = values.isolation === 'process' ? 'process' : 'thread'
    if (values.durability !== 'normal' && values.durability !== 'full') { console.error(`--durability is 'normal' or 'full', not '${values.durability}'`); return 2 }
    if (values['batch-sizes'] !== 'pow2' && values['batch-sizes'] !== 'any') { console.error(`--batch-sizes is 'pow2' or 'any', not '${values['batch-sizes']}'`); return 2 }
    let sessionCacheBytes: number
    try {
      sessionCacheBytes = parseBytes(values['session-cache-bytes'])
      if (!(sessionCacheBytes > 0)) throw new Error('it must be positive')
    } catch (error) { console.error(`--session-cache-bytes: ${(error as Error).message}`); return 2 }
    const identity = values.identity === undefined ? undefined : { secretKey: readKeyFile(values.identity).secretKey }
    const host = await createHost({
      dbPath: values.db,
      ...(values['adapter-dir'] === undefined ? {} : { adapterDir: values['adapter-dir'] }),
      ...(identity === undefined ? {} : { identity }),
      durability: values.durability,
      backends: { onnx: workerBackend({ module: onnxModule(), factory: 'onnxBackend', init: { intraOpThreads: Number(values['intra-op-threads']), sessionCacheSize: Number(values['session-cache']), sessionCacheBytes }, workers, isolation }) },
      models: values.model.map(folder => ({ name: path.basename(path.resolve(folder)).replace(/\.onnx$/, ''), path: path.resolve(folder) })),
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
    console.log(`models: ${host.context.registry.list().map(m => `${m.name} (${m.manifest.revision.slice(0, 19)}…)`).join(', ')}`)
    console.log(`policy: ${JSON.stringify(host.context.policySummaries())}`)
    const announced = values.directory === undefined ? null : await announce(identity?.secretKey ?? storedIdentity(host), url, values.directory, values['p2p-listen'], values.endorsement ?? [])
    await new Promise<void>(resolve => {
      // withdraw the directory record first, so clients stop choosing this provider before it goes away
      const stop = (): void => { void (announced?.stop() ?? Promise.resolve()).finally(() => host.close()).then(resolve) }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    return 0
  },
}

/** The identity createHost generated and kept in the database (the libp2p peer id derives from the same seed). */
function storedIdentity (host: { context: { store: { getSetting: (key: string) => Uint8Array | null | undefined } } }): Uint8Array {
  const secretKey = host.context.store.getSetting('identity.secretKey')
  if (secretKey == null) throw new Error('the provider has no stored identity; pass --identity <key file>')
  return secretKey
}

/** Announces the provider on the libp2p directory (libp2p is loaded only when asked for). */
async function announce (seed: Uint8Array, endpoint: string, bootstrap: string[], listen: string, endorsementFiles: string[]): Promise<{ stop: () => Promise<void> }> {
  const { announceProvider } = await import('@weft/federation')
  const { readEndorsementFile } = await import('@weft/federation/cli')
  const announced = await announceProvider({ seed, endpoint, bootstrap, listen: [listen], endorsements: endorsementFiles.map(readEndorsementFile) })
  console.log(`directory: announced as ${announced.node.peerId} via ${bootstrap.join(', ')}`)
  return announced
}

/** '@weft/onnx', or the backend's own file while that package has no index module yet. */
export function onnxModule (): string {
  const index = new URL('../../../onnx/src/index.ts', import.meta.url)
  return existsSync(fileURLToPath(index)) ? '@weft/onnx' : new URL('../../../onnx/src/backend/onnx-backend.ts', import.meta.url).href
}
