/**
 * A hand-written manifest of models/demo-gpt2 (6 layers, d=256, 8 heads, vocab 4096) for core tests.
 * Engines generate real manifests from the checkpoint; this one only has to have the real module tree.
 */
import type { Manifest, ModuleEntry, ParamEntry, SymDim } from '../src/manifest/manifest.js'

const D = 256
const HEADS = 8
const VOCAB = 4096
const LAYERS = 6

const act = (last: number): { shape: SymDim[]; dtype: 'float32' } => ({ shape: ['batch', 'seq', last], dtype: 'float32' })
const ids = { shape: ['batch', 'seq'] as SymDim[], dtype: 'int64' as const }

function module (path: string, type: string, parameters: number, input: number | null, output: number | null, callable = true): ModuleEntry {
  const entry: ModuleEntry = { path, kind: 'module', type, callable, parameters }
  if (input !== null) entry.input = act(input)
  if (output !== null) entry.output = act(output)
  return entry
}

const linear = (inDim: number, outDim: number): number => inDim * outDim + outDim
const LN = 2 * D
const ATTN = linear(D, 3 * D) + linear(D, D)
const MLP = linear(D, 4 * D) + linear(4 * D, D)
const BLOCK = LN + ATTN + LN + MLP

function block (n: number): ModuleEntry[] {
  const p = `transformer.h.${n}`
  return [
    module(p, 'GPT2Block', BLOCK, D, D),
    module(`${p}.ln_1`, 'LayerNorm', LN, D, D),
    module(`${p}.attn`, 'GPT2Attention', ATTN, D, D),
    module(`${p}.attn.c_attn`, 'Conv1D', linear(D, 3 * D), D, 3 * D),
    { path: `${p}.attn.probs`, kind: 'site', type: 'attention_probs', callable: false, parameters: 0, output: { shape: ['batch', HEADS, 'seq', 'seq'], dtype: 'float32' } },
    module(`${p}.attn.c_proj`, 'Conv1D', linear(D, D), D, D),
    module(`${p}.ln_2`, 'LayerNorm', LN, D, D),
    module(`${p}.mlp`, 'GPT2MLP', MLP, D, D),
    module(`${p}.mlp.c_fc`, 'Conv1D', linear(D, 4 * D), D, 4 * D),
    module(`${p}.mlp.act`, 'NewGELUActivation', 0, 4 * D, 4 * D),
    module(`${p}.mlp.c_proj`, 'Conv1D', linear(4 * D, D), 4 * D, D),
  ]
}

function params (): ParamEntry[] {
  const f = (name: string, shape: number[]): ParamEntry => ({ name, shape, dtype: 'float32' })
  const out = [f('transformer.wte.weight', [VOCAB, D]), f('transformer.wpe.weight', [256, D])]
  for (let n = 0; n < LAYERS; n++) {
    const p = `transformer.h.${n}`
    out.push(f(`${p}.ln_1.weight`, [D]), f(`${p}.ln_1.bias`, [D]),
      f(`${p}.attn.c_attn.weight`, [D, 3 * D]), f(`${p}.attn.c_attn.bias`, [3 * D]),
      f(`${p}.attn.c_proj.weight`, [D, D]), f(`${p}.attn.c_proj.bias`, [D]),
      f(`${p}.ln_2.weight`, [D]), f(`${p}.ln_2.bias`, [D]),
      f(`${p}.mlp.c_fc.weight`, [D, 4 * D]), f(`${p}.mlp.c_fc.bias`, [4 * D]),
      f(`${p}.mlp.c_proj.weight`, [4 * D, D]), f(`${p}.mlp.c_proj.bias`, [D]))
  }
  out.push(f('transformer.ln_f.weight', [D]), f('transformer.ln_f.bias', [D]), f('lm_head.weight', [VOCAB, D]))
  return out
}

const TRANSFORMER = VOCAB * D + 256 * D + LAYERS * BLOCK + LN

/** Builds a fresh copy (tests may mutate it). */
export function demoGpt2Manifest (): Manifest {
  const modules: ModuleEntry[] = [
    { path: 'transformer', kind: 'module', type: 'GPT2Model', callable: false, parameters: TRANSFORMER, input: ids, output: act(D) },
    { path: 'transformer.wte', kind: 'module', type: 'Embedding', callable: false, parameters: VOCAB * D, input: ids, output: act(D) },
    { path: 'transformer.wpe', kind: 'module', type: 'Embedding', callable: false, parameters: 256 * D, input: ids, output: act(D) },
    { path: 'transformer.h', kind: 'module', type: 'ModuleList', callable: false, parameters: LAYERS * BLOCK },
    ...Array.from({ length: LAYERS }, (_, n) => block(n)).flat(),
    module('transformer.ln_f', 'LayerNorm', LN, D, D),
    module('lm_head', 'Linear', VOCAB * D, D, VOCAB),
  ]
  return {
    name: 'demo-gpt2',
    revision: 'sha256:c6496eb1485491b74c2a6bebe2c61b7ef7e8a9b29e7596bf6238bc2d12edb06f',
    family: 'gpt2',
    config: { model_type: 'gpt2', n_layer: LAYERS, n_embd: D, n_head: HEADS, vocab_size: VOCAB, n_positions: 256 },
    parameters: TRANSFORMER,
    modules,
    tokenizer: { digest: 'sha256:aa70fda43f191e17f933a5631530ca292dac12240227136a392b07f9376be951', vocabSize: VOCAB, bosTokenId: 0, eosTokenId: 0 },
    vocabSize: VOCAB,
    maxPositions: 256,
    params: params(),
  }
}
