/**
 * The model manifest: what a host publishes about a model so clients can validate Programs without the weights.
 * Symbolic dims: 'batch' (rows of one invoke: always 1 inside a Program), 'seq' (that invoke's token count),
 * numbers for fixed sizes. spec/manifest.md is its normative prose.
 */
import type { DType } from '../tensor/tensor.js'

export type SymDim = number | 'batch' | 'seq'

export interface SiteSignature {
  shape: SymDim[]
  dtype: DType
}

export interface ModuleEntry {
  /** Hugging Face module path (`transformer.h.3.attn`), or a finer site under its module (`transformer.h.3.attn.probs`). */
  path: string
  /** 'module': a real nn.Module; 'site': a finer hook point inside a module (attention probabilities, MLP activation). */
  kind: 'module' | 'site'
  /** HF class name (`GPT2Attention`, `Conv1D`, `LayerNorm`, `ModuleList`, …) or the site name (`attention_probs`). */
  type: string
  /** primary output (the first element when the HF module returns a tuple); absent for containers such as ModuleList */
  output?: SiteSignature
  /** first positional input */
  input?: SiteSignature
  /** true when `module_call` may apply this module to an arbitrary tensor of the input signature */
  callable: boolean
  /** number of parameters owned by this module and its children */
  parameters: number
}

/** One weight tensor (HF parameter name), for the `param` op and egress rules. */
export interface ParamEntry {
  name: string
  shape: number[]
  dtype: DType
}

export interface TokenizerInfo {
  /** `sha256:<hex>` of tokenizer.json */
  digest: string
  vocabSize: number
  bosTokenId: number | null
  eosTokenId: number | null
}

export interface Manifest {
  name: string
  /** `sha256:<hex>` over the weight files (sorted by name, each file's bytes in order) */
  revision: string
  /** 'gpt2' | 'llama' | 'gpt_neox' | 'qwen2' | 'onnx' (imported graphs) */
  family: string
  /** the checkpoint's config.json (or what an imported graph could infer) */
  config: Record<string, unknown>
  parameters: number
  /** modules and sites in forward (topological) order; a write may only depend on sites earlier in this list */
  modules: ModuleEntry[]
  tokenizer: TokenizerInfo | null
  vocabSize: number
  maxPositions: number | null
  /** the weights by HF parameter name; absent when the host does not expose any (then `param` fails validation) */
  params?: ParamEntry[]
}
