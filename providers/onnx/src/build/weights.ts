/**
 * Weight placement for built graphs (see docs/decisions/2026-11-27-onnx-engine.md): float32 tensors whose layout
 * already fits are ONNX external data pointing into the safetensors files themselves (zero copies); tensors that
 * need a transform (transpose for MatMul, f16/bf16 → f32) are written once, page-aligned, into a cache file.
 * Checkpoint files are hard-linked (copied if linking fails) next to it, because ORT resolves every external
 * `location` inside one folder and refuses symlinks that leave it.
 */
import { closeSync, copyFileSync, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync, realpathSync, rmSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import { create } from '@bufbuild/protobuf'
import { WeftError, progress, type DType } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import { readTensorF32, type Checkpoint, type TensorEntry } from '../safetensors/read.js'
import { FLOAT, type GraphBuilder } from './graph-builder.js'

const PAGE = 4096
const TRANSFORMED_FILE = 'weft-transformed.bin'

export interface ParamBinding { initializer: string; shape: number[]; dtype: DType; transpose?: number[] }

interface Planned { name: string; entry: TensorEntry; transpose: boolean; offset: number; length: number }

function external (name: string, dims: number[], location: string, offset: number, length: number): onnx.TensorProto {
  return create(onnx.TensorProtoSchema, {
    name, dataType: FLOAT, dims: dims.map(BigInt), dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
    externalData: [['location', location], ['offset', String(offset)], ['length', String(length)]]
      .map(([key, value]) => create(onnx.StringStringEntryProtoSchema, { key, value })),
  })
}

export class WeightPlan {
  readonly params = new Map<string, ParamBinding>()
  private readonly planned: Planned[] = []
  private readonly created = new Map<string, string>()
  private transformedBytes = 0

  constructor (readonly checkpoint: Checkpoint, private readonly builder: GraphBuilder) {}

  has (name: string): boolean { return this.checkpoint.tensors.has(name) }

  entry (name: string): TensorEntry {
    const entry = this.checkpoint.tensors.get(name)
    if (entry === undefined) {
      throw new WeftError('MODEL_LOAD_FAILED', `checkpoint in ${this.checkpoint.dir} has no tensor '${name}'`, { tensor: name })
    }
    return entry
  }

  /** Initializer holding HF tensor `name` as stored (float32). */
  tensor (name: string): string { return this.use(name, false) }

  /** Initializer holding HF 2-D tensor `name` transposed ([out, in] Linear weight → [in, out] for MatMul). */
  transposed (name: string): string { return this.use(name, true) }

  private use (name: string, transpose: boolean): string {
    const key = `${name}:${transpose ? 'T' : ''}`
    const existing = this.created.get(key)
    if (existing !== undefined) return existing
    const entry = this.entry(name)
    if (transpose && entry.shape.length !== 2) throw new Error(`cannot transpose ${entry.shape.length}-D tensor ${name}`)
    const dims = transpose ? [entry.shape[1]!, entry.shape[0]!] : entry.shape
    const initName = transpose ? `${name}:T` : name
    if (!transpose && entry.dtype === 'F32') {
      this.builder.initializer(external(initName, dims, path.basename(entry.file), entry.offset, entry.length))
    } else {
      const length = dims.reduce((a, b) => a * b, 1) * 4
      const offset = this.transformedBytes
      this.transformedBytes += Math.ceil(length / PAGE) * PAGE
      this.planned.push({ name, entry, transpose, offset, length })
      this.builder.initializer(external(initName, dims, TRANSFORMED_FILE, offset, length))
    }
    if (!this.params.has(name) || !transpose) {
      this.params.set(name, { initializer: initName, shape: entry.shape, dtype: 'float32', ...(transpose ? { transpose: [1, 0] } : {}) })
    }
    this.created.set(key, initName)
    return initName
  }

  /** Records `alias` (e.g. a tied `lm_head.weight`) as the same parameter as `name`. */
  alias (alias: string, name: string): void {
    const binding = this.params.get(name)
    if (binding !== undefined) this.params.set(alias, binding)
  }

  /**
   * Materialises the external-data folder `<cacheRoot>/<revision>`: links the checkpoint files and writes the
   * transformed tensors once (atomically). Returns the folder external `location`s are relative to.
   */
  finalize (cacheRoot: string, revision: string): string {
    const dir = path.join(cacheRoot, revision.replace(/^sha256:/, '').slice(0, 32))
    mkdirSync(dir, { recursive: true })
    for (const file of this.checkpoint.files) linkInto(path.join(this.checkpoint.dir, file), path.join(dir, file))
    if (this.planned.length > 0) this.writeTransformed(dir)
    return dir
  }

  private writeTransformed (dir: string): void {
    const layoutPath = path.join(dir, 'weft-transformed.json')
    const layout = JSON.stringify(this.planned.map(p => [p.name, p.transpose, p.offset, p.length]))
    const target = path.join(dir, TRANSFORMED_FILE)
    if (existsSync(layoutPath) && existsSync(target) && readFileSync(layoutPath, 'utf8') === layout) return
    const temp = `${target}.${process.pid}.${Date.now()}.tmp`
    const fd = openSync(temp, 'w')
    const bar = progress(`building ${path.basename(this.checkpoint.dir)} (transposing weights)`, this.transformedBytes)
    try {
      ftruncateSync(fd, this.transformedBytes)
      for (const item of this.planned) {
        let data = readTensorF32(item.entry)
        if (item.transpose) data = transpose2d(data, item.entry.shape[0]!, item.entry.shape[1]!)
        writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, item.offset)
        bar.tick(data.byteLength)
      }
    } finally { closeSync(fd) }
    bar.end()
    renameSync(temp, target)
    writeFileSync(layoutPath, layout)
  }
}

function linkInto (linked: string, target: string): void {
  // hard-link the file itself: link(2) on a symlink (the Hugging Face cache's snapshots/ → blobs/) would copy
  // the link, whose relative target means nothing in the cache folder
  const source = realpathSync(linked)
  try { if (lstatSync(target).isSymbolicLink()) rmSync(target) } catch { /* no target yet */ }
  if (existsSync(target)) {
    const a = statSync(source); const b = statSync(target)
    if (a.ino === b.ino && a.dev === b.dev) return
    if (a.size === b.size && b.mtimeMs >= a.mtimeMs) return
  }
  const temp = `${target}.${process.pid}.tmp`
  try { linkSync(source, temp) } catch { copyFileSync(source, temp) }
  renameSync(temp, target)
}

function transpose2d (data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols)
  const block = 64
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block)
    for (let c0 = 0; c0 < cols; c0 += block) {
      const c1 = Math.min(cols, c0 + block)
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c]!
    }
  }
  return out
}
