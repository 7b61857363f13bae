/**
 * Gradients end to end: `grad` nodes compiled into demo-gpt2 and tiny-llama against the transformers references
 * (causal-LM loss, hidden states, parameters), and against float64 finite differences for edited forwards.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readFile } from 'node:fs/promises'
import { PROGRAM_VERSION, WeftError, type JobResult, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { readCheckpointWeights, readSafetensors, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights } from './reference/forward.js'
import { relativeError } from './reference/math.js'
import { causalLmLoss, centralDifference, nextTokenOneHot } from './grad-oracle.js'

const MODELS = new URL('../../../models/', import.meta.url).pathname
const P0 = [328, 370, 293, 3606, 297]
const VOCAB = 4096

interface Model { handle: OnnxModelHandle; refs: Map<string, Tensor64>; weights: Map<string, Tensor64>; config: Record<string, any> }
const models: Record<string, Model> = {}

beforeAll(async () => {
  for (const name of ['demo-gpt2', 'tiny-llama']) {
    const dir = MODELS + name + '/'
    models[name] = {
      handle: await onnxBackend({ sessionCacheSize: 8 }).loadModel({ name, path: dir }) as OnnxModelHandle,
      refs: await readSafetensors(dir + 'reference_activations.safetensors'),
      weights: await readCheckpointWeights(dir),
      config: JSON.parse(await readFile(dir + 'config.json', 'utf8')),
    }
  }
  // the dynamo export of demo-gpt2 (Gemm, Pow, GatherND, …): same references
  models['demo-gpt2-onnx'] = {
    ...models['demo-gpt2']!,
    handle: await onnxBackend({ sessionCacheSize: 8 }).loadModel({ name: 'demo-gpt2-onnx', path: MODELS + 'demo-gpt2-onnx/model.onnx' }) as OnnxModelHandle,
  }
})
afterAll(async () => { for (const m of Object.values(models)) await m.handle.dispose() })

const program = (model: string, invokes: number[][], nodes: ProgramNode[]): Program =>
  ({ version: PROGRAM_VERSION, model: { name: model, revision: null }, mode: 'trace', invokes: invokes.map(ids => ({ ids })), nodes })

async function run (model: string, p: Program): Promise<Extract<JobResult, { ok: true }>['saves']> {
  const [result] = await models[model]!.handle.run([{ id: 'job', program: p }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!.saves
}

/** Nodes computing the causal-LM loss of invoke `invoke` (ids known) into the last node; returns its index. */
function lossNodes (nodes: ProgramNode[], ids: number[], invoke = 0): number {
  const base = nodes.length
  nodes.push(
    ['read', { site: 'lm_head', port: 'output', invoke }, []],
    ['index', { index: [0, [0, -1, null]] }, [base]],
    ['log_softmax', { axis: -1 }, [base + 1]],
    ['const', { value: { dtype: 'float32', shape: [ids.length - 1, VOCAB], data: nextTokenOneHot(ids, VOCAB) } as never }, []],
    ['mul', {}, [base + 2, base + 3]],
    ['sum', { axes: null }, [base + 4]],
    ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(-1 / (ids.length - 1)) } as never }, []],
    ['mul', {}, [base + 5, base + 6]],
  )
  return base + 7
}

/** Appends `grad(of, wrt)` and its save. */
function gradOf (nodes: ProgramNode[], of: number, wrt: ProgramNode, name: string): void {
  nodes.push(wrt, ['grad', {}, [of, nodes.length]], ['save', { name }, [nodes.length + 1]])
}

/** hidden_states[L] of transformers: input of block L, and the final norm's output for the last one. */
function hiddenStateSites (layers: number, block: string, norm: string): [string, string][] {
  return [...Array.from({ length: layers }, (_, l) => [`${block}.${l}`, 'input'] as [string, string]), [norm, 'output']]
}

