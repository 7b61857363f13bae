/**
 * Hugging Face checkpoint layouts for the random test checkpoints: parameter names/shapes per family (in
 * state-dict order) and config.json as transformers 5.17 writes it for that model_type.
 */
export type CheckpointFamily = 'gpt2' | 'llama' | 'gpt_neox' | 'qwen2'

export interface CheckpointDims {
  layers: number
  hidden: number
  heads: number
  /** key/value heads (llama, qwen2); defaults to heads */
  kvHeads?: number
  /** MLP width; defaults: gpt2/neox 4·hidden, llama/qwen2 ⌈8·hidden/3⌉ rounded to 16 */
  intermediate?: number
  /** defaults to 4096 (the bundled tokenizer's vocabulary) */
  vocab?: number
  /** n_positions / max_position_embeddings; defaults to 256 */
  maxPositions?: number
  /** gpt_neox: rope partial_rotary_factor (rotary_pct); defaults to 0.25 */
  rotaryPct?: number
  /** gpt_neox: use_parallel_residual; defaults to true */
  parallelResidual?: boolean
  /** defaults: gpt2 true, qwen2 true, llama/neox false */
  tieWordEmbeddings?: boolean
  /** hidden_act / activation_function; defaults per family (gelu_new, silu, gelu, silu) */
  hiddenAct?: string
  /** rope_theta; defaults 10000 (qwen2: 1000000) */
  ropeTheta?: number
  /** llama/qwen2: head_dim when it is not hidden/heads */
  headDim?: number
}

/** How a parameter is initialised: N(0, std) for matrices/biases; 1 + N(0, std) for norm scales. */
type InitKind = 'normal' | 'norm_scale'
export interface ParamSpec { name: string; shape: number[]; init: InitKind }

function intermediateOf (family: CheckpointFamily, dims: CheckpointDims): number {
  if (dims.intermediate !== undefined) return dims.intermediate
  if (family === 'gpt2' || family === 'gpt_neox') return 4 * dims.hidden
  return Math.ceil((8 * dims.hidden) / 3 / 16) * 16
}

function tiedOf (family: CheckpointFamily, dims: CheckpointDims): boolean {
  return dims.tieWordEmbeddings ?? (family === 'gpt2' || family === 'qwen2')
}

function gpt2Params (d: CheckpointDims, inner: number): ParamSpec[] {
  const h = d.hidden
  const specs: ParamSpec[] = [
    { name: 'transformer.wte.weight', shape: [d.vocab ?? 4096, h], init: 'normal' },
    { name: 'transformer.wpe.weight', shape: [d.maxPositions ?? 256, h], init: 'normal' },
  ]
  for (let l = 0; l < d.layers; l++) {
    const p = `transformer.h.${l}`
    specs.push(
      { name: `${p}.ln_1.weight`, shape: [h], init: 'norm_scale' }, { name: `${p}.ln_1.bias`, shape: [h], init: 'normal' },
      { name: `${p}.attn.c_attn.weight`, shape: [h, 3 * h], init: 'normal' }, { name: `${p}.attn.c_attn.bias`, shape: [3 * h], init: 'normal' },
      { name: `${p}.attn.c_proj.weight`, shape: [h, h], init: 'normal' }, { name: `${p}.attn.c_proj.bias`, shape: [h], init: 'normal' },
      { name: `${p}.ln_2.weight`, shape: [h], init: 'norm_scale' }, { name: `${p}.ln_2.bias`, shape: [h], init: 'normal' },
      { name: `${p}.mlp.c_fc.weight`, shape: [h, inner], init: 'normal' }, { name: `${p}.mlp.c_fc.bias`, shape: [inner], init: 'normal' },
      { name: `${p}.mlp.c_proj.weight`, shape: [inner, h], init: 'normal' }, { name: `${p}.mlp.c_proj.bias`, shape: [h], init: 'normal' })
  }
  specs.push({ name: 'transformer.ln_f.weight', shape: [h], init: 'norm_scale' }, { name: 'transformer.ln_f.bias', shape: [h], init: 'normal' })
  return specs
}

