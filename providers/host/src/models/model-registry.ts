/**
 * ModelRegistry: the models this host serves, each loaded through a BackendV1 (never engine internals), with its
 * manifest, tokenizer.json bytes, active provider-wide edits and the ability to swap to a new revision.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { WeftError, decodeCbor, encodeCbor, type BackendV1, type Manifest, type ModelHandleV1, type ProgramNode } from '@weft/core'
import type { Store } from '../store/store.js'
import { editLabel, type EditFragment } from './edits.js'

export interface ModelConfig {
  name: string
  /** Hugging Face checkpoint folder or .onnx file */
  path: string
  /** key into `backends`; default: the only backend */
  backend?: string
}

export interface ServedModel {
  name: string
  backend: string
  path: string
  handle: ModelHandleV1
  manifest: Manifest
  /** `sha256:<hex>` of the manifest's deterministic CBOR */
  manifestDigest: string
  tokenizerJson: Uint8Array | null
  /** tokenizer_config.json bytes (special tokens, normalisation flags), when present */
  tokenizerConfig: Uint8Array | null
  /** jobs currently running on this handle (a swapped-out handle is disposed when this drops to 0) */
  inflight: number
  retired: boolean
}

export const digestOf = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

export class ModelRegistry {
  private readonly served = new Map<string, ServedModel>()
  private readonly decodedEdits = new Map<string, { rows: readonly unknown[]; fragments: readonly EditFragment[]; labels: string[] }>()

  constructor (private readonly backends: Record<string, BackendV1>, private readonly store: Store) {}

  private backendName (config: ModelConfig): string {
    const names = Object.keys(this.backends)
    const name = config.backend ?? (names.length === 1 ? names[0]! : undefined)
    if (name === undefined || this.backends[name] === undefined) {
      throw new WeftError('MODEL_LOAD_FAILED', `model '${config.name}': name a backend (one of ${names.join(', ') || 'none configured'})`, { model: config.name })
    }
    return name
  }

  private async open (config: ModelConfig): Promise<ServedModel> {
    const backend = this.backendName(config)
    const handle = await this.backends[backend]!.loadModel({ name: config.name, path: config.path })
    const manifest = handle.manifest
    return {
      name: config.name, backend, path: config.path, handle, manifest, inflight: 0, retired: false,
      manifestDigest: digestOf(encodeCbor(manifest)), tokenizerJson: readModelFile(config.path, 'tokenizer.json'),
      tokenizerConfig: readModelFile(config.path, 'tokenizer_config.json'),
    }
  }

  /** Loads a configured model; a revision swapped in earlier (recorded in the store) takes precedence over `config.path`. */
  async load (config: ModelConfig): Promise<ServedModel> {
    const swapped = this.store.latestRevision(config.name)
    const model = await this.open(swapped === undefined ? config : { ...config, path: swapped.path })
    this.served.set(config.name, model)
    return model
  }

  /** Serves `newPath` from now on; running jobs finish on the old handle, which is then disposed. */
  async swap (name: string, newPath: string, now: number): Promise<ServedModel> {
    const old = this.get(name)
    const next = await this.open({ name, path: newPath, backend: old.backend })
    this.served.set(name, next)
    this.store.recordRevision(name, next.manifest.revision, newPath, now)
    old.retired = true
    if (old.inflight === 0) await old.handle.dispose()
    return next
  }

  /** Called by the scheduler when a batch on `model` ends. */
  async release (model: ServedModel): Promise<void> {
    model.inflight--
    if (model.retired && model.inflight === 0) await model.handle.dispose()
  }

  get (name: string): ServedModel {
    const model = this.served.get(name)
    if (model === undefined) throw new WeftError('MODEL_NOT_FOUND', `this provider serves no model '${name}' (serving: ${[...this.served.keys()].join(', ')})`, { model: name, served: [...this.served.keys()] })
    return model
  }

  list (): ServedModel[] { return [...this.served.values()] }

  backend (model: ServedModel): BackendV1 { return this.backends[model.backend]! }

  /** Active provider-wide edits on a model, decoded (once per change of the store's edit rows; do not mutate). */
  edits (name: string): readonly EditFragment[] {
    const rows = this.store.activeEdits(name)
    const cached = this.decodedEdits.get(name)
    if (cached?.rows === rows) return cached.fragments
    const fragments = Object.freeze(rows.map(row => ({ id: row.id, name: row.name, digest: row.digest, nodes: decodeCbor(row.fragment) as ProgramNode[] })))
    this.decodedEdits.set(name, { rows, fragments, labels: fragments.map(editLabel) })
    return fragments
  }

  /** `<name>@<digest>` of the edits in force (receipts and the audit log name them so). */
  editLabels (name: string): string[] {
    this.edits(name)
    return [...this.decodedEdits.get(name)!.labels]
  }

  async close (): Promise<void> {
    await Promise.all([...this.served.values()].map(async m => await m.handle.dispose()))
    this.served.clear()
    await Promise.all(Object.values(this.backends).map(async b => await b.close?.()))
  }
}

function readModelFile (modelPath: string, name: string): Uint8Array | null {
  const folder = existsSync(modelPath) && statSync(modelPath).isDirectory() ? modelPath : path.dirname(modelPath)
  const file = path.join(folder, name)
  return existsSync(file) ? readFileSync(file) : null
}
