/**
 * Where the workbench's experiments run: embedded (a models folder, in this process), one provider over HTTP, or
 * every provider of the libp2p directory. Each mode is the SDK's own executor wrapped so a run's Programs, progress
 * and results are captured for the page (downloads, receipt, egress) without changing how the experiment is written.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { WeftError, fromHex, keyId, publicKeyOf, resolveKey, verifyReceipt, type Program } from '@weft/core'
import { LocalExecutor, RemoteExecutor, Weft, connectRouted, type Executor, type ModelInfo, type RunOptions, type RunProgress, type RunResult, type SyncTokenizer } from '@weft/sdk'
import type { DirectoryLike } from '@weft/sdk'

/** What one experiment run collects from the executor. */
export interface RunCapture {
  programs: Program[]
  results: RunResult[]
  onProgress: (event: RunProgress) => void
}

const captures = new AsyncLocalStorage<RunCapture>()

/** Runs `fn` with every Program it runs (and each result and progress event) reported to `capture`. */
export function withCapture<T> (capture: RunCapture, fn: () => Promise<T>): Promise<T> {
  return captures.run(capture, fn)
}

/** An Executor that reports to the current run's capture, then defers to the SDK executor it wraps. */
export class CapturingExecutor implements Executor {
  readonly kind: Executor['kind']
  constructor (readonly inner: Executor) { this.kind = inner.kind }
  listModels (): Promise<ModelInfo[]> { return this.inner.listModels() }
  manifest (model: string): ReturnType<Executor['manifest']> { return this.inner.manifest(model) }
  tokenize (model: string, text: string): Promise<number[]> { return this.inner.tokenize(model, text) }
  decode (model: string, ids: readonly number[]): Promise<string> { return this.inner.decode(model, ids) }
  async tokenizer (model: string): Promise<SyncTokenizer | null> { return (await this.inner.tokenizer?.(model)) ?? null }
  close (): Promise<void> { return this.inner.close() }
  async run (program: Program, options: RunOptions = {}): Promise<RunResult> {
    const capture = captures.getStore()
    capture?.programs.push(program)
    const result = await this.inner.run(program, {
      ...options,
      onProgress: (event) => { capture?.onProgress(event); options.onProgress?.(event) },
    })
    capture?.results.push(result)
    return result
  }
}

export interface FabricProvider {
  id: string
  endpoint: string
  status: string
  models: { name: string; revision: string; family: string }[]
  policies: Record<string, unknown>[]
  queue: { queued?: number; running?: number } | null
  /** queue depth from the directory record (directory mode) */
  recordQueueDepth?: number
  error?: string
}

export interface FabricView {
  mode: Mode
  /** the caller's key id (remote modes) */
  kid: string | null
  providers: FabricProvider[]
  /** the caller's egress per provider id: today's use and what remains (null: no budget) */
  egress: Record<string, { usedToday: number; remainingToday: number | null } | { error: string }>
}

export type Mode = 'embedded' | 'provider' | 'directory'

export interface Backend {
  mode: Mode
  weft: Weft
  /** the connect call `programSource` shows */
  connectSource: string
  fabric (): Promise<FabricView>
  /** re-verifies a remote run's receipt against the provider's published key */
  verifyReceipt (result: RunResult): Promise<{ present: boolean; verified: boolean; detail: string }>
  close (): Promise<void>
}

export type BackendOptions =
  | { mode: 'embedded'; modelsDir?: string }
  | { mode: 'provider'; provider: string; key: string }
  | { mode: 'directory'; bootstrap: string[]; key: string }

async function fetchJson (url: string, timeoutMs = 2000): Promise<Record<string, unknown>> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const body = await response.json() as Record<string, unknown>
  if (!response.ok) {
    const error = body.error as { code?: string; message?: string } | undefined
    throw new Error(error?.message !== undefined ? `${error.code}: ${error.message}` : `HTTP ${response.status}`)
  }
  return body
}

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** Health, models, policies and queue of one provider, from its public routes. */
async function describeProvider (endpoint: string, id: string): Promise<FabricProvider> {
  try {
    const [health, policy, models] = await Promise.all([fetchJson(`${endpoint}/v1/health`), fetchJson(`${endpoint}/v1/policy`), fetchJson(`${endpoint}/v1/models`)])
    return {
      id: String(health.provider ?? id), endpoint, status: String(health.status ?? 'unknown'),
      models: (models.models as FabricProvider['models']).map(m => ({ name: m.name, revision: m.revision, family: m.family })),
      policies: (policy.policies as Record<string, unknown>[]) ?? [],
      queue: (health.queue as FabricProvider['queue']) ?? null,
    }
  } catch (error) {
    return { id, endpoint, status: 'unreachable', models: [], policies: [], queue: null, error: messageOf(error) }
  }
}

