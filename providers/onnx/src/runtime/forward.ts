/** Plain forward passes over a batch of token-id rows: right padding, masks, positions, per-output-set sessions. */
import type * as ort from 'onnxruntime-node'
import { WeftError, type Tensor } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import { resolveOutput, withOutputs } from './outputs.js'
import { createSession, runGraph, type SessionInit } from './session.js'

export interface BatchFeeds { feeds: Record<string, Tensor>; lengths: number[] }

/** Right-pads rows with `padId`; mask 1 on real tokens; positions 0..len-1 (0 on padding). */
export function padBatch (graph: ModelGraph, rows: number[][], padId = 0, seqLength?: number): BatchFeeds {
  if (rows.length === 0 || rows.some(r => r.length === 0)) throw new WeftError('PROGRAM_INVALID', 'every row needs at least one token')
  const vocab = graph.manifest.vocabSize
  const seq = Math.max(seqLength ?? 0, ...rows.map(r => r.length))
  const ids = new BigInt64Array(rows.length * seq)
  const mask = new BigInt64Array(rows.length * seq)
  const positions = new BigInt64Array(rows.length * seq)
  rows.forEach((row, b) => row.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new WeftError('PROGRAM_INVALID', `token id ${id} is outside the vocabulary [0, ${vocab})`, { row: b, position: t })
    ids[b * seq + t] = BigInt(id); mask[b * seq + t] = 1n; positions[b * seq + t] = BigInt(t)
  }))
  if (padId !== 0) rows.forEach((row, b) => { for (let t = row.length; t < seq; t++) ids[b * seq + t] = BigInt(padId) })
  const shape = [rows.length, seq]
  const feeds: Record<string, Tensor> = {
    [graph.inputs.inputIds]: { dtype: 'int64', shape, data: ids },
    [graph.inputs.attentionMask]: { dtype: 'int64', shape, data: mask },
  }
  if (graph.inputs.positionIds !== undefined) feeds[graph.inputs.positionIds] = { dtype: 'int64', shape, data: positions }
  return { feeds, lengths: rows.map(r => r.length) }
}

/** Sessions of one graph keyed by their output set. */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>()
  constructor (private readonly graph: ModelGraph, private readonly init: SessionInit = {}) {}

  get (outputs: string[]): Promise<ort.InferenceSession> {
    const resolved = outputs.map(name => resolveOutput(this.graph, name))
    const key = resolved.map(r => r.value).sort().join('\n')
    let session = this.sessions.get(key)
    if (session === undefined) {
      session = createSession(this.graph, withOutputs(this.graph.model, resolved), this.init)
      session.catch(() => this.sessions.delete(key))
      this.sessions.set(key, session)
    }
    return session
  }

  async dispose (): Promise<void> {
    const all = [...this.sessions.values()]
    this.sessions.clear()
    await Promise.all(all.map(async s => (await s.catch(() => null))?.release()))
  }
}

/**
 * Runs the rows as one right-padded batch (in chunks of `graph.maxBatch` rows, all padded to the same length,
 * when the graph is specialised to a batch size); returns each requested name's padded [batch, …] tensor.
 */
export async function forwardBatch (graph: ModelGraph, sessions: SessionCache, rows: number[][], outputs: string[] = ['logits']): Promise<Record<string, Tensor>> {
  const session = await sessions.get(outputs)
  const values = outputs.map(name => resolveOutput(graph, name).value)
  const chunk = graph.maxBatch ?? rows.length
  const seq = Math.max(0, ...rows.map(r => r.length))
  const parts: Record<string, Tensor>[] = []
  for (let start = 0; start < rows.length; start += chunk) {
    parts.push(await runGraph(session, padBatch(graph, rows.slice(start, start + chunk), 0, seq).feeds, values))
  }
  const out: Record<string, Tensor> = {}
  outputs.forEach((name, i) => { out[name] = concatRows(parts.map(part => part[values[i]!]!)) })
  return out
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
