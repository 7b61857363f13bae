/** Plain forward passes over a batch of token-id rows: right padding, masks, positions, per-output-set sessions. */
import type * as ort from 'onnxruntime-node'
import { WeftError, type Tensor } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import { resolveOutput, withOutputs } from './outputs.js'
import { createSession, runGraph, type SessionInit } from './session.js'
import { SessionCache } from './session-cache.js'

interface BatchFeeds { feeds: Record<string, Tensor>; lengths: number[] }

/** Right-pads rows with `padId`; mask 1 on real tokens; positions 0..len-1 (0 on padding). */
export function padBatch (graph: ModelGraph, rows: number[][], padId = 0, seqLength?: number): BatchFeeds {
  if (rows.length === 0 || rows.some(r => r.length === 0)) throw new WeftError('PROGRAM_INVALID', 'every row needs at least one token')
  const vocab = graph.manifest.vocabSize
  let seq = seqLength ?? 0
  for (const row of rows) if (row.length > seq) seq = row.length
  rows.forEach((row, b) => {
    for (let t = 0; t < row.length; t++) {
      const id = row[t]!
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new WeftError('PROGRAM_INVALID', `token id ${id} is outside the vocabulary [0, ${vocab})`, { row: b, position: t })
    }
  })
  const { ids, mask, positions } = tokenFeeds(rows, seq, padId)
  const shape = [rows.length, seq]
  const feeds: Record<string, Tensor> = {
    [graph.inputs.inputIds]: { dtype: 'int64', shape, data: ids },
    [graph.inputs.attentionMask]: { dtype: 'int64', shape, data: mask },
  }
  if (graph.inputs.positionIds !== undefined) feeds[graph.inputs.positionIds] = { dtype: 'int64', shape, data: positions }
  return { feeds, lengths: rows.map(r => r.length) }
}

/**
 * int64 ids, mask and positions `[rows, seq]` for already-checked ids in [0, 2^31): written through
 * little-endian int32 views of the int64 buffers (no BigInt per element; high words stay 0).
 */
export function tokenFeeds (rows: readonly (readonly number[])[], seq: number, padId = 0): { ids: BigInt64Array; mask: BigInt64Array; positions: BigInt64Array } {
  const n = rows.length * seq
  const ids = new BigInt64Array(n)
  const mask = new BigInt64Array(n)
  const positions = new BigInt64Array(n)
  const ids32 = new Int32Array(ids.buffer)
  const mask32 = new Int32Array(mask.buffer)
  const pos32 = new Int32Array(positions.buffer)
  for (let b = 0; b < rows.length; b++) {
    const row = rows[b]!
    const base = 2 * b * seq
    for (let t = 0; t < row.length; t++) {
      const k = base + 2 * t
      ids32[k] = row[t]!; mask32[k] = 1; pos32[k] = t
    }
    for (let t = row.length; t < seq && padId !== 0; t++) ids[b * seq + t] = BigInt(padId)
  }
  return { ids, mask, positions }
}

/** Plain-forward sessions of one graph keyed by their output set (the shared LRU, default 16 output sets). */
export class ForwardSessions {
  readonly cache: SessionCache<ort.InferenceSession>
  /** options of sessions created from now on (the backend settles prepacking once the graph's size is known) */
  init: SessionInit
  constructor (private readonly graph: ModelGraph, init: SessionInit = {}, capacity = 16) {
    this.init = init
    this.cache = new SessionCache(capacity)
  }

  async get (outputs: string[]): Promise<ort.InferenceSession> {
    const { key, make } = this.plan(outputs)
    return (await this.cache.get(key, make)).value
  }

  /** Runs `fn` with the session for `outputs`; an eviction meanwhile does not release it under the run. */
  use<R> (outputs: string[], fn: (session: ort.InferenceSession, values: string[]) => Promise<R>): Promise<R> {
    const { key, make, values } = this.plan(outputs)
    return this.cache.use(key, make, session => fn(session, values))
  }

  private plan (outputs: string[]): { key: string; values: string[]; make: () => Promise<ort.InferenceSession> } {
    const resolved = outputs.map(name => resolveOutput(this.graph, name))
    const values = resolved.map(r => r.value)
    const key = [...values].sort().join('\n')
    return { key, values, make: () => createSession(this.graph, withOutputs(this.graph.model, resolved), this.init) }
  }

  dispose (): Promise<void> { return this.cache.clear() }
}

/**
 * Runs the rows as one right-padded batch (in chunks of `graph.maxBatch` rows, all padded to the same length,
 * when the graph is specialised to a batch size); returns each requested name's padded [batch, …] tensor.
 */
export async function forwardBatch (graph: ModelGraph, sessions: ForwardSessions, rows: number[][], outputs: string[] = ['logits']): Promise<Record<string, Tensor>> {
  return sessions.use(outputs, async (session, values) => {
    const chunk = graph.maxBatch ?? rows.length
    let seq = 0
    for (const row of rows) if (row.length > seq) seq = row.length
    const parts: Record<string, Tensor>[] = []
    for (let start = 0; start < rows.length; start += chunk) {
      parts.push(await runGraph(session, padBatch(graph, rows.slice(start, start + chunk), 0, seq).feeds, values))
    }
    const out: Record<string, Tensor> = {}
    outputs.forEach((name, i) => { out[name] = concatRows(parts.map(part => part[values[i]!]!)) })
    return out
  })
}

function concatRows (tensors: Tensor[]): Tensor {
  if (tensors.length === 1) return tensors[0]!
  const first = tensors[0]!
  const total = tensors.reduce((n, t) => n + t.data.length, 0)
  const data = new (first.data.constructor as new (n: number) => Tensor['data'])(total)
  let offset = 0
  for (const t of tensors) { (data as Float32Array).set(t.data as Float32Array, offset); offset += t.data.length }
  return { dtype: first.dtype, shape: [tensors.reduce((n, t) => n + t.shape[0]!, 0), ...first.shape.slice(1)], data }
}

/** Row `row` of a padded batch tensor with every `seq`-long axis cut to `length` (leading batch axis kept, = 1). */
export function unpadRow (tensor: Tensor, row: number, length: number, seq: number): Tensor {
  const shape = [...tensor.shape]
  const target = [1, ...shape.slice(1).map(d => d === seq ? length : d)]
  const inner = shape.slice(1)
  const count = target.reduce((a, b) => a * b, 1)
  const data = new (tensor.data.constructor as new (n: number) => Tensor['data'])(count)
  const strides = inner.map((_, i) => inner.slice(i + 1).reduce((a, b) => a * b, 1))
  const base = row * inner.reduce((a, b) => a * b, 1)
  const dims = target.slice(1)
  const index = new Array<number>(dims.length).fill(0)
  for (let k = 0; k < count; k++) {
    let offset = base
    for (let i = 0; i < dims.length; i++) offset += index[i]! * strides[i]!
    ;(data as unknown as Float32Array)[k] = (tensor.data as unknown as Float32Array)[offset]!
    for (let i = dims.length - 1; i >= 0; i--) { if (++index[i]! < dims[i]!) break; index[i] = 0 }
  }
  return { dtype: tensor.dtype, shape: target, data }
}
