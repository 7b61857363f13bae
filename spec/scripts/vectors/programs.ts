/**
 * Program vectors against the demo-gpt2 manifest: valid programs with their encoding, digest and the saved types
 * (written by hand and checked against inference), and invalid programs with hand-written expected issues.
 */
import { tensor, type Program, type ProgramNode, type Invoke } from '@weft/core'
import { demoGpt2Manifest } from '@weft/core/testing'
import type { VectorFile } from './types.js'
import { failProgramFile, passProgramFile, type FailCase, type PassCase } from './program-files.js'

const IDS = [328, 370, 293, 3606, 297] // "The capital of France is"
const IDS_JAPAN = [328, 370, 293, 3430, 297]

function program (nodes: ProgramNode[], invokes: Invoke[] = [{ ids: IDS }], extra: Partial<Program> = {}): Program {
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes, nodes, ...extra }
}

const pass: PassCase[] = [
  ['logit-lens', 'logit lens: block 3 through ln_f and lm_head, softmax, top token', program([
    ['read', { site: 'transformer.h.3', port: 'output', invoke: 0 }, []],
    ['module_call', { module: 'transformer.ln_f' }, [0]],
    ['module_call', { module: 'lm_head' }, [1]],
    ['softmax', { axis: -1 }, [2]],
    ['argmax', { axis: -1, keepdims: false }, [3]],
    ['save', { name: 'probs' }, [3]],
    ['save', { name: 'top' }, [4]],
  ]), { probs: { shape: [1, 5, 4096], dtype: 'float32' }, top: { shape: [1, 5], dtype: 'int64' } }],
  ['activation-patching', 'patch the last-token MLP output of block 2 from invoke 0 into invoke 1', program([
    ['read', { site: 'transformer.h.2.mlp', port: 'output', invoke: 0 }, []],
    ['index', { index: [null, [-1, null, null]] }, [0]],
    ['write', { site: 'transformer.h.2.mlp', port: 'output', invoke: 1, index: [null, [-1, null, null]] }, [1]],
    ['read', { site: 'lm_head', port: 'output', invoke: 1 }, []],
    ['index', { index: [0, -1] }, [3]],
    ['save', { name: 'patched_logits' }, [4]],
  ], [{ ids: IDS }, { ids: IDS_JAPAN }]), { patched_logits: { shape: [4096], dtype: 'float32' } }],
  ['steering-const', 'add a constant steering vector to block 3 and read the logits', program([
    ['read', { site: 'transformer.h.3', port: 'output', invoke: 0 }, []],
    ['const', { value: tensor(new Float32Array(256).fill(0.25)) as never }, []],
    ['add', {}, [0, 1]],
    ['write', { site: 'transformer.h.3', port: 'output', invoke: 0 }, [2]],
    ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
    ['save', { name: 'logits' }, [4]],
  ]), { logits: { shape: [1, 5, 4096], dtype: 'float32' } }],
  ['attention-text', 'attention probabilities of head 0 for a text invoke (symbolic seq)', program([
    ['read', { site: 'transformer.h.0.attn.probs', port: 'output', invoke: 0 }, []],
    ['index', { index: [0, 0] }, [0]],
    ['save', { name: 'head0' }, [1]],
  ], [{ text: 'The capital of France is' }]), { head0: { shape: ['seq@0', 'seq@0'], dtype: 'float32' } }],
  ['ablation-stop', 'zero-ablate the MLP input of block 1, save the block output, stop early', program([
    ['read', { site: 'transformer.h.1.mlp', port: 'input', invoke: 0 }, []],
    ['const', { value: tensor([0]) as never }, []],
    ['mul', {}, [0, 1]],
    ['write', { site: 'transformer.h.1.mlp', port: 'input', invoke: 0 }, [2]],
    ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []],
    ['norm', { axes: [-1], keepdims: false, ord: 2 }, [4]],
    ['save', { name: 'norms' }, [5]],
    ['stop', {}, []],
  ], [{ ids: IDS }], { locations: [null, null, null, { file: 'ablate.ts', line: 4 }, null, null, null, null] }), { norms: { shape: [1, 5], dtype: 'float32' } }],
  ['gradient-attribution', 'gradient of the last-position logit difference " Paris" − " Tokyo" w.r.t. the input of block 3 and a LayerNorm weight', program([
    ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []],
    ['index', { index: [0, -1, 3682] }, [0]],
    ['index', { index: [0, -1, 4080] }, [0]],
    ['sub', {}, [1, 2]],
    ['read', { site: 'transformer.h.3', port: 'input', invoke: 0 }, []],
    ['grad', {}, [3, 4]],
    ['param', { name: 'transformer.h.0.ln_1.weight' }, []],
    ['grad', {}, [3, 6]],
    ['save', { name: 'grad_h3' }, [5]],
    ['save', { name: 'grad_ln_1' }, [7]],
  ]), { grad_h3: { shape: [1, 5, 256], dtype: 'float32' }, grad_ln_1: { shape: [256], dtype: 'float32' } }],
]

