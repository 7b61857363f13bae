/**
 * RemoteExecutor: runs Programs on a provider over HTTP. Signs each Program for the provider's id (COSE_Sign1),
 * submits it, follows SSE status when asked for progress (else one held request), fetches the result and
 * verifies the receipt before returning. Manifests and tokenizers are fetched once and checked against digests.
 * Training Programs always follow the event stream: every completed step reaches `onProgress` as `train-step`, and
 * aborting the signal asks the provider to stop after the current step, returning the result of the steps done.
 * The key's kept adapters are listed, read, downloaded (when the provider's policy allows) and deleted with
 * requests signed by the same key (`Weft-Key`).
 */
import { WeftError, resolveKey, textTokenizer, type KeyInput, createRequestEnvelope, decodeCbor, fromHex, isTensor, keyId, publicKeyOf, requestDigest, sha256Digest, signRequest, REQUEST_SIGNATURE_HEADERS, type Manifest, type Program, type Tensor } from '@weft/core'
import type { AdapterInfo, Executor, KeptAdapter, ModelInfo, RunProgress, RunResult, SyncTokenizer, TrainingOutcome } from '../executor.js'
import { ProviderHttp, isNodeFailure, mayHaveArrived } from './http.js'
import { readSse } from './sse.js'
import { adapterInitNames, verifyResult } from './verify-result.js'
import { registrationProof } from './registration.js'

export interface ConnectOptions {
  /** provider base URL, e.g. http://127.0.0.1:8080 */
  provider: string
  /**
   * the provider's other nodes (a multi-node provider's record lists them as `endpoints`): requests fail over
   * between `provider` and these, submissions rotate over the live ones, and each is checked to answer as the
   * same provider before its first use
   */
  endpoints?: readonly string[]
  /** the signing key: a key object (`loadKey(path)`, `{ secretKey }`, `{ file }`), secret-key bytes, a hex secret or a key-file path */
  key: KeyInput
  /** expected provider id; when set, connecting to a provider with another key fails (pinning) */
  providerId?: string
  /**
   * seconds the provider may hold a submission open to answer with the result directly (default 30; 0 = always
   * follow the event stream). With several endpoints the default is 0: a held submission's job id is known only
   * when it answers, so if its node died the job could not be followed on another node (it would be sent again).
   */
  waitSeconds?: number
  /** envelope lifetime (default 300 s) */
  ttlSeconds?: number
  /** register the key on open providers that allow self-registration (default true) */
  register?: boolean
  fetch?: typeof fetch
}

export interface EgressStatus { kid: string; usedToday: number; reservedBytes: number; remainingToday: number | null }

/** A downloaded adapter: its values (checked against the digest) and what the download cost in egress. */
export interface AdapterValues { name: string; digest: string; values: Record<string, Tensor>; egress: { bytes: number; remainingToday: number | null } }

type RunOptions = { signal?: AbortSignal; onProgress?: (event: RunProgress) => void }

function secretKeyOf (key: ConnectOptions['key']): Uint8Array {
  return resolveKey(key).secretKey
}

export class RemoteExecutor implements Executor {
  readonly kind = 'remote' as const
  readonly kid: string
  private readonly secretKey: Uint8Array
  private readonly manifests = new Map<string, Promise<{ manifest: Manifest; digest: string }>>()
  private readonly tokenizers = new Map<string, Promise<SyncTokenizer | null>>()
  /** egress reported with the latest result (null until a budgeted provider answered) */
  lastEgress: RunResult['egress'] | null = null

  private constructor (readonly http: ProviderHttp, readonly providerId: string, readonly providerKey: Uint8Array, key: Uint8Array, private readonly options: ConnectOptions) {
    this.secretKey = key
    this.kid = keyId(publicKeyOf(key))
  }

