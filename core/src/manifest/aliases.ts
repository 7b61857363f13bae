/**
 * Standard module names across families (as nnterp gives NNsight): `layers[i]`, `layers[i].attn`, `layers[i].mlp`,
 * `embed`, `ln_final`, `lm_head`, beside the Hugging Face paths. Clients resolve them while recording, so a Program
 * only ever carries HF paths (the same site ids and digest whichever name was written). See spec/manifest.md.
 */
import type { Manifest } from './manifest.js'

/** Per family: standard name → HF path. `layers` maps the ModuleList; `attn`/`mlp` are names under each layer. */
export interface FamilyAliases {
  embed: string
  layers: string
  attn: string
  mlp: string
  ln_final: string
  lm_head: string
}

const FAMILIES: Record<string, FamilyAliases> = {
  gpt2: { embed: 'transformer.wte', layers: 'transformer.h', attn: 'attn', mlp: 'mlp', ln_final: 'transformer.ln_f', lm_head: 'lm_head' },
  llama: { embed: 'model.embed_tokens', layers: 'model.layers', attn: 'self_attn', mlp: 'mlp', ln_final: 'model.norm', lm_head: 'lm_head' },
  qwen2: { embed: 'model.embed_tokens', layers: 'model.layers', attn: 'self_attn', mlp: 'mlp', ln_final: 'model.norm', lm_head: 'lm_head' },
  // transformers 5 calls GPT-NeoX's head `lm_head`; Weft (and transformers 4 checkpoints) call it `embed_out`
  gpt_neox: { embed: 'gpt_neox.embed_in', layers: 'gpt_neox.layers', attn: 'attention', mlp: 'mlp', ln_final: 'gpt_neox.final_layer_norm', lm_head: 'embed_out' },
}

/** The standard names of `manifest`'s family whose targets exist in its module list, or null for other families. */
export function familyAliases (manifest: Pick<Manifest, 'family' | 'modules'>): FamilyAliases | null {
  const aliases = FAMILIES[manifest.family]
  if (aliases === undefined) return null
  const paths = new Set(manifest.modules.map((m) => m.path))
  const top = [aliases.embed, aliases.layers, aliases.ln_final, aliases.lm_head]
  return top.every((path) => paths.has(path)) ? aliases : null
}

/**
 * The HF path a dotted path written with standard names stands for (`layers.3.attn.probs` →
 * `transformer.h.3.attn.probs` on GPT-2); paths already in HF names come back unchanged.
 */
export function resolveAlias (manifest: Pick<Manifest, 'family' | 'modules'>, path: string): string {
  const aliases = familyAliases(manifest)
  if (aliases === null) return path
  const parts = path.split('.')
  const head = parts[0]!
  if (head === 'embed' || head === 'ln_final' || head === 'lm_head') return [aliases[head], ...parts.slice(1)].join('.')
  if (head !== 'layers') return path
  const rest = parts.slice(1)
  if (rest.length >= 2 && (rest[1] === 'attn' || rest[1] === 'mlp')) rest[1] = aliases[rest[1]]
  return [aliases.layers, ...rest].join('.')
}
