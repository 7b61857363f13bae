/**
 * Batch layout: every invoke of every job becomes one row, right-padded to the longest; plus the feeds
 * (ids, mask, positions, per-invoke bounds, constants) that bind a compiled graph to one concrete batch.
 */
import { WeftError, initParam, numel, type Program, type Tensor } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import { tokenFeeds } from '../runtime/forward.js'

interface BatchRow { job: number; invoke: number; ids: readonly number[] }
export interface BatchLayout { rows: BatchRow[]; maxLength: number }

/** A run-time input of a compiled graph and where its value comes from. */
export type FeedSpec =
  | { kind: 'input_ids' | 'attention_mask' | 'position_ids'; name: string }
  | { kind: 'bounds'; name: string; row: number }
  | { kind: 'const'; name: string; job: number; node: number }
  | { kind: 'trainable'; name: string; job: number; param: string }

/** A plain tensor ready to wrap in an onnxruntime Tensor. */
export interface FeedTensor { type: string; data: Tensor['data']; dims: number[] }

/** Rows in job order, then invoke order. `idsOf(job, invoke)` gives the (already tokenized) ids. */
export function batchLayout (jobs: readonly { program: Program }[], idsOf: (job: number, invoke: number) => readonly number[]): BatchLayout {
  const rows: BatchRow[] = []
  jobs.forEach((job, j) => job.program.invokes.forEach((_, k) => rows.push({ job: j, invoke: k, ids: idsOf(j, k) })))
  return { rows, maxLength: Math.max(1, ...rows.map(r => r.ids.length)) }
}

export function rowOf (layout: BatchLayout, job: number, invoke: number): number {
  const row = layout.rows.findIndex(r => r.job === job && r.invoke === invoke)
  if (row < 0) throw new Error(`no row for job ${job} invoke ${invoke}`)
  return row
}

/** The model's own inputs for a layout: right padding with id 0, mask 1 on real tokens, positions 0…len-1. */
function modelFeeds (graph: ModelGraph, layout: BatchLayout): Record<string, FeedTensor> {
  const b = layout.rows.length
  const s = layout.maxLength
  const { ids, mask, positions } = tokenFeeds(layout.rows.map(r => r.ids), s)
  const feeds: Record<string, FeedTensor> = {
    [graph.inputs.inputIds]: { type: 'int64', data: ids, dims: [b, s] },
    [graph.inputs.attentionMask]: { type: 'int64', data: mask, dims: [b, s] },
  }
  if (graph.inputs.positionIds !== undefined) feeds[graph.inputs.positionIds] = { type: 'int64', data: positions, dims: [b, s] }
  return feeds
}

/** Binds every feed of a compiled graph. */
export function bindFeeds (graph: ModelGraph, feeds: readonly FeedSpec[], jobs: readonly { program: Program }[], layout: BatchLayout): Record<string, FeedTensor> {
  const model = modelFeeds(graph, layout)
  const out: Record<string, FeedTensor> = {}
  for (const feed of feeds) {
    if (feed.kind === 'bounds') {
      const length = layout.rows[feed.row]!.ids.length
      const bounds = new BigInt64Array(3)
      bounds[0] = BigInt(feed.row); bounds[1] = BigInt(feed.row + 1); bounds[2] = BigInt(length)
      out[feed.name] = { type: 'int64', data: bounds, dims: [3] }
    } else if (feed.kind === 'trainable') {
      const value = paramValue(jobs[feed.job]!.program, feed.param)
      out[feed.name] = { type: value.dtype, data: value.data, dims: [...value.shape] }
    } else if (feed.kind === 'const') {
      const value = jobs[feed.job]!.program.nodes[feed.node]![1].value as unknown as Tensor
      if (value.data.length !== numel(value.shape)) {
        throw new WeftError('EXECUTION_FAILED', `node ${feed.node} (const): ${value.data.length} elements do not fill shape [${value.shape.join(',')}]`,
          { job: feed.job, node: feed.node, op: 'const' })
      }
      out[feed.name] = { type: value.dtype, data: value.data, dims: [...value.shape] }
    } else {
      out[feed.name] = model[feed.name]!
    }
  }
  return out
}

/** The value a `trainable` feed binds: the param's tensor init (the session runner resolves every init to one), else its initial value. */
export function paramValue (program: Program, name: string): Tensor {
  const decl = program.params?.[name]
  if (decl === undefined) throw new WeftError('PROGRAM_INVALID', `trainable: '${name}' is not a declared param`)
  if ('tensor' in decl.init) return decl.init.tensor
  return initParam(name, decl)
}
