/**
 * Generate-mode Program vectors against the demo-gpt2 manifest: valid Programs with per-step reads and writes (saved
 * types written by hand, checked against inference) and invalid ones with hand-written expected issues.
 */
import { tensor, validateProgram, type Program, type ProgramNode, type Invoke, type GenerateOptions } from '@weft/core'
import { demoGpt2Manifest } from '@weft/core/testing'
import type { VectorFile } from './types.js'
import { failProgramFile, passProgramFile, type FailCase, type PassCase } from './program-files.js'

const IDS = [328, 370, 293, 3606, 297] // "The capital of France is"
const IDS_JAPAN = [328, 370, 293, 3430, 297]
const GREEDY: GenerateOptions = { maxNewTokens: 4, strategy: 'greedy', stopTokenIds: [0] }

function program (nodes: ProgramNode[], invokes: Invoke[] = [{ ids: IDS }], generate: GenerateOptions | null = GREEDY, mode: Program['mode'] = 'generate'): Program {
  return { version: 1, model: { name: 'demo-gpt2', revision: null }, mode, ...(generate === null ? {} : { generate }), invokes, nodes }
}

const site = (op: 'read' | 'write', path: string, step: number | 'all', invoke = 0): [string, Record<string, unknown>] =>
  [op, { site: path, port: 'output', invoke, step }]
const read = (path: string, step: number | 'all', invoke = 0): ProgramNode => [...site('read', path, step, invoke), []] as ProgramNode
const write = (path: string, step: number | 'all', input: number, invoke = 0): ProgramNode => [...site('write', path, step, invoke), [input]] as ProgramNode

const pass: PassCase[] = [
  ['generate-steering', 'steer block 1 at every step; save the prompt-pass block 3, the step-2 logits and step-3 attention', program([
    read('transformer.h.1', 'all'),
    ['const', { value: tensor(new Float32Array(256).fill(0.5)) as never }, []],
    ['add', {}, [0, 1]],
    write('transformer.h.1', 'all', 2),
    read('transformer.h.3', 0),
    ['save', { name: 'h3' }, [4]],
    read('lm_head', 2),
    ['index', { index: [0, -1] }, [6]],
    ['save', { name: 'logits_step2' }, [7]],
    read('transformer.h.0.attn.probs', 3),
    ['save', { name: 'probs_step3' }, [9]],
  ]), { h3: { shape: [1, 5, 256], dtype: 'float32' }, logits_step2: { shape: [4096], dtype: 'float32' }, probs_step3: { shape: [1, 8, 1, 8], dtype: 'float32' } }],
  ['generate-sampling-patch', 'seeded sampling; invoke 1 gets invoke 0\'s step-1 MLP output of block 2 at its step 1', program([
    read('transformer.h.2.mlp', 1, 0),
    write('transformer.h.2.mlp', 1, 0, 1),
    read('lm_head', 1, 1),
    ['argmax', { axis: -1, keepdims: false }, [2]],
    ['save', { name: 'patched_top' }, [3]],
  ], [{ ids: IDS }, { ids: IDS_JAPAN }], { maxNewTokens: 3, strategy: { temperature: 0.7, topK: 20, seed: 1234 } }), { patched_top: { shape: [1, 1], dtype: 'int64' } }],
]

const fail: FailCase[] = [
  ['generate-step-range', 'a read at step 4 of a 4-token generation', program([read('lm_head', 4), ['save', { name: 'x' }, [0]]]),
    ['read: step 4 is not below maxNewTokens (4)']],
  ['generate-save-all', "saving a value read at every step ('all')", program([read('lm_head', 'all'), ['save', { name: 'x' }, [0]]]),
    ["save: a value of step 'all' has one value per step; read it at explicit steps to save it"]],
  ['generate-later-step', 'a step-1 write using a value of step 2', program([read('transformer.h.3', 2), write('transformer.h.1', 1, 0), ['save', { name: 'x' }, [1]]]),
    ['write: a write at step 1 cannot use a value of the later step 2']],
  ['generate-causality', 'within step 2, writing block 1 with a value read from block 3', program([read('transformer.h.3', 2), write('transformer.h.1', 2, 0), ['save', { name: 'x' }, [1]]]),
    ["causality violation: the value written to 'transformer.h.1' output depends on node 0"]],
  ['generate-reserved-save', 'a save named like the generated tokens', program([read('lm_head', 0), ['save', { name: 'generated.0' }, [0]]]),
    ["save: the name 'generated.0' is reserved for the generated tokens"]],
  ['generate-no-options', 'generate mode without generate options', program([read('lm_head', 0), ['save', { name: 'x' }, [0]]], [{ ids: IDS }], null),
    ['generate mode needs generate: { maxNewTokens, strategy, stopTokenIds? }']],
  ['generate-step-in-trace', 'a step attr in trace mode', program([read('lm_head', 1), ['save', { name: 'x' }, [0]]], [{ ids: IDS }], null, 'trace'),
    ['read: step 1 is only allowed in generate mode']],
]

export function generateVectors (): VectorFile[] {
  const manifest = demoGpt2Manifest()
  const files: VectorFile[] = pass.map((c) => passProgramFile(c, manifest))
  for (const c of fail) {
    const [id, , p, issues] = c
    const found = validateProgram(p, manifest).map(i => i.message)
    for (const issue of issues) {
      if (!found.some(m => m.includes(issue))) throw new Error(`${id}: expected an issue containing "${issue}", validation gives ${JSON.stringify(found)}`)
    }
    files.push(failProgramFile(c))
  }
  return files
}
