/**
 * Test helpers for generation: the float64 oracle generating by repeated full forwards (no cache), with edits applied
 * per position to the step that owns it (prompt positions: step 0; position P + k − 1: step k), as a KV cache keeps them.
 */
import { readFile } from 'node:fs/promises'
import { PROGRAM_VERSION, type Attrs, type GenerateOptions, type Program, type ProgramNode } from '@weft/core'
import { readCheckpointWeights, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights, type Activations } from './reference/forward.js'
import { mat, type Mat } from './reference/math.js'

/** An edit of one position's row of a module output at the step that owns the position (return false to leave it). */
export type RowEdit = (path: string, step: number, row: Float64Array) => boolean

export interface Oracle {
  config: Record<string, any>
  weights: Map<string, Tensor64>
  vocab: number
}

export async function loadOracle (dir: string): Promise<Oracle> {
  const config = JSON.parse(await readFile(dir + 'config.json', 'utf8'))
  return { config, weights: await readCheckpointWeights(dir), vocab: config.vocab_size }
}

/** One full forward of `ids` (prompt length `prompt`) with `edit` applied row by row. */
export function oracleForward (o: Oracle, ids: number[], prompt: number, edit?: RowEdit): Activations {
  const hook = edit === undefined ? undefined : (path: string, value: Mat): Mat | undefined => {
    let copy: Mat | null = null
    for (let p = 0; p < value.rows; p++) {
      const step = p < prompt ? 0 : p - prompt + 1
      const row = value.data.slice(p * value.cols, (p + 1) * value.cols)
      if (!edit(path, step, row)) continue
      copy ??= mat(value.rows, value.cols, value.data.slice())
      copy.data.set(row, p * value.cols)
    }
    return copy ?? undefined
  }
  return referenceForwardWeights(o.config, o.weights, ids, hook === undefined ? {} : { hook })
}

/** Last-position logits of each step's forward and the greedy tokens, by repeated full forwards. */
export function oracleGreedy (o: Oracle, prompt: number[], steps: number, edit?: RowEdit): { tokens: number[]; logits: Float64Array[]; forwards: Activations[] } {
  const ids = [...prompt]
  const tokens: number[] = []
  const logits: Float64Array[] = []
  const forwards: Activations[] = []
  for (let s = 0; s < steps; s++) {
    const acts = oracleForward(o, ids, prompt.length, edit)
    const all = acts.get('logits')!.data
    const last = all.slice((ids.length - 1) * o.vocab, ids.length * o.vocab)
    let best = 0
    for (let v = 1; v < o.vocab; v++) if (last[v]! > last[best]!) best = v
    tokens.push(best)
    logits.push(last)
    forwards.push(acts)
    ids.push(best)
  }
  return { tokens, logits, forwards }
}

export function generateProgram (model: string, invokes: number[][], nodes: ProgramNode[], generate: GenerateOptions): Program {
  return { version: PROGRAM_VERSION, model: { name: model, revision: null }, mode: 'generate', generate, invokes: invokes.map(ids => ({ ids })), nodes }
}

export const site = (op: 'read' | 'write', path: string, step: number | 'all', invoke = 0, extra: Attrs = {}): [string, Attrs] =>
  [op, { site: path, port: 'output', invoke, step, ...extra }]

/** Largest |a − b| / (max |b| or 1). */
export function maxRelError (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!))
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!))
  return worst / scale
}
