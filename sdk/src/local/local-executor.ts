/**
 * LocalExecutor: embedded mode. Runs Programs in-process through a backend (the ONNX engine by default),
 * loading models lazily from a models folder. `simulate: true` round-trips every Program through core's
 * deterministic CBOR first, so tests exercise the wire format without a server.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { WeftError, decodeCbor, decodeProgram, encodeCbor, encodeProgram, programDigest, sha256Digest, type BackendV1, type Manifest, type ModelHandleV1, type Program, type Tensor } from '@weft/core'
import type { AdapterInfo, Executor, KeptAdapter, ModelInfo, RunProgress, RunResult, SyncTokenizer, TrainingOutcome } from '../executor.js'
import { defaultModelsDir, listModelNames, resolveModelPath } from './model-files.js'

export interface LocalOptions {
  /** folder holding model folders (default: WEFT_MODELS, else the nearest `models/` upwards from cwd) */
  modelsDir?: string
  /** the backend to run on (default: `onnxBackend()` from @weft/onnx) */
  backend?: BackendV1
  /** encode → decode every Program through CBOR before running it (what a remote host would receive) */
  simulate?: boolean
  /** keep adapters (`s.keep`) as files in this folder too, so later processes can use them (default: memory only) */
  adaptersDir?: string
}

let jobCounter = 0
let adapterCounter = 0

/** The engine's training summary as a run reports it (`TrainingOutcome`). */
function trainingOutcome (t: { steps: number; completed: number; cancelled: boolean; losses: number[] }): TrainingOutcome {
  return { steps: t.steps, completed: t.completed, cancelled: t.cancelled, finalLoss: t.losses.length > 0 ? t.losses[t.losses.length - 1]! : null, ...(t.cancelled ? { stopped: 'cancelled' as const } : {}) }
}

export class LocalExecutor implements Executor {
  readonly kind: 'local' | 'simulate'
  readonly modelsDir: string
  private backend: BackendV1 | undefined
  private readonly handles = new Map<string, Promise<ModelHandleV1>>()
  private readonly adaptersDir: string | undefined
  private loadedDir = false

  constructor (options: LocalOptions = {}) {
    this.kind = options.simulate === true ? 'simulate' : 'local'
    this.modelsDir = options.modelsDir ?? defaultModelsDir()
    this.backend = options.backend
    this.adaptersDir = options.adaptersDir
  }

  /** The loaded handle for `model` (loaded once, shared by every trace). */
  handle (model: string): Promise<ModelHandleV1> {
    let pending = this.handles.get(model)
    if (pending === undefined) {
      pending = (async () => {
        const backend = await this.ensureBackend()
        return backend.loadModel({ name: model, path: resolveModelPath(this.modelsDir, model) })
      })()
      pending.catch(() => this.handles.delete(model))
      this.handles.set(model, pending)
    }
    return pending
  }

  async listModels (): Promise<ModelInfo[]> {
    const out: ModelInfo[] = []
    for (const name of listModelNames(this.modelsDir)) {
      const manifest = (await this.handle(name)).manifest
      out.push({ name, revision: manifest.revision, family: manifest.family })
    }
    return out
  }

  async manifest (model: string): Promise<Manifest> { return (await this.handle(model)).manifest }
  async tokenize (model: string, text: string): Promise<number[]> { return (await this.handle(model)).tokenize(text) }
  async decode (model: string, ids: readonly number[]): Promise<string> { return (await this.handle(model)).decode(ids) }

  async tokenizer (model: string): Promise<SyncTokenizer | null> {
    const handle = await this.handle(model)
    if (handle.manifest.tokenizer === null) return null
    return { encode: (text) => handle.tokenize(text), decode: (ids) => handle.decode(ids) }
  }

  /** Adapters kept by sessions (`s.keep(name)`), by name: the embedded counterpart of a provider's adapter store. */
  private readonly kept = new Map<string, { info: AdapterInfo; values: Record<string, Tensor> }>()

  /** The kept adapters (as a provider lists a key's: metadata, never values). */
  async adapters (): Promise<AdapterInfo[]> {
    this.loadKept()
    return [...this.kept.values()].map(k => k.info).sort((a, b) => a.name.localeCompare(b.name))
  }