  /** Fetches the provider's identity and checks that its id is the key id of its published public key. */
  static async connect (options: ConnectOptions): Promise<RemoteExecutor> {
    const http = new ProviderHttp(options.provider, options.fetch, options.endpoints ?? [])
    type Version = { provider: string; publicKey: string; protocol: number[] }
    const identify = (version: Version, base: string, expected: string | undefined): void => {
      if (keyId(fromHex(version.publicKey)) !== version.provider) throw new WeftError('SIGNATURE_INVALID', `provider id ${version.provider} at ${base} is not the key id of its published key`, { provider: version.provider, url: base })
      if (expected !== undefined && expected !== version.provider) {
        throw new WeftError('AUDIENCE_MISMATCH', `expected provider ${expected} at ${base}, found ${version.provider}`, { expected, found: version.provider })
      }
    }
    // the first node that answers as the provider (the one pinned, if any) names it; others may be dead or impostors
    let found: { version: Version; endpoint: string } | undefined
    let failure: unknown
    for (const base of http.pool.order()) {
      try {
        const version = await http.json<Version>('/v1/version', undefined, { endpoint: base, only: true, unchecked: true })
        identify(version, base, options.providerId)
        found = { version, endpoint: base }
        break
      } catch (error) {
        failure = error
        if (isNodeFailure(error)) continue
        if (http.pool.size === 1) throw error
        http.pool.exclude(base)
      }
    }
    if (found === undefined) throw failure
    const { version, endpoint } = found
    // every other node (listed now or later) must answer as the same provider before it is asked anything
    http.trust(endpoint)
    http.verifyEndpoint = async base => identify(await http.json<Version>('/v1/version', undefined, { endpoint: base, only: true, unchecked: true }), base, version.provider)
    return new RemoteExecutor(http, version.provider, fromHex(version.publicKey), secretKeyOf(options.key), options)
  }

  /** the provider's nodes changed (routing saw a newer record): use these, each checked before its first use */
  useEndpoints (urls: readonly string[]): void { this.http.pool.update(urls) }

  async listModels (): Promise<ModelInfo[]> {
    const { models } = await this.http.json<{ models: ModelInfo[] }>('/v1/models')
    return models.map(m => ({ name: m.name, revision: m.revision, family: m.family }))
  }

  async manifest (model: string): Promise<Manifest> {
    return (await this.fetchManifest(model)).manifest
  }

  /** SHA-256 of the manifest's deterministic CBOR as served: what provider records name as `manifestDigest`. */
  async manifestDigest (model: string): Promise<string> {
    return (await this.fetchManifest(model)).digest
  }

  private fetchManifest (model: string): Promise<{ manifest: Manifest; digest: string }> {
    let pending = this.manifests.get(model)
    if (pending === undefined) {
      // the strict decoder accepts only deterministic CBOR, so the digest of these bytes is the manifest's digest
      pending = this.http.bytes(`/v1/models/${encodeURIComponent(model)}/manifest`, { headers: { Accept: 'application/cbor' } })
        .then(bytes => ({ manifest: decodeCbor(bytes) as Manifest, digest: sha256Digest(bytes) }))
      pending.catch(() => this.manifests.delete(model))
      this.manifests.set(model, pending)
    }
    return pending
  }

  /** The provider's tokenizer.json, checked against the manifest's tokenizer digest, run locally. */
  tokenizer (model: string): Promise<SyncTokenizer | null> {
    let pending = this.tokenizers.get(model)
    if (pending === undefined) {
      pending = this.loadTokenizer(model)
      pending.catch(() => this.tokenizers.delete(model))
      this.tokenizers.set(model, pending)
    }
    return pending
  }

  private async loadTokenizer (model: string): Promise<SyncTokenizer | null> {
    const manifest = await this.manifest(model)
    if (manifest.tokenizer === null) return null
    const path = `/v1/models/${encodeURIComponent(model)}/tokenizer`
    const [json, config] = await Promise.all([this.http.bytes(path), this.http.bytes(`${path}-config`)])
    const digest = sha256Digest(json)
    if (digest !== manifest.tokenizer.digest) throw new WeftError('SIGNATURE_INVALID', `tokenizer.json digest ${digest} does not match the manifest's ${manifest.tokenizer.digest}`, { model })
    return textTokenizer(json, config)
  }

  async tokenize (model: string, text: string): Promise<number[]> {
    const tokenizer = await this.tokenizer(model)
    if (tokenizer === null) throw new WeftError('BACKEND_CAPABILITY_MISSING', `model '${model}' has no tokenizer on this provider; send token ids`)
    return tokenizer.encode(text)
  }

  async decode (model: string, ids: readonly number[]): Promise<string> {
    const tokenizer = await this.tokenizer(model)
    if (tokenizer === null) throw new WeftError('BACKEND_CAPABILITY_MISSING', `model '${model}' has no tokenizer on this provider`)
    return tokenizer.decode(ids)
  }

