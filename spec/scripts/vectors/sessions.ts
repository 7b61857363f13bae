/**
 * Session and training vectors against the demo-gpt2 manifest (spec/program.md, Sessions and training): a steering
 * vector trained by Adam, a rank-2 LoRA on an MLP projection, adapters kept with their attachments, a two-trace
 * session using `from`; and invalid ones.
 */
import type { Program, ProgramNode, Invoke } from '@weft/core'
import { demoGpt2Manifest } from '@weft/core/testing'
import type { VectorFile } from './types.js'
import { failProgramFile, passProgramFile, type FailCase, type PassCase } from './program-files.js'

const FRANCE = [328, 370, 293, 3606, 297]
const JAPAN = [328, 370, 293, 3430, 297]
const ROME = 3654

function program (nodes: ProgramNode[], invokes: Invoke[], extra: Partial<Program> = {}): Program {
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes, nodes, ...extra }
}

/** −log_softmax(logits of invoke k at the last position)[ROME], nodes appended from `at`. */
function nll (k: number, at: number): ProgramNode[] {
  return [
    ['read', { site: 'lm_head', port: 'output', invoke: k }, []],
    ['index', { index: [0, -1] }, [at]],
    ['log_softmax', { axis: -1 }, [at + 1]],
    ['index', { index: [ROME] }, [at + 2]],
    ['neg', {}, [at + 3]],
  ]
}

const steering: ProgramNode[] = [
  ['trainable', { name: 'v' }, []],
  ['read', { site: 'transformer.h.2', port: 'output', invoke: 0 }, []],
  ['add', {}, [1, 0]],
  ['write', { site: 'transformer.h.2', port: 'output', invoke: 0 }, [2]],
  ['read', { site: 'transformer.h.2', port: 'output', invoke: 1 }, []],
  ['add', {}, [4, 0]],
  ['write', { site: 'transformer.h.2', port: 'output', invoke: 1 }, [5]],
  ...nll(0, 7),
  ...nll(1, 12),
  ['stack', { axis: 0 }, [11, 16]],
  ['mean', { axes: null, keepdims: false }, [17]],
  ['save', { name: 'final_loss' }, [18]],
]

const lora: ProgramNode[] = [
  ['trainable', { name: 'A' }, []],
  ['trainable', { name: 'B' }, []],
  ['read', { site: 'transformer.h.3.mlp.c_fc', port: 'input', invoke: 0 }, []],
  ['matmul', {}, [2, 0]],
  ['matmul', {}, [3, 1]],
  ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(2) } as never }, []],
  ['mul', {}, [4, 5]],
  ['read', { site: 'transformer.h.3.mlp.c_fc', port: 'output', invoke: 0 }, []],
  ['add', {}, [7, 6]],
  ['write', { site: 'transformer.h.3.mlp.c_fc', port: 'output', invoke: 0 }, [8]],
  ...nll(0, 10),
]

const vDecl = { v: { shape: [256], dtype: 'float32' as const, init: { zeros: true as const } } }
const pass: PassCase[] = [
  ['train-steering-adam', 'train a steering vector at transformer.h.2 with Adam for 30 steps (two prompts, full batch), loss = mean NLL of " Rome"',
    program(steering, [{ ids: FRANCE }, { ids: JAPAN }], {
      params: { v: { shape: [256], dtype: 'float32', init: { zeros: true } } },
      train: { params: ['v'], loss: 18, optimizer: { kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 }, steps: 30 },
      keep: { adapter: 'rome-steer' },
    }), { final_loss: { shape: [], dtype: 'float32' } }],
  ['train-lora-sgd', 'a rank-2 LoRA on transformer.h.3.mlp.c_fc (A seeded normal, B zeros, scale 2) trained by SGD with momentum over two batches for 2 epochs',
    program(lora, [{ ids: FRANCE }], {
      params: {
        A: { shape: [256, 2], dtype: 'float32', init: { normal: { mean: 0, std: 0.02, seed: 7 } } },
        B: { shape: [2, 1024], dtype: 'float32', init: { zeros: true } },
      },
      train: { params: ['A', 'B'], loss: 14, optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 }, batches: [[{ ids: FRANCE }], [{ ids: JAPAN }]], epochs: 2 },
    }), {}],
  ['keep-attach-lora', 'the LoRA of train-lora-sgd kept with its attachment (how withAdapter applies it to later traces and generations)',
    program(lora, [{ ids: FRANCE }], {
      params: {
        A: { shape: [256, 2], dtype: 'float32', init: { normal: { mean: 0, std: 0.02, seed: 7 } } },
        B: { shape: [2, 1024], dtype: 'float32', init: { zeros: true } },
      },
      train: { params: ['A', 'B'], loss: 14, optimizer: { kind: 'sgd', lr: 0.1 }, steps: 5 },
      keep: { adapter: 'france-lora', attach: [{ lora: { module: 'transformer.h.3.mlp.c_fc', a: 'A', b: 'B', scale: 2 } }] },
    }), {}],
  ['keep-attach-steer-probe', 'a steering vector at transformer.h.2 kept with a steer attachment, and a probe W [256, 2], b [2] on the same site',
    program(steering, [{ ids: FRANCE }, { ids: JAPAN }], {
      params: { ...vDecl, W: { shape: [256, 2], dtype: 'float32', init: { zeros: true } }, b: { shape: [2], dtype: 'float32', init: { zeros: true } } },
      train: { params: ['v'], loss: 18, optimizer: { kind: 'adam', lr: 0.05 }, steps: 3 },
      keep: { adapter: 'steer-probe', attach: [{ steer: { site: 'transformer.h.2', port: 'output', param: 'v' } }, { probe: { site: 'transformer.h.2', port: 'output', w: 'W', b: 'b' } }] },
    }), { final_loss: { shape: [], dtype: 'float32' } }],
  ['session-from', 'a session: trace 0 reads block 2 of one prompt; trace 1 patches it into another prompt with from, saving only the logits',
    program([
      ['read', { site: 'transformer.h.2', port: 'output', invoke: 0 }, []],
      ['index', { index: [null, [-1, null, null]] }, [0]],
    ], [{ ids: FRANCE }], {
      then: [{
        mode: 'trace',
        invokes: [{ ids: JAPAN }],
        nodes: [
          ['from', { trace: 0, node: 1 }, []],
          ['write', { site: 'transformer.h.2', port: 'output', invoke: 0, index: [null, [-1, null, null]] }, [0]],
          ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
          ['index', { index: [0, -1] }, [2]],
          ['save', { name: 'patched_logits' }, [3]],
        ],
      }],
    }), {}],
]