async function egressAt (endpoint: string, kid: string): Promise<FabricView['egress'][string]> {
  try {
    const body = await fetchJson(`${endpoint}/v1/keys/${encodeURIComponent(kid)}/egress`)
    return { usedToday: Number(body.usedToday), remainingToday: body.remainingToday === null ? null : Number(body.remainingToday) }
  } catch (error) {
    return { error: messageOf(error) }
  }
}

/** Verifies a receipt with the public key the provider publishes, whose key id must be the provider's id. */
async function verifyRemoteReceipt (result: RunResult): Promise<{ present: boolean; verified: boolean; detail: string }> {
  if (result.receipt === undefined) return { present: false, verified: false, detail: 'no receipt: this run was not signed by a provider' }
  if (result.endpoint === undefined) return { present: true, verified: false, detail: 'the provider endpoint is unknown' }
  try {
    const version = await fetchJson(`${result.endpoint}/v1/version`)
    const publicKey = fromHex(String(version.publicKey))
    if (keyId(publicKey) !== result.provider) return { present: true, verified: false, detail: `the key at ${result.endpoint} is not ${result.provider}'s` }
    const receipt = verifyReceipt(result.receipt.bytes, publicKey)
    if (receipt.provider !== result.provider) return { present: true, verified: false, detail: `the receipt names ${receipt.provider}, the run came from ${result.provider}` }
    return { present: true, verified: true, detail: `signed by ${receipt.provider} for job ${receipt.job}; result ${receipt.resultDigest}` }
  } catch (error) {
    return { present: true, verified: false, detail: messageOf(error) }
  }
}

export async function createBackend (options: BackendOptions): Promise<Backend> {
  if (options.mode === 'embedded') {
    const local = new LocalExecutor(options.modelsDir === undefined ? {} : { modelsDir: options.modelsDir })
    const weft = new Weft(new CapturingExecutor(local))
    return {
      mode: 'embedded', weft,
      connectSource: options.modelsDir === undefined ? 'Weft.local()' : `Weft.local({ modelsDir: ${JSON.stringify(options.modelsDir)} })`,
      fabric: async () => ({
        mode: 'embedded', kid: null, egress: {},
        providers: [{
          id: 'local', endpoint: `embedded (${local.modelsDir})`, status: 'ok',
          models: await local.listModels(), policies: [{ name: 'embedded', note: 'runs in this process; no egress budget' }], queue: null,
        }],
      }),
      verifyReceipt: async () => ({ present: false, verified: false, detail: 'embedded run: no provider signs a receipt' }),
      close: () => weft.close(),
    }
  }
  const secretKey = resolveKey(options.key).secretKey
  const kid = keyId(publicKeyOf(secretKey))
  if (options.mode === 'provider') {
    const remote = await RemoteExecutor.connect({ provider: options.provider, key: { secretKey } })
    const weft = new Weft(new CapturingExecutor(remote))
    return {
      mode: 'provider', weft,
      connectSource: `Weft.connect({ provider: ${JSON.stringify(options.provider)}, key: 'me.json' })`,
      fabric: async () => {
        const provider = await describeProvider(options.provider, remote.providerId)
        return { mode: 'provider', kid, providers: [provider], egress: { [remote.providerId]: await egressAt(options.provider, kid) } }
      },
      verifyReceipt: verifyRemoteReceipt,
      close: () => weft.close(),
    }
  }
  const { createDirectoryNode } = await import('@weft/federation')
  if (options.bootstrap.length === 0) throw new WeftError('PROVIDER_NOT_FOUND', 'the directory mode needs a bootstrap multiaddr (…/p2p/12D3KooW…)')
  const node = await createDirectoryNode({ bootstrap: options.bootstrap })
  const directory = node as unknown as DirectoryLike
  const routed = await connectRouted({ key: { secretKey }, directory })
  const weft = new Weft(new CapturingExecutor(routed))
  return {
    mode: 'directory', weft,
    connectSource: `Weft.discover({ bootstrap: ${JSON.stringify(options.bootstrap)}, key: 'me.json' })`,
    fabric: async () => {
      const records = (directory.records?.() ?? []).filter(r => r.record.status === 'online')
      const providers = await Promise.all(records.map(async ({ record }) => {
        const live = await describeProvider(record.endpoint, record.provider)
        return {
          ...live, id: record.provider,
          models: live.models.length > 0 ? live.models : record.models.map(m => ({ name: m.name, revision: m.revision, family: m.family })),
          policies: live.policies.length > 0 ? live.policies : [record.policy],
          recordQueueDepth: record.capacity.queueDepth,
        }
      }))
      const egress = Object.fromEntries(await Promise.all(records.map(async ({ record }) => [record.provider, await egressAt(record.endpoint, kid)] as const)))
      return { mode: 'directory', kid, providers, egress }
    },
    verifyReceipt: verifyRemoteReceipt,
    close: async () => { await weft.close(); await node.stop() },
  }
}