  /** Today's egress for this key under the provider's budgets. */
  async egress (): Promise<EgressStatus> {
    return await this.http.json<EgressStatus>(`/v1/keys/${encodeURIComponent(this.kid)}/egress`)
  }

  async run (program: Program, options: RunOptions = {}): Promise<RunResult> {
    // a training run reports its steps and stops softly on abort: it always follows the event stream
    const trains = program.train !== undefined
    const hold = this.options.waitSeconds ?? (this.http.pool.size > 1 ? 0 : 30)
    const follow = trains || options.onProgress !== undefined || hold === 0
    const wait = follow ? 0 : hold
    let submitted: Submitted
    try {
      submitted = await this.submit(program, wait, options.signal)
    } catch (error) {
      if (!WeftError.is(error, 'KEY_UNKNOWN') || this.options.register === false) throw error
      // open providers: register with proof of possession, then sign afresh (the nonce was spent); providers that
      // register keys only through their operator refuse, and the answer stays KEY_UNKNOWN
      try { await this.register() } catch (refused) { throw new WeftError('KEY_UNKNOWN', `${error.message} (self-registration refused: ${(refused as Error).message})`, error.details, { cause: refused }) }
      submitted = await this.submit(program, wait, options.signal)
    }
    const { envelope, endpoint, job } = submitted
    let bytes: Uint8Array
    if (submitted.result !== undefined) bytes = submitted.result
    else {
      options.onProgress?.({ stage: 'received', detail: { job, endpoint } }) // the node that accepted it (or knows it)
      if (submitted.position !== undefined) options.onProgress?.({ stage: 'queued', position: submitted.position })
      bytes = await this.follow(job, options, trains, endpoint)
    }
    // the receipt must name the model revision the Program was recorded and validated against
    const revision = program.model.revision ?? (await this.manifest(program.model.name)).revision
    const verified = verifyResult(bytes, {
      providerId: this.providerId, publicKey: this.providerKey, envelope, job: job || undefined, model: program.model.name, revision,
      adapterInits: adapterInitNames(program.params), keep: program.keep?.adapter ?? null,
    })
    const egress = { bytes: verified.receipt.egressBytes, remainingToday: verified.body.egress?.remainingToday ?? null }
    this.lastEgress = egress
    const extras = verified.body as { training?: TrainingOutcome; adapter?: KeptAdapter }
    return {
      saves: verified.saves,
      provider: this.providerId,
      endpoint,
      receipt: { bytes: verified.body.receipt, fields: { ...verified.receipt } },
      egress,
      stats: verified.body.stats ?? undefined,
      ...(extras.training === undefined ? {} : { training: extras.training }),
      ...(extras.adapter === undefined ? {} : { adapter: extras.adapter }),
      ...(verified.receipt.adaptersUsed === undefined ? {} : { adaptersUsed: verified.receipt.adaptersUsed }),
    }
  }

  // ── kept adapters (signed by this key) ─────────────────────────────────────
  /** This key's adapters kept on the provider. */
  async adapters (): Promise<AdapterInfo[]> {
    return (await this.keyRequest<{ adapters: AdapterInfo[] }>('GET', '/v1/adapters')).adapters
  }

  /** One of this key's adapters (ADAPTER_NOT_FOUND when this key keeps none of that name). */
  async adapter (name: string): Promise<AdapterInfo> {
    return await this.keyRequest<AdapterInfo>('GET', `/v1/adapters/${encodeURIComponent(name)}`)
  }

  async deleteAdapter (name: string): Promise<void> {
    await this.keyRequest('DELETE', `/v1/adapters/${encodeURIComponent(name)}`)
  }

  /** The adapter's values, if the provider's policy lets them leave (charged as egress); checked against its digest. */
  async downloadAdapter (name: string): Promise<AdapterValues> {
    const path = `/v1/adapters/${encodeURIComponent(name)}/values`
    const response = await this.http.buffered(path, { headers: this.keyHeader('GET', path) })
    const body = decodeCbor(response.body, { maxBytes: 2 ** 30, maxStringBytes: 2 ** 30 }) as { adapter: string; digest: string; values: Uint8Array; egress: AdapterValues['egress'] }
    if (typeof body !== 'object' || body === null || !(body.values instanceof Uint8Array)) throw new WeftError('DECODE_FAILED', 'adapter download is not {adapter, digest, values, egress}')
    const digest = sha256Digest(body.values)
    if (digest !== body.digest) throw new WeftError('SIGNATURE_INVALID', `adapter '${name}' values digest to ${digest}, the provider said ${body.digest}`, { adapter: name })
    const values = decodeCbor(body.values, { maxBytes: 2 ** 30, maxStringBytes: 2 ** 30 }) as Record<string, Tensor>
    if (typeof values !== 'object' || values === null || !Object.values(values).every(isTensor)) throw new WeftError('DECODE_FAILED', `adapter '${name}' values are not a map of tensors`)
    this.lastEgress = body.egress
    return { name, digest, values, egress: body.egress }
  }