  /** One kept adapter (ADAPTER_NOT_FOUND when none has that name). */
  async adapter (name: string): Promise<AdapterInfo> { return this.keptAdapter(name).info }

  /** The kept adapter's values (embedded: nothing to charge). */
  async downloadAdapter (name: string): Promise<{ name: string; digest: string; values: Record<string, Tensor> }> {
    const { info, values } = this.keptAdapter(name)
    return { name, digest: info.digest, values }
  }

  async deleteAdapter (name: string): Promise<void> {
    this.keptAdapter(name)
    this.kept.delete(name)
    if (this.adaptersDir !== undefined) rmSync(path.join(this.adaptersDir, `${name}.cbor`), { force: true })
  }

  private keptAdapter (name: string): { info: AdapterInfo; values: Record<string, Tensor> } {
    this.loadKept()
    const found = this.kept.get(name)
    if (found === undefined) throw new WeftError('ADAPTER_NOT_FOUND', `no adapter '${name}' is kept by this executor`, { adapter: name })
    return found
  }

  /** With `adaptersDir`: the adapters kept there by earlier processes (read once). */
  private loadKept (): void {
    if (this.adaptersDir === undefined || this.loadedDir) return
    this.loadedDir = true
    if (!existsSync(this.adaptersDir)) return
    for (const file of readdirSync(this.adaptersDir).filter(f => f.endsWith('.cbor')).sort()) {
      const stored = decodeCbor(readFileSync(path.join(this.adaptersDir, file)), { maxBytes: 2 ** 31, maxStringBytes: 2 ** 31 }) as { info: string; values: Uint8Array }
      const values = decodeCbor(stored.values, { maxBytes: 2 ** 31, maxStringBytes: 2 ** 31 }) as Record<string, Tensor>
      const info = JSON.parse(stored.info) as AdapterInfo
      if (sha256Digest(stored.values) !== info.digest) throw new WeftError('INTERNAL', `kept adapter file ${file} does not match its digest`, { file })
      this.kept.set(info.name, { info, values })
    }
  }

  private keep (program: Program, manifest: Manifest, values: Record<string, Tensor>, training: RunResult['training'], jobId: string): KeptAdapter {
    this.loadKept()
    const name = program.keep!.adapter
    const bytes = encodeCbor(values)
    const info: AdapterInfo = {
      name, id: `local-adapter-${++adapterCounter}`, model: manifest.name, revision: manifest.revision,
      params: Object.fromEntries(Object.entries(values).map(([p, t]) => [p, { shape: [...t.shape], dtype: t.dtype }])),
      bytes: Object.values(values).reduce((n, t) => n + t.data.byteLength, 0), digest: sha256Digest(bytes), job: jobId,
      programDigest: programDigest(program),
      training: training === undefined ? null : { steps: training.steps, completed: training.completed, cancelled: training.cancelled, finalLoss: training.finalLoss },
      attach: program.keep!.attach ?? null, createdAt: Date.now(),
    }
    const replaced = this.kept.has(name)
    if (this.adaptersDir !== undefined) {
      mkdirSync(this.adaptersDir, { recursive: true })
      const file = path.join(this.adaptersDir, `${name}.cbor`)
      writeFileSync(`${file}.tmp`, encodeCbor({ info: JSON.stringify(info), values: bytes }))
      renameSync(`${file}.tmp`, file)
    }
    this.kept.set(name, { info, values })
    return { name, id: info.id, digest: info.digest, bytes: info.bytes, replaced }
  }

