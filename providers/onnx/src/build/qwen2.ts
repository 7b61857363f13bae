/** Qwen2ForCausalLM: the Llama graph with q/k/v biases (picked up from the checkpoint) and Qwen2 class names. */
import type { FamilyBuild } from './family.js'
import type { BuildContext } from './layers.js'
import { buildLlamaLike } from './llama.js'

export const buildQwen2 = (ctx: BuildContext, config: Record<string, unknown>): FamilyBuild => buildLlamaLike(ctx, config, { prefix: 'Qwen2' })