async function againstTransformers (model: string, layers: number, block: string, norm: string): Promise<void> {
  const { refs } = models[model]!
  const nodes: ProgramNode[] = []
  const loss = lossNodes(nodes, P0)
  nodes.push(['save', { name: 'loss' }, [loss]])
  hiddenStateSites(layers, block, norm).forEach(([site, port], l) => gradOf(nodes, loss, ['read', { site, port, invoke: 0 }, []], `hidden.${l}`))
  const params = [...refs.keys()].filter(k => k.startsWith('grad.param.')).map(k => k.slice('grad.param.'.length))
  expect(params.length).toBeGreaterThan(5)
  for (const name of params) gradOf(nodes, loss, ['param', { name }, []], `param.${name}`)
  const saves = await run(model, program(model, [P0], nodes))
  const expectedLoss = refs.get('grad.loss')!.data[0]!
  expect(Math.abs(Number(saves.loss!.data[0]) - expectedLoss) / expectedLoss).toBeLessThanOrEqual(1e-5)
  for (let l = 0; l <= layers; l++) {
    const ref = refs.get(`grad.hidden_states.${l}`)!
    expect(saves[`hidden.${l}`]!.shape).toEqual([1, ...ref.shape])
    expect(relativeError(saves[`hidden.${l}`]!.data as Float32Array, ref.data), `${model} hidden_states.${l}`).toBeLessThanOrEqual(1e-4)
  }
  for (const name of params) {
    const ref = refs.get(`grad.param.${name}`)!
    expect(saves[`param.${name}`]!.shape, name).toEqual(ref.shape)
    expect(relativeError(saves[`param.${name}`]!.data as Float32Array, ref.data), `${model} ${name}`).toBeLessThanOrEqual(1e-4)
  }
}

describe('against transformers (p0, causal-LM loss)', () => {
  test('demo-gpt2: loss, d loss/d hidden_states[0..6], every reference parameter gradient', async () => {
    await againstTransformers('demo-gpt2', 6, 'transformer.h', 'transformer.ln_f')
  })
  test('tiny-llama: loss, hidden states, parameter gradients in HF [out, in] layout', async () => {
    await againstTransformers('tiny-llama', 2, 'model.layers', 'model.norm')
  })
  test('demo-gpt2 imported from its ONNX export: the same gradients', async () => {
    await againstTransformers('demo-gpt2-onnx', 6, 'transformer.h', 'transformer.ln_f')
  })
})

describe('parameters beyond the reference, against float64 finite differences', () => {
  test('tied wte (embedding + head), its lm_head.weight alias, wpe, ln_f.bias and a late MLP weight', async () => {
    const { config, weights } = models['demo-gpt2']!
    const nodes: ProgramNode[] = []
    const loss = lossNodes(nodes, P0)
    const names = ['transformer.wte.weight', 'lm_head.weight', 'transformer.wpe.weight', 'transformer.ln_f.bias', 'transformer.h.5.mlp.c_proj.weight']
    for (const name of names) gradOf(nodes, loss, ['param', { name }, []], name)
    const saves = await run('demo-gpt2', program('demo-gpt2', [P0], nodes))
    expect(relativeError(saves['lm_head.weight']!.data as Float32Array, saves['transformer.wte.weight']!.data as Float32Array)).toBe(0)
    // wte rows: a prompt token (embedding and head), a token nowhere in the prompt (head only)
    const coordinates: [string, number][] = [
      ['transformer.wte.weight', 370 * 256 + 5], ['transformer.wte.weight', 1234 * 256 + 7],
      ['transformer.wpe.weight', 2 * 256 + 17], ['transformer.ln_f.bias', 3], ['transformer.h.5.mlp.c_proj.weight', 10 * 256 + 20],
    ]
    for (const [name, at] of coordinates) {
      const data = weights.get(name === 'lm_head.weight' ? 'transformer.wte.weight' : name)!.data
      const original = data[at]!
      const fd = centralDifference((delta) => {
        data[at] = original + delta
        try { return causalLmLoss(referenceForwardWeights(config, weights, P0).get('logits')!.data, P0, VOCAB) } finally { data[at] = original }
      }, 1e-4)
      const got = Number(saves[name]!.data[at])
      expect(Math.abs(got - fd), `${name}[${at}]: ${got} vs ${fd}`).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(fd), 1e-2))
    }
  })
})
