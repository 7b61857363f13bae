/**
 * Kept adapters: named sets of trained params a key asked the provider to keep (`keep: {adapter}` in a training
 * Program). Durable (a file written atomically, then its row), owned by one key (every other key is told the name
 * does not exist), bound to the model revision that trained them, resolved into `{tensor}` inits when a later Program
 * of the same key names them (`init: {adapter: {name, param}}`) before the engine sees it.
 */
import { randomBytes } from 'node:crypto'
import { WeftError, type AdapterAttachment, type ParamDecl, type Program, type Tensor } from '@weft/core'
import type { AdapterRow, Store } from '../store/store.js'
import { AdapterFiles, type WrittenFile } from '../store/adapter-files.js'

/** What the protocol shows of an adapter (never its values). */
export interface AdapterInfo {
  name: string
  id: string
  model: string
  revision: string
  params: Record<string, { shape: number[]; dtype: string }>
  bytes: number
  digest: string
  job: string | null
  programDigest: string | null
  training: TrainingSummary | null
  /** how the adapter applies to later traces (`keep.attach` of the Program that kept it), or null */
  attach: AdapterAttachment[] | null
  createdAt: number
}

export interface TrainingSummary { steps: number; completed: number; cancelled: boolean; finalLoss: number | null }

/** An adapter whose file is written but whose row is not committed yet (see `prepare`/`commit`). */
export interface PreparedAdapter { row: AdapterRow; file: WrittenFile }

export function adapterInfo (row: AdapterRow): AdapterInfo {
  return {
    name: row.name, id: row.id, model: row.model, revision: row.revision,
    params: JSON.parse(row.params) as AdapterInfo['params'], bytes: row.bytes, digest: row.digest,
    job: row.jobId, programDigest: row.programDigest,
    training: row.training === null ? null : JSON.parse(row.training) as TrainingSummary,
    attach: row.attach === null ? null : JSON.parse(row.attach) as AdapterAttachment[], createdAt: row.createdAt,
  }
}

const notFound = (name: string): WeftError =>
  new WeftError('ADAPTER_NOT_FOUND', `no adapter '${name}' is kept on this provider for your key`, { adapter: name })

export class Adapters {
  readonly files: AdapterFiles
  /** resolved Program → `<name>@<digest>` of every adapter its inits were read from (what its receipt binds) */
  private readonly used = new WeakMap<Program, string[]>()

  constructor (private readonly store: Store, dir: string) {
    this.files = new AdapterFiles(dir)
  }

  /** Start-up: deletes files no row names (a crash between a file's write and its row's commit). */
  sweep (): string[] { return this.files.sweep(this.store.adapterFiles()) }

  list (kid: string): AdapterInfo[] { return this.store.listAdapters(kid).map(adapterInfo) }

  /** The key's adapter, or ADAPTER_NOT_FOUND (the same answer whether it does not exist or belongs to another key). */
  get (kid: string, name: string): AdapterRow {
    const row = this.store.getAdapter(kid, name)
    if (row === undefined) throw notFound(name)
    return row
  }

  /** Deletes the key's adapter: the row first (it vanishes in one commit), then its file. */
  delete (kid: string, name: string): AdapterRow {
    const row = this.store.deleteAdapter(kid, name)
    if (row === undefined) throw notFound(name)
    this.files.remove(row.file)
    return row
  }

  /** The values file of the key's adapter (checked against its digest). */
  valuesBytes (row: AdapterRow): Uint8Array { return this.files.readBytes(row.file, row.digest) }

