/**
 * Typed envoy trees for the architectures Weft builds (Hugging Face module names), so `weft.model<GPT2>(…)`
 * gives completion and compile-time checks for `m.transformer.h[3].attn.probs.output`.
 */
import type { ListEnvoy, ModuleEnvoy } from '../trace/envoy.js'
import type { SiteProxy } from '../trace/site-proxy.js'

/**
 * A block's or attention module's inputs by HF argument name (what transformers 5 passes it; cache objects and
 * `cache_position` are not tensors of the built graphs and are not exposed). No index signature: a misspelled name
 * fails `tsc`.
 */
export interface AttentionInputs {
  readonly hidden_states: SiteProxy
  /** the additive causal + padding mask this module receives, [1, 1, seq, seq] (0 or the float32 minimum) */
  readonly attention_mask: SiteProxy
  /**
   * int64 [1, seq]: 0…seq−1 over a prompt, the token's position at each generation step. As in transformers' eager
   * attention nothing inside the module computes with it: to move positions write `wpe`'s input (GPT-2),
   * `rotary_emb.inputs.position_ids` or `.inputs.position_embeddings` (rotary families).
   */
  readonly position_ids: SiteProxy
}

/** A rotary family's decoder layer / attention inputs: also `position_embeddings`, the pair (cos, sin). */
export interface RotaryAttentionInputs extends AttentionInputs {
  /** [cos, sin], each [1, seq, rotary_dim] as `rotary_emb` returns them; the attention rotates q and k with these */
  readonly position_embeddings: readonly [cos: SiteProxy, sin: SiteProxy]
}

/** An MLP's only input. */
export interface HiddenInputs { readonly hidden_states: SiteProxy }
/** A token embedding (nn.Embedding): torch's `input`, which the model passes as `input_ids` (int64 [1, seq]). */
export interface TokenEmbeddingInputs { readonly input: SiteProxy; readonly input_ids: SiteProxy }
/** GPT-2's `wpe`: torch's `input`, which GPT2Model passes as `position_ids` (int64 [1, seq]). */
export interface PositionEmbeddingInputs { readonly input: SiteProxy; readonly position_ids: SiteProxy }
/** A rotary embedding module, HF `forward(x, position_ids)`: a write to `position_ids` moves every layer's rotary positions. */
export interface RotaryEmbeddingInputs { readonly x: SiteProxy; readonly position_ids: SiteProxy }

export interface GPT2Attention extends ModuleEnvoy<AttentionInputs> {
  readonly c_attn: ModuleEnvoy
  readonly c_proj: ModuleEnvoy
  /** attention probabilities after softmax, [1, heads, seq, seq] */
  readonly probs: ModuleEnvoy
  /** per-head queries, keys, values [1, heads, seq, head_dim] */
  readonly q: ModuleEnvoy
  readonly k: ModuleEnvoy
  readonly v: ModuleEnvoy
  /** q·kᵀ/√head_dim before the causal mask, [1, heads, seq, seq] */
  readonly scores: ModuleEnvoy
  /** per-head attention output before c_proj, [1, seq, heads, head_dim] */
  readonly heads: ModuleEnvoy
}

export interface GPT2MLP extends ModuleEnvoy<HiddenInputs> {
  readonly c_fc: ModuleEnvoy
  /** the activation output (GELU of c_fc), [1, seq, 4d] */
  readonly act: ModuleEnvoy
  readonly c_proj: ModuleEnvoy
}

export interface GPT2Block extends ModuleEnvoy<AttentionInputs> {
  readonly ln_1: ModuleEnvoy
  readonly attn: GPT2Attention
  /** the residual stream between attention and MLP (ln_2's input; a write reaches the MLP and the residual) */
  readonly resid_mid: ModuleEnvoy
  readonly ln_2: ModuleEnvoy
  readonly mlp: GPT2MLP
}

/**
 * The standard names every built family answers to beside its HF names (core `familyAliases`, nnterp's set):
 * `embed`, `layers[i]` (with `.attn` and `.mlp`), `ln_final`, `lm_head`. They resolve to the HF paths while recording.
 */
export interface StandardNames<Layer extends ModuleEnvoy<object>> {
  readonly embed: ModuleEnvoy<TokenEmbeddingInputs>
  readonly layers: ListEnvoy<Layer>
  readonly ln_final: ModuleEnvoy
  readonly lm_head: ModuleEnvoy
}