  private keyHeader (method: string, path: string): Record<string, string> {
    return { [REQUEST_SIGNATURE_HEADERS['weft-key-v1']]: signRequest('weft-key-v1', { secretKey: this.secretKey, providerId: this.providerId, method, path }) }
  }

  private async keyRequest<T = unknown> (method: string, path: string): Promise<T> {
    return await this.http.json<T>(path, { method, headers: this.keyHeader(method, path) })
  }

  /**
   * Signs and submits the Program to the next node in rotation; a node that fails (refused connection, timeout,
   * 5xx) is set aside and the next one asked. One node: as before, no retry. Exactly once across nodes: when the
   * failed node may have accepted the envelope (the connection broke after sending), the next node is first asked
   * which job that envelope created (`GET /v1/requests/{digest}`, the nodes share one store) and the job is followed
   * if there is one; else the same envelope is sent again, so two nodes cannot both accept it (its nonce). Only an
   * envelope that surely created no job (refused connection, a 503 refusal, or a node that says the nonce is spent
   * and knows no job of it) is signed afresh.
   */
  private async submit (program: Program, waitSeconds: number, signal?: AbortSignal): Promise<Submitted> {
    const headers: Record<string, string> = { 'content-type': 'application/cose' }
    if (waitSeconds > 0) headers.prefer = `wait=${waitSeconds}`
    const { pool } = this.http
    let failure: unknown
    /** an envelope a failed node may have accepted */
    let pending: Uint8Array | null = null
    for (const node of pool.order(pool.rotate())) {
      let envelope: Uint8Array = pending ?? this.sign(program)
      try {
        if (pending !== null) {
          const known = await this.jobOfRequest(pending, node)
          if (known !== null) return { envelope, endpoint: node, job: known }
        }
        const post = async (): Promise<Submitted> => {
          const { value, endpoint } = await this.http.bufferedAt('/v1/jobs', { method: 'POST', body: envelope, headers, signal }, { endpoint: node, only: true })
          if (value.status === 200) return { envelope, endpoint, job: value.header('Weft-Job') ?? '', result: value.body }
          const accepted = JSON.parse(new TextDecoder().decode(value.body)) as { job: string; position: number }
          return { envelope, endpoint, job: accepted.job, position: accepted.position }
        }
        try {
          return await post()
        } catch (error) {
          if (pending === null || !WeftError.is(error, 'NONCE_REPLAYED')) throw error
          // the nonce was spent since the lookup: by the job it created (follow it), or by a refusal (sign afresh)
          const known = await this.jobOfRequest(pending, node)
          if (known !== null) return { envelope, endpoint: node, job: known }
          pending = null
          envelope = this.sign(program)
          return await post()
        }
      } catch (error) {
        if (signal?.aborted === true || !(isNodeFailure(error) || pool.isExcluded(node))) throw error
        failure = error
        if (pending === null && mayHaveArrived(error)) pending = envelope
      }
    }
    throw failure
  }

  /**
   * The job `envelope` created, asked of `node` by this key; null when none, when this key is not registered there,
   * or when the node predates the route (ROUTE_NOT_FOUND: sending the same envelope again is still safe, its nonce
   * lets one node accept it).
   */
  private async jobOfRequest (envelope: Uint8Array, node: string): Promise<string | null> {
    const path = `/v1/requests/${requestDigest(envelope)}`
    try {
      const { value } = await this.http.bufferedAt(path, { headers: this.keyHeader('GET', path) }, { endpoint: node, only: true })
      return (JSON.parse(new TextDecoder().decode(value.body)) as { job: string }).job
    } catch (error) {
      if (WeftError.is(error, 'JOB_NOT_FOUND') || WeftError.is(error, 'KEY_UNKNOWN') || WeftError.is(error, 'ROUTE_NOT_FOUND')) return null
      throw error
    }
  }