  /**
   * Step 1 of keeping: writes the values durably and builds the row. Nothing is visible until `commit`; a
   * prepared adapter that is never committed must be `discard`ed (or start-up sweeps its file).
   */
  prepare (input: { kid: string; name: string; model: string; revision: string; values: Record<string, Tensor>; jobId: string; programDigest: string; training: TrainingSummary | null; attach?: AdapterAttachment[]; now: number }): PreparedAdapter {
    const file = this.files.write(input.values)
    const params = Object.fromEntries(Object.entries(input.values).map(([name, t]) => [name, { shape: [...t.shape], dtype: t.dtype }]))
    const row: AdapterRow = {
      id: `adp_${randomBytes(12).toString('hex')}`, kid: input.kid, name: input.name, model: input.model, revision: input.revision,
      params: JSON.stringify(params), file: file.file, bytes: file.bytes, digest: file.digest, jobId: input.jobId,
      programDigest: input.programDigest, training: input.training === null ? null : JSON.stringify(input.training),
      attach: input.attach === undefined ? null : JSON.stringify(input.attach), createdAt: input.now,
    }
    return { row, file }
  }

  /** Step 2 (inside the job's completion transaction): the row, replacing the key's adapter of the same name. */
  commit (prepared: PreparedAdapter): AdapterRow | undefined { return this.store.putAdapter(prepared.row) }

  discard (prepared: PreparedAdapter): void { this.files.remove(prepared.file.file) }

  /** After the commit: the replaced adapter's file goes. */
  replaced (old: AdapterRow | undefined): void { if (old !== undefined) this.files.remove(old.file) }

  /**
   * The Program with every `init: {adapter: {name, param}}` of a param replaced by `{tensor}` from the key's adapter
   * (ADAPTER_NOT_FOUND when the key has none of that name; ADAPTER_MISMATCH when it was trained on another model or
   * revision, lacks the param, or holds it with another shape or dtype). Programs without such inits are returned as
   * they are.
   */
  resolve (kid: string, program: Program, served: { name: string; revision: string }): Program {
    const params = program.params
    if (params === undefined) return program
    const refs = Object.entries(params).filter(([, decl]) => 'adapter' in decl.init)
    if (refs.length === 0) return program
    const loaded = new Map<string, { row: AdapterRow; values: Record<string, Tensor> }>()
    const resolved: Record<string, ParamDecl> = { ...params }
    for (const [param, decl] of refs) {
      const ref = (decl.init as { adapter: { name: string; param: string } }).adapter
      let adapter = loaded.get(ref.name)
      if (adapter === undefined) {
        const row = this.get(kid, ref.name)
        if (row.model !== served.name || row.revision !== served.revision) {
          throw new WeftError('ADAPTER_MISMATCH', `adapter '${ref.name}' was trained on ${row.model} at revision ${row.revision}; this Program runs on ${served.name} at revision ${served.revision}`,
            { adapter: ref.name, param, adapterModel: row.model, adapterRevision: row.revision, model: served.name, revision: served.revision })
        }
        adapter = { row, values: this.files.read(row.file, row.digest) }
        loaded.set(ref.name, adapter)
      }
      const value = adapter.values[ref.param]
      if (value === undefined) {
        throw new WeftError('ADAPTER_MISMATCH', `adapter '${ref.name}' has no param '${ref.param}' (it has ${Object.keys(adapter.values).join(', ')})`, { adapter: ref.name, param, missing: ref.param, has: Object.keys(adapter.values) })
      }
      if (value.dtype !== decl.dtype || value.shape.length !== decl.shape.length || value.shape.some((d, i) => d !== decl.shape[i])) {
        throw new WeftError('ADAPTER_MISMATCH', `param '${param}' is declared ${decl.dtype} [${decl.shape.join(', ')}] but adapter '${ref.name}'.'${ref.param}' is ${value.dtype} [${value.shape.join(', ')}]`,
          { adapter: ref.name, param, declared: { shape: decl.shape, dtype: decl.dtype }, stored: { shape: value.shape, dtype: value.dtype } })
      }
      resolved[param] = { ...decl, init: { tensor: value } }
    }
    const out = { ...program, params: resolved }
    this.used.set(out, [...loaded.entries()].map(([name, { row }]) => `${name}@${row.digest}`).sort())
    return out
  }

  /** `<name>@<digest>` of the adapters `resolve` read this (resolved) Program's inits from, sorted; [] for any other Program. */
  usedBy (program: Program): string[] { return this.used.get(program) ?? [] }
}