export interface GPT2 extends ModuleEnvoy, StandardNames<GPT2Block> {
  readonly transformer: ModuleEnvoy & {
    readonly wte: ModuleEnvoy<TokenEmbeddingInputs>
    readonly wpe: ModuleEnvoy<PositionEmbeddingInputs>
    /** embedding dropout (identity at inference): its output is the summed token + position embedding */
    readonly drop: ModuleEnvoy
    readonly h: ListEnvoy<GPT2Block>
    readonly ln_f: ModuleEnvoy
  }
  readonly lm_head: ModuleEnvoy
}

export interface LlamaAttention extends ModuleEnvoy<RotaryAttentionInputs> {
  readonly q_proj: ModuleEnvoy
  readonly k_proj: ModuleEnvoy
  readonly v_proj: ModuleEnvoy
  readonly o_proj: ModuleEnvoy
  readonly probs: ModuleEnvoy
  /** per-head queries [1, heads, seq, head_dim] and keys, values [1, kv_heads, seq, head_dim], q and k after rotary */
  readonly q: ModuleEnvoy
  readonly k: ModuleEnvoy
  readonly v: ModuleEnvoy
  /** q·kᵀ/√head_dim before the causal mask, [1, heads, seq, seq] */
  readonly scores: ModuleEnvoy
  /** per-head attention output before o_proj, [1, seq, heads, head_dim] */
  readonly heads: ModuleEnvoy
}

export interface LlamaMLP extends ModuleEnvoy<HiddenInputs> {
  readonly gate_proj: ModuleEnvoy
  readonly up_proj: ModuleEnvoy
  readonly down_proj: ModuleEnvoy
  readonly act_fn: ModuleEnvoy
}

export interface LlamaDecoderLayer extends ModuleEnvoy<RotaryAttentionInputs> {
  readonly input_layernorm: ModuleEnvoy
  readonly self_attn: LlamaAttention
  /** standard name for `self_attn` */
  readonly attn: LlamaAttention
  /** the residual stream between attention and MLP */
  readonly resid_mid: ModuleEnvoy
  readonly post_attention_layernorm: ModuleEnvoy
  readonly mlp: LlamaMLP
}

export interface Llama extends ModuleEnvoy, StandardNames<LlamaDecoderLayer> {
  readonly model: ModuleEnvoy & {
    readonly embed_tokens: ModuleEnvoy<TokenEmbeddingInputs>
    /** LlamaRotaryEmbedding: its output is the cos table [1, seq, head_dim] */
    readonly rotary_emb: ModuleEnvoy<RotaryEmbeddingInputs>
    readonly layers: ListEnvoy<LlamaDecoderLayer>
    readonly norm: ModuleEnvoy
  }
  readonly lm_head: ModuleEnvoy
}

/** Qwen2ForCausalLM: Llama's tree (q/k/v carry biases). */
export type Qwen2 = Llama

export interface GPTNeoXAttention extends ModuleEnvoy<RotaryAttentionInputs> {
  readonly query_key_value: ModuleEnvoy
  readonly dense: ModuleEnvoy
  readonly probs: ModuleEnvoy
  /** per-head queries, keys, values [1, heads, seq, head_dim], q and k after (partial) rotary */
  readonly q: ModuleEnvoy
  readonly k: ModuleEnvoy
  readonly v: ModuleEnvoy
  readonly scores: ModuleEnvoy
  readonly heads: ModuleEnvoy
}

export interface GPTNeoXMLP extends ModuleEnvoy<HiddenInputs> {
  readonly dense_h_to_4h: ModuleEnvoy
  readonly act: ModuleEnvoy
  readonly dense_4h_to_h: ModuleEnvoy
}

export interface GPTNeoXLayer extends ModuleEnvoy<RotaryAttentionInputs> {
  readonly input_layernorm: ModuleEnvoy
  readonly attention: GPTNeoXAttention
  /** standard name for `attention` */
  readonly attn: GPTNeoXAttention
  /** only with `use_parallel_residual: false` (the parallel residual has no point between the halves) */
  readonly resid_mid: ModuleEnvoy
  readonly post_attention_layernorm: ModuleEnvoy
  readonly mlp: GPTNeoXMLP
}

export interface GPTNeoX extends ModuleEnvoy, StandardNames<GPTNeoXLayer> {
  readonly gpt_neox: ModuleEnvoy & {
    readonly embed_in: ModuleEnvoy<TokenEmbeddingInputs>
    /** GPTNeoXRotaryEmbedding (partial rotary: its output is the cos table [1, seq, rotary_pct·head_dim]) */
    readonly rotary_emb: ModuleEnvoy<RotaryEmbeddingInputs>
    readonly layers: ListEnvoy<GPTNeoXLayer>
    readonly final_layer_norm: ModuleEnvoy
  }
  /** Weft's (and transformers 4's) name for the head; `lm_head` (transformers 5) is the same module */
  readonly embed_out: ModuleEnvoy
}
