/**
 * Training Programs of the issue #11 acceptance runs (models/demo-gpt2/reference_training.json): a steering vector v
 * added to transformer.h.2's output of every prompt (each its own invoke), loss = mean over prompts of
 * −log_softmax(logits at the last position)[" Rome"], trained by Adam (lr 0.05, betas 0.9/0.999, eps 1e-8).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { PROGRAM_VERSION, type Attrs, type ParamInit, type Program, type ProgramNode } from '@weft/core'
import { DEMO } from './helpers.js'
import { steeredLossNodes } from '../../onnx/test/steering-program.js'

export interface TrainingReference {
  prompts: string[]
  target_id: number
  base_loss: number
  steering_vector: { steps: number; loss_per_step: number[]; final_v: number[]; final_loss_after_training: number }
}

export const REFERENCE = JSON.parse(readFileSync(path.join(DEMO, 'reference_training.json'), 'utf8')) as TrainingReference

/** The steered loss nodes over `prompts` (one invoke each); returns the nodes and the loss node's index. */
const steeredLoss = (prompts: readonly string[], target = REFERENCE.target_id): { nodes: ProgramNode[]; loss: number } => steeredLossNodes(prompts.length, target)

/** `steps` Adam steps of v from `init` (zeros), keeping v as adapter `keep` when given. Invokes are token ids. */
export function steeringTraining (tokenize: (text: string) => number[], options: { steps?: number; keep?: string; init?: ParamInit; prompts?: readonly string[] } = {}): Program {
  const prompts = options.prompts ?? REFERENCE.prompts
  const { nodes, loss } = steeredLoss(prompts)
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace',
    invokes: prompts.map(text => ({ ids: tokenize(text) })), nodes,
    params: { v: { shape: [256], dtype: 'float32', init: options.init ?? { zeros: true } } },
    train: { params: ['v'], loss, optimizer: { kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 }, steps: options.steps ?? 30 },
    ...(options.keep === undefined ? {} : { keep: { adapter: options.keep } }),
  }
}

/** The steered loss with v from a kept adapter, saved as `loss` (no training). */
export function adapterLoss (tokenize: (text: string) => number[], adapter: string, prompts: readonly string[] = REFERENCE.prompts): Program {
  const { nodes, loss } = steeredLoss(prompts)
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace',
    invokes: prompts.map(text => ({ ids: tokenize(text) })), nodes: [...nodes, ['save', { name: 'loss' }, [loss]]],
    params: { v: { shape: [256], dtype: 'float32', init: { adapter: { name: adapter, param: 'v' } } } },
  }
}

/** Greedy generation of `tokens` tokens after `prompt` with v (from a kept adapter, or zeros) added at transformer.h.2. */
export function steeredGeneration (tokenize: (text: string) => number[], prompt: string, init: ParamInit, tokens = 3): Program {
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'generate',
    generate: { maxNewTokens: tokens, strategy: 'greedy' },
    invokes: [{ ids: tokenize(prompt) }],
    nodes: [['trainable', { name: 'v' }, []], ['read', { site: 'transformer.h.2', port: 'output', invoke: 0, step: 'all' }, []], ['add', {}, [1, 0]], ['write', { site: 'transformer.h.2', port: 'output', invoke: 0, step: 'all' }, [2]]],
    params: { v: { shape: [256], dtype: 'float32', init } },
  }
}

/** |a − b| / max(|b|, floor): the relative error used against PyTorch's figures. */
export const rel = (a: number, b: number, floor = 1e-30): number => Math.abs(a - b) / Math.max(Math.abs(b), floor)

