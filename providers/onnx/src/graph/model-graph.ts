/**
 * ModelGraph: what every model loader (HF checkpoint builders, ONNX import) hands to the runner and the
 * intervention compiler. One contract for built and imported graphs.
 */
import type { onnx } from './onnx.js'
import type { Manifest, DType } from '@weft/core'

/** One layer's cache inputs (`past_key.<i>`, `past_value.<i>`) and outputs (`present_key.<i>`, `present_value.<i>`). */
export interface KvLayer { pastKey: string; pastValue: string; presentKey: string; presentValue: string }

/** What a KV-cache variant graph exposes (build/kv-cache.ts): one entry per layer, in order. */
export interface KvSpec { layers: KvLayer[]; kvHeads: number; headDim: number }

/** Where a site's value lives in the base graph. */
export interface SiteBinding {
  /** ONNX value name of the site's primary output (first element of a tuple-returning module) */
  output?: string
  /** ONNX value name of the module's first positional input */
  input?: string
}

/** Graph inputs every model graph exposes. Shapes: [batch, seq] int64; right padding; mask 1 = real token. */
export interface GraphInputs {
  inputIds: string          // 'input_ids'
  attentionMask: string     // 'attention_mask'
  positionIds?: string      // 'position_ids' (absent for imported graphs that compute positions themselves)
}

export interface ModelGraph {
  /** the base graph; weights are initializers (external data pointing into weight files, or inline) */
  model: onnx.ModelProto
  /** folder that external-data `location`s are relative to (null when all weights are inline) */
  externalDataDir: string | null
  inputs: GraphInputs
  /** ONNX value name of the logits [batch, seq, vocab] */
  logits: string
  /** manifest path → value names; every manifest entry with an output has a binding */
  sites: Map<string, SiteBinding>
  manifest: Manifest
  /** parameter name (HF key) → initializer name, for `param` reads and egress rules */
  params: Map<string, {
    initializer: string
    /** the HF parameter's shape */
    shape: number[]
    dtype: DType
    /** when set, the initializer holds the parameter permuted: Transpose(initializer, perm) gives the HF tensor */
    transpose?: number[]
  }>
  /**
   * Largest batch (rows per run) the graph accepts; absent = any. Imported exports traced at batch 1 often
   * specialise it (demo-gpt2-onnx: 1): runners must then run rows one at a time.
   */
  maxBatch?: number
  /** present on KV-cache variants (built with `kvCache: true`, for generation): the per-layer cache inputs/outputs */
  kv?: KvSpec
}

/** metadata_props key carrying a node's innermost module path on every node we build or import. */
export const SCOPE_KEY = 'weft.scope'