  private sign (program: Program): Uint8Array {
    return createRequestEnvelope({ program, audience: this.providerId, secretKey: this.secretKey, kid: this.kid, ttlSeconds: this.options.ttlSeconds })
  }

  /** Self-registration (open providers): proves possession of the key by signing the registration message. */
  async register (): Promise<void> {
    await this.http.request('/v1/keys', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(registrationProof(this.providerId, this.secretKey)) })
  }

  /**
   * Follows the job's SSE stream until it ends, reporting progress, then fetches the result. `soft` (training runs):
   * an abort asks the provider to stop after the current step and the stream is followed to the end, so the result
   * of the completed steps comes back; otherwise an abort cancels and stops reading at once.
   */
  private async follow (job: string, options: RunOptions, soft = false, endpoint?: string): Promise<Uint8Array> {
    const onAbort = (): void => { void this.http.request(`/v1/jobs/${job}`, { method: 'DELETE' }).catch(() => {}) }
    if (options.signal?.aborted === true) onAbort()
    else options.signal?.addEventListener('abort', onAbort, { once: true })
    const signal = soft ? undefined : options.signal
    let lastStep = 0
    let node = endpoint
    // a node that dies while its stream is followed: the job goes on (another node takes it over after its lease),
    // and any other node streams its events and serves its result
    let losses = 0
    try {
      for (;;) {
        try {
          return await this.followOnce(job, options, signal, node, step => {
            if (!(step > lastStep)) return false
            lastStep = step
            return true
          })
        } catch (error) {
          const lost = !(error instanceof JobEnded) && signal?.aborted !== true && (!WeftError.is(error) || isNodeFailure(error) || WeftError.is(error, 'JOB_NOT_READY'))
          if (!lost || this.http.pool.size === 1 || ++losses > 2 * this.http.pool.size) throw error instanceof JobEnded ? error.error : error
          if (node !== undefined && !WeftError.is(error, 'JOB_NOT_READY')) this.http.pool.markDown(node, error)
          node = undefined
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  /** One event stream of the job, on `node` or the first live node, until the job ends; then its result. */
  private async followOnce (job: string, options: RunOptions, signal: AbortSignal | undefined, node: string | undefined, newStep: (step: number) => boolean): Promise<Uint8Array> {
    const { value: stream, endpoint: at } = await this.http.requestAt(`/v1/jobs/${job}/events`, { headers: { Accept: 'text/event-stream' }, signal }, { endpoint: node })
    for await (const message of readSse(stream)) {
      const data = JSON.parse(message.data) as Record<string, unknown>
      if (message.event === 'job-progress' && data.stage === 'train-step') {
        // a late stream replays the steps so far; the same step is reported once
        const step = Number(data.step)
        if (!newStep(step)) continue
        options.onProgress?.({ stage: 'train-step', detail: { engineStage: 'train-step', step, steps: data.steps, epoch: data.epoch, loss: data.loss } })
      } else if (message.event === 'job-queued') options.onProgress?.({ stage: 'queued', position: data.position as number })
      else if (message.event === 'job-token') options.onProgress?.({ stage: 'token', detail: data })
      else if (message.event === 'job-start' || message.event === 'job-progress') options.onProgress?.({ stage: 'running', detail: data })
      else if (message.event === 'job-end') { options.onProgress?.({ stage: 'completed', detail: data }); break }
      else if (message.event === 'job-error') {
        options.onProgress?.({ stage: 'error', detail: data })
        throw new JobEnded(WeftError.fromWire(data.error as never))
      }
    }
    return (await this.http.buffered(`/v1/jobs/${job}/result`, { signal }, { endpoint: at })).body
  }

  async close (): Promise<void> {
    this.manifests.clear()
    this.tokenizers.clear()
  }
}

interface Submitted {
  envelope: Uint8Array
  /** the node that accepted the job (or knew it) */
  endpoint: string
  job: string
  /** the result, when the node answered with it (`Prefer: wait`) */
  result?: Uint8Array
  /** the queue position the accepting node reported */
  position?: number
}

/** the job's own end (a job-error event): its error is the answer, whichever node streamed it */
class JobEnded extends Error {
  constructor (readonly error: WeftError) { super(error.message) }
}
