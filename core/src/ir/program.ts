/**
 * The Program: Weft's typed, declarative intervention format (an SSA graph, no code).
 * This file is the contract every package codes against; spec/program.md is its normative prose.
 */
import type { DType } from '../tensor/tensor.js'
import type { Tensor } from '../tensor/tensor.js'

/** Wire version of the Program structure. */
export const PROGRAM_VERSION = 1

/** Which model a Program targets. `revision` is `sha256:<hex>` of the weights, or null for "whatever the host serves". */
export interface ModelRef {
  name: string
  revision: string | null
}

/** One batch row group: token ids (preferred, exact) or text the host tokenizes with the model's tokenizer. */
export type Invoke = { ids: number[] } | { text: string }

/**
 * One index item per leading dimension, like numpy basic indexing:
 * - `null`            → `:` (whole dimension)
 * - integer           → pick one element (negative counts from the end); the dimension is dropped
 * - `[start, stop, step]` with each possibly null → a slice (negative bounds count from the end)
 * Dimensions past the list are kept whole.
 */
export type IndexItem = null | number | [number | null, number | null, number | null]
export type IndexSpec = IndexItem[]

/** Attribute values are plain CBOR data. Tensors (constants) are allowed only where an op says so. */
export type AttrValue = null | boolean | number | string | Tensor | AttrValue[] | { [key: string]: AttrValue }
export type Attrs = Record<string, AttrValue>

/**
 * A node: `[op, attrs, inputs]`. Inputs are indices of earlier nodes (strict SSA: input < own index).
 * Ops with several outputs do not exist: an op that could return two things takes an attr choosing one.
 */
export type ProgramNode = [op: string, attrs: Attrs, inputs: number[]]

/** Optional source locations the SDK records, parallel to `nodes` (same length or absent). */
export interface SourceLocation { file?: string; line?: number; column?: number; text?: string }

export type ProgramMode = 'trace' | 'generate'

/** Token choice per step: greedy (argmax, lowest id on ties) or seeded sampling (see spec/program.md, Generation). */
export type GenerateStrategy = 'greedy' | { temperature: number; topK?: number; seed: number }

/** `mode: 'generate'`: how many tokens to add after each invoke's prompt and how to pick them. */
export interface GenerateOptions {
  /** number of new tokens per invoke (≥ 1); steps are 0 … maxNewTokens − 1 */
  maxNewTokens: number
  strategy: GenerateStrategy
  /** a row whose new token is one of these stops (the token is kept); absent = never stop early */
  stopTokenIds?: number[]
}

/** Step attr of `read`/`write` in generate mode: 0 = the prompt pass, k = the forward that feeds new token k; 'all' = every step. */
export type Step = number | 'all'

export interface Program {
  version: number                 // PROGRAM_VERSION
  model: ModelRef
  mode: ProgramMode
  /** required when `mode` is 'generate', absent otherwise */
  generate?: GenerateOptions
  invokes: Invoke[]
  /** The graph. Results are named by `save` nodes (`['save', { name }, [x]]`); nothing else leaves the provider. */
  nodes: ProgramNode[]
  /** optional debugging info, not part of the Program's meaning but part of its digest when present */
  locations?: (SourceLocation | null)[]
}

/** Ports of a site. `output` is a module's primary output (first tuple element); `input` its first positional input. */
export type SitePort = 'output' | 'input'

export type { DType }
