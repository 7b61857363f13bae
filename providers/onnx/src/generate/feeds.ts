/**
 * Run-time inputs of one generation step. The cache has one slot per position (capacity: longest prompt + new
 * tokens − 1); a row's slots [0, its context length) hold its tokens, so each row sees exactly its own context.
 * Step 0 feeds the right-padded prompts (padding slots get their own index as position: scatter targets stay
 * distinct, the mask hides them); step s ≥ 1 feeds each row's previous token at position prompt + s − 1.
 */
import * as ort from 'onnxruntime-node'
import { WeftError, type Program, type Tensor } from '@weft/core'
import { paramValue, type FeedSpec } from '../compile/layout.js'
import type { ModelGraph } from '../graph/model-graph.js'
import type { KvSpec } from '../graph/model-graph.js'
import { toOrt } from '../runtime/session.js'
import { tokenFeeds } from '../runtime/forward.js'

export interface StepState {
  step: number
  prompts: readonly (readonly number[])[]
  /** every token chosen so far per row (also after a stop token: stopped rows keep running) */
  chosen: readonly (readonly number[])[]
  capacity: number
  /** the longest prompt: step 0's width (fixed for the job) */
  promptWidth: number
}

/** A row's context length at this step: its prompt plus the tokens fed so far. */
const contextLength = (state: StepState, row: number): number => state.prompts[row]!.length + state.step

const i64 = (data: BigInt64Array, dims: number[]): ort.Tensor => new ort.Tensor('int64', data, dims)

/**
 * input_ids, position_ids and attention_mask of the KV graph for this step. Ids are validated (and chosen) in
 * [0, vocab), so every value is written through little-endian int32 views of the int64 buffers (as `tokenFeeds`).
 */
function modelInputs (state: StepState): { ids: ort.Tensor; positions: ort.Tensor; mask: ort.Tensor } {
  const rows = state.prompts.length
  const width = state.step === 0 ? state.promptWidth : 1
  let ids: BigInt64Array
  const positions = new BigInt64Array(rows * width)
  const pos32 = new Int32Array(positions.buffer)
  const mask = new BigInt64Array(rows * state.capacity)
  const mask32 = new Int32Array(mask.buffer)
  if (state.step === 0) {
    // right-padded prompts (pad id 0); every slot, padding too, gets its own index as position
    ids = tokenFeeds(state.prompts, width).ids
    for (let r = 0; r < rows; r++) for (let t = 0; t < width; t++) pos32[2 * (r * width + t)] = t
  } else {
    ids = new BigInt64Array(rows)
    const ids32 = new Int32Array(ids.buffer)
    for (let r = 0; r < rows; r++) {
      ids32[2 * r] = state.chosen[r]![state.step - 1]!
      pos32[2 * r] = state.prompts[r]!.length + state.step - 1
    }
  }
  for (let r = 0; r < rows; r++) {
    const real = contextLength(state, r)
    const base = 2 * r * state.capacity
    for (let j = 0; j < real; j++) mask32[base + 2 * j] = 1
  }
  return { ids: i64(ids, [rows, width]), positions: i64(positions, [rows, width]), mask: i64(mask, [rows, state.capacity]) }
}

/** Zero caches [rows, kvHeads, capacity, headDim] for step 0. */
export function emptyCache (kv: KvSpec, rows: number, capacity: number): ort.Tensor[] {
  const dims = [rows, kv.kvHeads, capacity, kv.headDim]
  return kv.layers.flatMap(() => [0, 1].map(() => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims)))
}

/** Every feed of a compiled step graph: model inputs, per-invoke bounds, constants, and the cache (key, value per layer). */
export function stepFeeds (graph: ModelGraph, kv: KvSpec, specs: readonly FeedSpec[], inputs: ReadonlySet<string>, slice: Program,
  state: StepState, cache: readonly ort.Tensor[]): Record<string, ort.Tensor> {
  const model = modelInputs(state)
  const feeds: Record<string, ort.Tensor> = {}
  for (const feed of specs) {
    switch (feed.kind) {
      case 'input_ids': feeds[feed.name] = model.ids; break
      case 'position_ids': feeds[feed.name] = model.positions; break
      case 'attention_mask': feeds[feed.name] = model.mask; break
      case 'bounds': {
        const bounds = BigInt64Array.from([feed.row, feed.row + 1, contextLength(state, feed.row)].map(BigInt))
        feeds[feed.name] = i64(bounds, [3])
        break
      }
      case 'const': feeds[feed.name] = toOrt(slice.nodes[feed.node]![1].value as unknown as Tensor); break
      case 'trainable': feeds[feed.name] = toOrt(paramValue(slice, feed.param)); break
      default: throw new WeftError('INTERNAL', `generation cannot bind feed kind '${(feed as { kind: string }).kind}'`)
    }
  }
  for (const [name, value] of [[graph.inputs.inputIds, model.ids], [graph.inputs.attentionMask, model.mask], [graph.inputs.positionIds, model.positions]] as const) {
    if (name !== undefined && inputs.has(name)) feeds[name] = value
  }
  kv.layers.forEach((layer, i) => {
    if (inputs.has(layer.pastKey)) feeds[layer.pastKey] = cache[2 * i]!
    if (inputs.has(layer.pastValue)) feeds[layer.pastValue] = cache[2 * i + 1]!
  })
  return feeds
}
