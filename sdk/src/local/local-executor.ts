/**
 * LocalExecutor: embedded mode. Runs Programs in-process through a backend (the ONNX engine by default),
 * loading models lazily from a models folder. `simulate: true` round-trips every Program through core's
 * deterministic CBOR first, so tests exercise the wire format without a server.
 */
import { WeftError, decodeProgram, encodeProgram, type BackendV1, type Manifest, type ModelHandleV1, type Program, type Tensor } from '@weft/core'
import type { Executor, ModelInfo, RunProgress, RunResult, SyncTokenizer } from '../executor.js'
import { defaultModelsDir, listModelNames, resolveModelPath } from './model-files.js'

export interface LocalOptions {
  /** folder holding model folders (default: WEFT_MODELS, else the nearest `models/` upwards from cwd) */
  modelsDir?: string
  /** the backend to run on (default: `onnxBackend()` from @weft/onnx) */
  backend?: BackendV1
  /** encode → decode every Program through CBOR before running it (what a remote host would receive) */
  simulate?: boolean
}

let jobCounter = 0

export class LocalExecutor implements Executor {
  readonly kind: 'local' | 'simulate'
  readonly modelsDir: string
  private backend: BackendV1 | undefined
  private readonly handles = new Map<string, Promise<ModelHandleV1>>()

  constructor (options: LocalOptions = {}) {
    this.kind = options.simulate === true ? 'simulate' : 'local'
    this.modelsDir = options.modelsDir ?? defaultModelsDir()
    this.backend = options.backend
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
  readonly adapters = new Map<string, Record<string, Tensor>>()

  /** `{adapter}` param inits replaced by the kept tensors (as a host does before its engine runs the Program). */
  private resolveAdapters (program: Program): Program {
    if (program.params === undefined) return program
    const params = Object.fromEntries(Object.entries(program.params).map(([name, decl]) => {
      if (!('adapter' in decl.init)) return [name, decl]
      const { name: adapter, param } = decl.init.adapter
      const tensor = this.adapters.get(adapter)?.[param]
      if (tensor === undefined) throw new WeftError('ADAPTER_NOT_FOUND', `no kept adapter '${adapter}' with a param '${param}'`, { adapter, param })
      return [name, { ...decl, init: { tensor } }]
    }))
    return { ...program, params }
  }

  async run (program: Program, options: { signal?: AbortSignal; onProgress?: (event: RunProgress) => void } = {}): Promise<RunResult> {
    const handle = await this.handle(program.model.name)
    const wire = this.resolveAdapters(this.kind === 'simulate' ? decodeProgram(encodeProgram(program)) : program)
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
    if (program.keep !== undefined && result.params !== undefined) this.adapters.set(program.keep.adapter, result.params)
    options.onProgress?.({ stage: 'completed' })
    return { saves: result.saves, provider: 'local', stats: result.stats }
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
