/** The steering-vector training Program of the issue #11 acceptance (models/demo-gpt2/reference_training.json). */
import { PROGRAM_VERSION, type Program, type ProgramNode } from '@weft/core'

/**
 * The steered loss over `invokes` prompts (one invoke each): v (trainable, node 0) added to transformer.h.2's output of
 * every invoke; loss = mean over invokes of −log_softmax(last logits)[target]. Returns the nodes and the loss node.
 * (Shared by the engine tests, the host's training Programs and the training benches.)
 */
export function steeredLossNodes (invokes: number, target: number): { nodes: ProgramNode[]; loss: number } {
  const nodes: ProgramNode[] = [['trainable', { name: 'v' }, []]]
  const nll: number[] = []
  for (let k = 0; k < invokes; k++) {
    const h = nodes.push(['read', { site: 'transformer.h.2', port: 'output', invoke: k }, []]) - 1
    const sum = nodes.push(['add', {}, [h, 0]]) - 1
    nodes.push(['write', { site: 'transformer.h.2', port: 'output', invoke: k }, [sum]])
    const logits = nodes.push(['read', { site: 'lm_head', port: 'output', invoke: k }, []]) - 1
    const last = nodes.push(['index', { index: [0, -1] }, [logits]]) - 1
    const lsm = nodes.push(['log_softmax', { axis: -1 }, [last]]) - 1
    const pick = nodes.push(['index', { index: [target] }, [lsm]]) - 1
    nll.push(nodes.push(['neg', {}, [pick]]) - 1)
  }
  const stacked = nodes.push(['stack', { axis: 0 }, nll]) - 1
  const loss = nodes.push(['mean', { axes: null, keepdims: false }, [stacked]]) - 1
  return { nodes, loss }
}

/** The acceptance training: Adam (lr 0.05) on v for 30 steps over `prompts`, the loss after training saved. */
export function steeringProgram (prompts: string[], target: number, extra: Partial<Program> = {}): Program {
  const { nodes, loss } = steeredLossNodes(prompts.length, target)
  nodes.push(['save', { name: 'loss_after' }, [loss]])
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace',
    invokes: prompts.map(text => ({ text })), nodes,
    params: { v: { shape: [256], dtype: 'float32', init: { zeros: true } } },
    train: { params: ['v'], loss, optimizer: { kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 }, steps: 30 },
    ...extra,
  }
}