  /**
   * `{adapter}` param inits replaced by the kept tensors (as a host does before its engine runs the Program), with
   * the `<name>@<digest>` of every adapter used.
   */
  private resolveAdapters (program: Program, manifest: Manifest): { program: Program; used: string[] } {
    if (program.params === undefined) return { program, used: [] }
    const used = new Set<string>()
    const params = Object.fromEntries(Object.entries(program.params).map(([name, decl]) => {
      if (!('adapter' in decl.init)) return [name, decl]
      const { name: adapter, param } = decl.init.adapter
      const { info, values } = this.keptAdapter(adapter)
      if (info.model !== manifest.name || info.revision !== manifest.revision) {
        throw new WeftError('ADAPTER_MISMATCH', `adapter '${adapter}' was trained on ${info.model} at revision ${info.revision}; this Program runs on ${manifest.name} at revision ${manifest.revision}`, { adapter, param: name })
      }
      const tensor = values[param]
      if (tensor === undefined) throw new WeftError('ADAPTER_MISMATCH', `adapter '${adapter}' has no param '${param}' (it has ${Object.keys(values).join(', ')})`, { adapter, param: name, missing: param })
      if (tensor.shape.length !== decl.shape.length || tensor.shape.some((d, i) => d !== decl.shape[i])) {
        throw new WeftError('ADAPTER_MISMATCH', `param '${name}' is declared [${decl.shape.join(', ')}] but adapter '${adapter}'.'${param}' is [${tensor.shape.join(', ')}]`, { adapter, param: name })
      }
      used.add(`${adapter}@${info.digest}`)
      return [name, { ...decl, init: { tensor } }]
    }))
    return { program: { ...program, params }, used: [...used].sort() }
  }

  async run (program: Program, options: { signal?: AbortSignal; onProgress?: (event: RunProgress) => void } = {}): Promise<RunResult> {
    const handle = await this.handle(program.model.name)
    const { program: wire, used } = this.resolveAdapters(this.kind === 'simulate' ? decodeProgram(encodeProgram(program)) : program, handle.manifest)
    const id = `local-${++jobCounter}`
    options.onProgress?.({ stage: 'running' })
    const [result] = await handle.run([{ id, program: wire }], {
      signal: options.signal,
      onProgress: (event) => options.onProgress?.(event.stage === 'token'
        ? { stage: 'token', detail: event.detail }
        : event.stage === 'train-step'
          ? { stage: 'train-step', detail: { engineStage: 'train-step', ...event.detail } }
          : { stage: 'running', detail: { engineStage: event.stage, ...event.detail } }),
    })
    if (result === undefined) throw new WeftError('INTERNAL', `the backend returned no result for job ${id}`)
    if (!result.ok) {
      options.onProgress?.({ stage: 'error', detail: { code: result.error.code } })
      throw WeftError.fromWire(result.error)
    }
    const training = result.training === undefined ? undefined : trainingOutcome(result.training)
    const adapter = program.keep !== undefined && result.params !== undefined ? this.keep(program, handle.manifest, result.params, training, id) : undefined
    options.onProgress?.({ stage: 'completed' })
    return {
      saves: result.saves, provider: 'local', stats: result.stats,
      ...(training === undefined ? {} : { training }), ...(adapter === undefined ? {} : { adapter }), ...(used.length === 0 ? {} : { adaptersUsed: used }),
    }
  }

  async close (): Promise<void> {
    const handles = [...this.handles.values()]
    this.handles.clear()
    for (const pending of handles) await (await pending.catch(() => null))?.dispose()
    await this.backend?.close?.()
  }

  private async ensureBackend (): Promise<BackendV1> {
    this.backend ??= await loadOnnxBackend()
    return this.backend
  }
}

type OnnxModule = { onnxBackend: () => BackendV1 }

/**
 * `onnxBackend()` from @weft/onnx, the local engine: an optional peer of the SDK, loaded only by embedded mode, so
 * a client that only talks to providers never installs onnxruntime. Missing, it is BACKEND_CAPABILITY_MISSING.
 */
export async function loadOnnxBackend (specifier = '@weft/onnx'): Promise<BackendV1> {
  let module: OnnxModule
  try {
    module = await import(specifier) as OnnxModule
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string }
    const missing = (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' || /^Cannot find (package|module)|^Failed to load url/.test(String(message))) && String(message).includes(`${specifier}'`)
    if (!missing) throw error
    throw new WeftError('BACKEND_CAPABILITY_MISSING', `embedded mode (Weft.local) needs the local engine: \`npm install ${specifier}\` (or use Weft.connect to run on a provider)`, { package: specifier })
  }
  return module.onnxBackend()
}