function llamaParams (family: CheckpointFamily, d: CheckpointDims, inner: number): ParamSpec[] {
  const h = d.hidden
  const headDim = d.headDim ?? h / d.heads
  const kv = (d.kvHeads ?? d.heads) * headDim
  const q = d.heads * headDim
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [d.vocab ?? 4096, h], init: 'normal' }]
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}`
    specs.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, h], init: 'normal' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, h], init: 'normal' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, h], init: 'normal' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [h, q], init: 'normal' })
    if (family === 'qwen2') {
      specs.push({ name: `${p}.self_attn.q_proj.bias`, shape: [q], init: 'normal' },
        { name: `${p}.self_attn.k_proj.bias`, shape: [kv], init: 'normal' },
        { name: `${p}.self_attn.v_proj.bias`, shape: [kv], init: 'normal' })
    }
    specs.push(
      { name: `${p}.mlp.gate_proj.weight`, shape: [inner, h], init: 'normal' },
      { name: `${p}.mlp.up_proj.weight`, shape: [inner, h], init: 'normal' },
      { name: `${p}.mlp.down_proj.weight`, shape: [h, inner], init: 'normal' },
      { name: `${p}.input_layernorm.weight`, shape: [h], init: 'norm_scale' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h], init: 'norm_scale' })
  }
  specs.push({ name: 'model.norm.weight', shape: [h], init: 'norm_scale' })
  if (!tiedOf(family, d)) specs.push({ name: 'lm_head.weight', shape: [d.vocab ?? 4096, h], init: 'normal' })
  return specs
}

function neoxParams (d: CheckpointDims, inner: number): ParamSpec[] {
  const h = d.hidden
  const specs: ParamSpec[] = [{ name: 'gpt_neox.embed_in.weight', shape: [d.vocab ?? 4096, h], init: 'normal' }]
  for (let l = 0; l < d.layers; l++) {
    const p = `gpt_neox.layers.${l}`
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [h], init: 'norm_scale' }, { name: `${p}.input_layernorm.bias`, shape: [h], init: 'normal' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [h], init: 'norm_scale' }, { name: `${p}.post_attention_layernorm.bias`, shape: [h], init: 'normal' },
      { name: `${p}.attention.query_key_value.weight`, shape: [3 * h, h], init: 'normal' }, { name: `${p}.attention.query_key_value.bias`, shape: [3 * h], init: 'normal' },
      { name: `${p}.attention.dense.weight`, shape: [h, h], init: 'normal' }, { name: `${p}.attention.dense.bias`, shape: [h], init: 'normal' },
      { name: `${p}.mlp.dense_h_to_4h.weight`, shape: [inner, h], init: 'normal' }, { name: `${p}.mlp.dense_h_to_4h.bias`, shape: [inner], init: 'normal' },
      { name: `${p}.mlp.dense_4h_to_h.weight`, shape: [h, inner], init: 'normal' }, { name: `${p}.mlp.dense_4h_to_h.bias`, shape: [h], init: 'normal' })
  }
  specs.push({ name: 'gpt_neox.final_layer_norm.weight', shape: [h], init: 'norm_scale' }, { name: 'gpt_neox.final_layer_norm.bias', shape: [h], init: 'normal' })
  if (!tiedOf('gpt_neox', d)) specs.push({ name: 'embed_out.weight', shape: [d.vocab ?? 4096, h], init: 'normal' })
  return specs
}

/** Every parameter the checkpoint holds, in state-dict order (tied heads are not written, as transformers does). */
export function checkpointParams (family: CheckpointFamily, dims: CheckpointDims): ParamSpec[] {
  const inner = intermediateOf(family, dims)
  if (family === 'gpt2') return gpt2Params(dims, inner)
  if (family === 'gpt_neox') return neoxParams(dims, inner)
  return llamaParams(family, dims, inner)
}

/** config.json for the family, keys sorted as transformers writes them (`json.dumps(sort_keys=True)`). */
export function checkpointConfig (family: CheckpointFamily, dims: CheckpointDims, dtype: string): Record<string, unknown> {
  const common = { bos_token_id: 0, eos_token_id: 0, pad_token_id: null, dtype, transformers_version: '5.17.0', use_cache: true, vocab_size: dims.vocab ?? 4096, initializer_range: 0.02, tie_word_embeddings: tiedOf(family, dims) }
  const inner = intermediateOf(family, dims)
  const positions = dims.maxPositions ?? 256
  let config: Record<string, unknown>
  if (family === 'gpt2') {
    config = {
      ...common, activation_function: dims.hiddenAct ?? 'gelu_new', add_cross_attention: false, architectures: ['GPT2LMHeadModel'],
      attn_pdrop: 0.0, embd_pdrop: 0.0, layer_norm_epsilon: 1e-5, model_type: 'gpt2', n_embd: dims.hidden, n_head: dims.heads,
      n_inner: inner === 4 * dims.hidden ? null : inner, n_layer: dims.layers, n_positions: positions, reorder_and_upcast_attn: false,
      resid_pdrop: 0.0, scale_attn_by_inverse_layer_idx: false, scale_attn_weights: true, summary_activation: null,
      summary_first_dropout: 0.1, summary_proj_to_labels: true, summary_type: 'cls_index', summary_use_proj: true,
    }
  } else if (family === 'gpt_neox') {
    config = {
      ...common, architectures: ['GPTNeoXForCausalLM'], attention_bias: true, attention_dropout: 0.0, classifier_dropout: 0.1,
      hidden_act: dims.hiddenAct ?? 'gelu', hidden_dropout: 0.0, hidden_size: dims.hidden, intermediate_size: inner, is_decoder: false,
      layer_norm_eps: 1e-5, max_position_embeddings: positions, model_type: 'gpt_neox', num_attention_heads: dims.heads,
      num_hidden_layers: dims.layers,
      rope_parameters: { partial_rotary_factor: dims.rotaryPct ?? 0.25, rope_theta: dims.ropeTheta ?? 10000.0, rope_type: 'default' },
      use_parallel_residual: dims.parallelResidual ?? true,
    }
  } else {
    const llamaLike = {
      ...common, attention_dropout: 0.0, hidden_act: dims.hiddenAct ?? 'silu', hidden_size: dims.hidden, intermediate_size: inner,
      max_position_embeddings: positions, model_type: family, num_attention_heads: dims.heads, num_hidden_layers: dims.layers,
      num_key_value_heads: dims.kvHeads ?? dims.heads,
    }
    config = family === 'llama'
      ? { ...llamaLike, architectures: ['LlamaForCausalLM'], attention_bias: false, head_dim: dims.headDim ?? dims.hidden / dims.heads, mlp_bias: false, pretraining_tp: 1, rms_norm_eps: 1e-5, rope_parameters: { rope_theta: dims.ropeTheta ?? 10000.0, rope_type: 'default' } }
      : { ...llamaLike, architectures: ['Qwen2ForCausalLM'], layer_types: Array.from({ length: dims.layers }, () => 'full_attention'), max_window_layers: dims.layers, rms_norm_eps: 1e-6, rope_parameters: { rope_theta: dims.ropeTheta ?? 1000000.0, rope_type: 'default' }, sliding_window: null, use_sliding_window: false }
  }
  return Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