const fail: FailCase[] = [
  ['train-loss-not-scalar', 'a loss that is not a scalar', program([['trainable', { name: 'v' }, []], ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []]], [{ ids: FRANCE }],
    { params: vDecl, train: { params: ['v'], loss: 1, optimizer: { kind: 'adam', lr: 0.1 } } }),
  ['train.loss: node 1 must be a scalar float (shape [] or all dims 1), got float32 [1, 5, 4096]']],
  ['train-undeclared', 'training a param that is not declared, with an unknown optimizer field', program([['trainable', { name: 'v' }, []], ['sum', { axes: null, keepdims: false }, [0]]], [{ ids: FRANCE }],
    { params: vDecl, train: { params: ['w'], loss: 1, optimizer: { kind: 'sgd', lr: 0.1, betas: [0.9, 0.99] } as never } }),
  ["train.params: 'w' is not a declared param", "train.optimizer (sgd): unknown field 'betas'"]],
  ['trainable-undeclared', 'using a param the Program does not declare', program([['trainable', { name: 'u' }, []], ['save', { name: 'u' }, [0]]], [{ ids: FRANCE }], { params: vDecl }),
    ["trainable: 'u' is not a declared param (declare it in the Program's params)"]],
  ['param-bad-init', 'a tensor init whose shape differs from the declared shape', program([['trainable', { name: 'v' }, []], ['save', { name: 'v' }, [0]]], [{ ids: FRANCE }],
    { params: { v: { shape: [256], dtype: 'float32', init: { tensor: { dtype: 'float32', shape: [4], data: new Float32Array(4) } } } } }),
  ['params.v: init.tensor has shape [4], the param [256]']],
  ['from-later-trace', 'a from that refers to its own trace', program([['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'a' }, [0]]], [{ ids: FRANCE }], {
    then: [{ mode: 'trace', invokes: [{ ids: JAPAN }], nodes: [['from', { trace: 1, node: 0 }, []], ['save', { name: 'b' }, [0]]] }],
  }), ['then[0]: from: trace 1 is not an earlier trace (0..0)']],
  ['from-in-first-trace', 'a from in the first trace (there is no earlier one)', program([['from', { trace: 0, node: 0 }, []], ['save', { name: 'a' }, [0]]], [{ ids: FRANCE }]),
    ['from: only later traces of a session (then[…]) may use values of earlier traces']],
  ['keep-attach-undeclared', 'an attachment naming a param the Program does not declare, and one of an unknown kind', program(steering, [{ ids: FRANCE }, { ids: JAPAN }], {
    params: vDecl, keep: { adapter: 'x', attach: [{ steer: { site: 'transformer.h.2', port: 'output', param: 'w' } }, { prefix: { tokens: 4 } } as never] },
  }), ["keep.attach[0]: steer.param: 'w' is not a declared param", 'keep.attach[1]: must be one of {lora: {module, a, b, scale}}, {steer: {site, port, param}}, {probe: {site, port, w, b?}}']],
  ['keep-attach-lora-shape', 'a LoRA attachment whose A does not fit its module\'s input (255 features, the module has 256)', program(lora, [{ ids: FRANCE }], {
    params: { A: { shape: [255, 2], dtype: 'float32', init: { zeros: true } }, B: { shape: [2, 1024], dtype: 'float32', init: { zeros: true } } },
    keep: { adapter: 'x', attach: [{ lora: { module: 'transformer.h.3.mlp.c_fc', a: 'A', b: 'B', scale: 1 } }] },
  }), ["keep.attach[0]: lora: a is [255, 2] but the input of 'transformer.h.3.mlp.c_fc' has 256 features"]],
  ['keep-attach-steer-site', 'a steering attachment at a site the model does not have', program(steering, [{ ids: FRANCE }, { ids: JAPAN }], {
    params: vDecl, keep: { adapter: 'x', attach: [{ steer: { site: 'transformer.h.99', port: 'output', param: 'v' } }] },
  }), ["keep.attach[0]: steer: 'transformer.h.99' (output) is not a site of demo-gpt2"]],
  ['session-duplicate-save', 'two traces saving under one name', program([['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'a' }, [0]]], [{ ids: FRANCE }], {
    then: [{ mode: 'trace', invokes: [{ ids: JAPAN }], nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'a' }, [0]]] }],
  }), ["save: save name 'a' is also used by trace 0; names are unique across a session"]],
]

export function sessionVectors (): VectorFile[] {
  const manifest = demoGpt2Manifest()
  return [...pass.map(c => passProgramFile(c, manifest)), ...fail.map(c => failProgramFile(c))]
}