const read = (site: string, port = 'output', invoke = 0): ProgramNode => ['read', { site, port, invoke }, []]

const fail: FailCase[] = [
  ['unknown-module', 'a module the model does not have', program([read('transformer.h.9'), ['save', { name: 'x' }, [0]]]),
    ["read: unknown module 'transformer.h.9' (model has transformer.h.0 … transformer.h.5)"]],
  ['broadcast', 'adding a [3] vector to a [1,5,256] activation', program([read('transformer.h.0'), ['const', { value: tensor([1, 2, 3]) as never }, []], ['add', {}, [0, 1]], ['save', { name: 'x' }, [2]]]),
    ['add: cannot broadcast [1,5,256] with [3]']],
  ['index-range', 'token index 7 of a 5-token invoke', program([read('transformer.h.0'), ['index', { index: [0, 7] }, [0]], ['save', { name: 'x' }, [1]]]),
    ['index: index 7 out of range for dim 1 of size 5']],
  ['causality', 'writing block 1 with a value read from block 3', program([read('transformer.h.3'), ['write', { site: 'transformer.h.1', port: 'output', invoke: 0 }, [0]], ['save', { name: 'x' }, [1]]]),
    ["causality violation: the value written to 'transformer.h.1' output depends on node 0"]],
  ['duplicate-save', 'two saves with one name', program([read('lm_head'), ['save', { name: 'x' }, [0]], ['save', { name: 'x' }, [0]]]),
    ["save: duplicate save name 'x' (first saved at node 1)"]],
  ['no-saves', 'a program that returns nothing', program([read('lm_head')]), ['program saves nothing']],
  ['token-out-of-vocab', 'a token id ≥ vocab size', program([read('lm_head'), ['save', { name: 'x' }, [0]]], [{ ids: [4096] }]),
    ['invoke 0: token id 4096 outside the vocabulary [0, 4096)']],
  ['unknown-op', 'an op that is not in the table', program([read('lm_head'), ['fft', {}, [0]], ['save', { name: 'x' }, [0]]]), ["unknown op 'fft'"]],
  ['forward-reference', 'an input that is not an earlier node', program([['neg', {}, [1]], read('lm_head'), ['save', { name: 'x' }, [0]]]),
    ['neg: input 1 must refer to an earlier node (< 0)']],
  ['invoke-range', 'reading invoke 2 of a 1-invoke program', program([read('lm_head', 'output', 2), ['save', { name: 'x' }, [0]]]),
    ['invoke 2 out of range (program has 1 invoke)']],
  ['arity', 'add with one input', program([read('lm_head'), ['add', {}, [0]], ['save', { name: 'x' }, [1]]]), ['add: needs 2 inputs, got 1']],
  ['bad-attr', 'softmax with a text axis', program([read('lm_head'), ['softmax', { axis: 'last' }, [0]], ['save', { name: 'x' }, [1]]]),
    ["softmax: attribute 'axis' must be an integer"]],
  ['grad-wrt-index', 'a gradient w.r.t. an indexed read (take the gradient of the site, then index it)',
    program([read('lm_head'), ['index', { index: [0, -1] }, [0]], ['sum', {}, [1]], ['grad', {}, [2, 1]], ['save', { name: 'x' }, [3]]]),
    ['grad: wrt (node 1) must be a read, param or trainable node, got index']],
  ['grad-not-scalar', 'a gradient of a non-scalar value', program([read('lm_head'), read('transformer.h.0'), ['grad', {}, [0, 1]], ['save', { name: 'x' }, [2]]]),
    ['grad: of must be a scalar (shape [] or all dims 1), got [1,5,4096]']],
  ['grad-write', 'writing a gradient back into the forward pass', program([read('lm_head'), ['sum', {}, [0]], read('transformer.h.5'), ['grad', {}, [1, 2]],
    ['write', { site: 'transformer.h.5', port: 'output', invoke: 0 }, [3]], ['save', { name: 'x' }, [4]]]),
    ["causality violation: the value written to 'transformer.h.5' output depends on node 3 (a gradient)"]],
  ['version', 'an unknown Program version', { ...program([read('lm_head'), ['save', { name: 'x' }, [0]]]), version: 2 }, ['version must be 1, got 2']],
]

export function programVectors (): VectorFile[] {
  const manifest = demoGpt2Manifest()
  const files: VectorFile[] = pass.map((c) => passProgramFile(c, manifest))
  for (const c of fail) files.push(failProgramFile(c))
  return files
}

export function manifestFile (): VectorFile {
  return { path: 'manifests/demo-gpt2.json', body: demoGpt2Manifest() as unknown as Record<string, unknown> }
}