/** The rank-4 LoRA of the acceptance (y += (x @ A) @ B · 8/4 on transformer.h.3.mlp.c_fc) at `step` of each invoke. */
function loraNodes (invokes: number, step: number | 'all' | null, target: number | null): { nodes: ProgramNode[]; loss: number | null } {
  const site = 'transformer.h.3.mlp.c_fc'
  const at: Attrs = step === null ? {} : { step }
  const nodes: ProgramNode[] = [['trainable', { name: 'A' }, []], ['trainable', { name: 'B' }, []],
    ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(2) } as never }, []]]
  const nll: number[] = []
  for (let k = 0; k < invokes; k++) {
    const x = nodes.push(['read', { site, port: 'input', invoke: k, ...at }, []]) - 1
    nodes.push(['matmul', {}, [x, 0]], ['matmul', {}, [x + 1, 1]], ['mul', {}, [x + 2, 2]])
    const y = nodes.push(['read', { site, port: 'output', invoke: k, ...at }, []]) - 1
    nodes.push(['add', {}, [y, x + 3]], ['write', { site, port: 'output', invoke: k, ...at }, [y + 1]])
    if (target === null) continue
    const logits = nodes.push(['read', { site: 'lm_head', port: 'output', invoke: k }, []]) - 1
    nodes.push(['index', { index: [0, -1] }, [logits]], ['log_softmax', { axis: -1 }, [logits + 1]], ['index', { index: [target] }, [logits + 2]])
    nll.push(nodes.push(['neg', {}, [logits + 3]]) - 1)
  }
  if (target === null) return { nodes, loss: null }
  nodes.push(['stack', { axis: 0 }, nll])
  return { nodes, loss: nodes.push(['mean', { axes: null, keepdims: false }, [nodes.length - 1]]) - 1 }
}

const LORA_INIT: Record<'A' | 'B', ParamInit> = { A: { normal: { mean: 0, std: 0.05, seed: 1 } }, B: { normal: { mean: 0, std: 0.05, seed: 2 } } }
const loraParams = (init: 'seeded' | string): Program['params'] => ({
  A: { shape: [256, 4], dtype: 'float32', init: init === 'seeded' ? LORA_INIT.A : { adapter: { name: init, param: 'A' } } },
  B: { shape: [4, 1024], dtype: 'float32', init: init === 'seeded' ? LORA_INIT.B : { adapter: { name: init, param: 'B' } } },
})

/** `steps` SGD steps (lr 0.1) of the LoRA through the steering acceptance's loss, kept as `keep`. */
export function loraTraining (tokenize: (text: string) => number[], steps: number, keep: string): Program {
  const { nodes, loss } = loraNodes(REFERENCE.prompts.length, null, REFERENCE.target_id)
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace',
    invokes: REFERENCE.prompts.map(text => ({ ids: tokenize(text) })), nodes, params: loraParams('seeded'),
    train: { params: ['A', 'B'], loss: loss!, optimizer: { kind: 'sgd', lr: 0.1 }, steps }, keep: { adapter: keep },
  }
}

/** The LoRA loss with A, B from a kept adapter (or the seeded initial values), saved as `loss`. */
export function loraLoss (tokenize: (text: string) => number[], init: 'seeded' | string): Program {
  const { nodes, loss } = loraNodes(REFERENCE.prompts.length, null, REFERENCE.target_id)
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace',
    invokes: REFERENCE.prompts.map(text => ({ ids: tokenize(text) })), nodes: [...nodes, ['save', { name: 'loss' }, [loss!]]], params: loraParams(init),
  }
}

/** Greedy generation with the LoRA applied at every step; saves the prompt pass's last logits as `logits`. */
export function loraGeneration (tokenize: (text: string) => number[], prompt: string, init: 'seeded' | string, tokens = 3): Program {
  const { nodes } = loraNodes(1, 'all', null)
  const logits = nodes.push(['read', { site: 'lm_head', port: 'output', invoke: 0, step: 0 }, []]) - 1
  nodes.push(['index', { index: [0, -1] }, [logits]], ['save', { name: 'logits' }, [logits + 1]])
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'generate', generate: { maxNewTokens: tokens, strategy: 'greedy' },
    invokes: [{ ids: tokenize(prompt) }], nodes, params: loraParams(init),
  }
}
