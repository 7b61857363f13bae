/**
 * The Program: Weft's typed, declarative intervention format (an SSA graph, no code).
 * This file is the contract every package codes against; spec/program.md is its normative prose.
 */
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
  /** trainable tensors the Program owns, by name; `['trainable', { name }, []]` uses one (spec/program.md, Sessions and training) */
  params?: Record<string, ParamDecl>
  /** a declarative training loop over this (first) trace; runs entirely on the host */
  train?: TrainSpec
  /** keep the final params as a named adapter on the host (the host persists them; they leave only if saved) */
  keep?: KeepSpec
  /** later traces of the same session: they see the final params and may use earlier traces' values with `from` */
  then?: Trace[]
}

/** One later trace of a session: a Program's own parts; model, version and params are the session's. */
export interface Trace {
  mode: ProgramMode
  generate?: GenerateOptions
  invokes: Invoke[]
  nodes: ProgramNode[]
  locations?: (SourceLocation | null)[]
}

/** A trainable tensor: float32 only in version 1. */
export interface ParamDecl {
  shape: number[]
  dtype: 'float32'
  init: ParamInit
}

/**
 * Initial value. `normal` is drawn by the specified generator (SplitMix64 + Box–Muller, spec/program.md) so every
 * host computes the same numbers. `adapter` names a kept adapter of the caller: the host (or the local executor)
 * replaces it with `{ tensor }` before the engine sees the Program.
 */
export type ParamInit =
  | { zeros: true }
  | { tensor: Tensor }
  | { normal: { mean: number; std: number; seed: number } }
  | { adapter: { name: string; param: string } }

export type OptimizerKind = 'sgd' | 'adam' | 'adamw'

/** PyTorch's torch.optim semantics and defaults (SGD: momentum 0, dampening 0; Adam: betas [0.9, 0.999], eps 1e-8; AdamW: weightDecay 0.01). */
export interface OptimizerSpec {
  kind: OptimizerKind
  lr: number
  betas?: [number, number]
  eps?: number
  weightDecay?: number
  momentum?: number
  dampening?: number
  nesterov?: boolean
  maximize?: boolean
}

export interface TrainSpec {
  /** names of declared params to update (the others stay fixed) */
  params: string[]
  /** index of a node of the first trace holding a scalar float: the loss minimised */
  loss: number
  optimizer: OptimizerSpec
  /**
   * the invokes of each step (each batch has exactly `invokes.length` invokes, so node `invoke` attrs keep their
   * meaning); absent = every step uses the Program's `invokes` (full batch)
   */
  batches?: Invoke[][]
  /** passes over `batches` (default 1); steps = epochs × batches (or `steps` when given) */
  epochs?: number
  /** total optimizer steps; default epochs × number of batches (1 batch when `batches` is absent) */
  steps?: number
}

export interface KeepSpec {
  /** adapter name: 1–64 chars of [A-Za-z0-9._-] */
  adapter: string
  /**
   * how the kept params apply to later traces and generations (the SDK's `model.withAdapter(name)` records these edits
   * before every trace's own nodes); the host stores it with the adapter and never applies it itself
   */
  attach?: AdapterAttachment[]
}

/**
 * One way a kept adapter applies (spec/program.md, Keeping): `lora` adds `(x @ a) @ b · scale` to a module's output,
 * x its input; `steer` adds a param (broadcast) to a site at every position; `probe` reads a site through `x @ w + b`
 * and changes nothing.
 */
export type AdapterAttachment =
  | { lora: { module: string; a: string; b: string; scale: number } }
  | { steer: { site: string; port: SitePort; param: string } }
  | { probe: { site: string; port: SitePort; w: string; b?: string } }

/** Ports of a site. `output` is a module's primary output (first tuple element); `input` its first positional input. */
export type SitePort = 'output' | 'input'

/** How a training loop ended (the provider's and the embedded store's adapter metadata, and a run's result). */
export interface TrainingSummary { steps: number; completed: number; cancelled: boolean; finalLoss: number | null }

/**
 * A kept adapter as its keeper describes it (spec/provider-protocol.md §3.7; the embedded store uses the same
 * fields): never its values.
 */
export interface AdapterInfo {
  name: string
  id: string
  model: string
  revision: string
  params: Record<string, { shape: number[]; dtype: string }>
  bytes: number
  /** "sha256:" + hex(SHA-256(deterministic CBOR {param: Tensor})) */
  digest: string
  job: string | null
  programDigest: string | null
  training: TrainingSummary | null
  /** how it applies to later traces and generations (`keep.attach`), or null (then `withAdapter` only declares its params) */
  attach: AdapterAttachment[] | null
  createdAt: number
}
