/**
 * Gradients through edited forwards on demo-gpt2, against float64 finite differences: a zero-ablated MLP (full and
 * partial writes), attribution patching on attention probabilities; plus padded batches, co-tenants, shared passes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readFile } from 'node:fs/promises'
import { PROGRAM_VERSION, WeftError, type JobResult, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { compile } from '../src/compile/compile.js'
import { batchLayout } from '../src/compile/layout.js'
import { readCheckpointWeights, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights, type ReferenceHook } from './reference/forward.js'
import { mat, relativeError } from './reference/math.js'
import { causalLmLoss, centralDifference, gpt2LogitsWithProbs, nextTokenOneHot } from './grad-oracle.js'

const DIR = new URL('../../../models/demo-gpt2/', import.meta.url).pathname
const P0 = [328, 370, 293, 3606, 297]
const FOX = [328, 1180, 1077, 286, 1336, 78, 289, 1754, 888, 1863, 83, 1121, 266, 3418, 90, 89, 519, 71]
const [D, VOCAB, PARIS, TOKYO] = [256, 4096, 3682, 4080]

let handle: OnnxModelHandle
let weights: Map<string, Tensor64>
let config: Record<string, any>

beforeAll(async () => {
  handle = await onnxBackend({ sessionCacheSize: 16 }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
  weights = await readCheckpointWeights(DIR)
  config = JSON.parse(await readFile(DIR + 'config.json', 'utf8'))
})
afterAll(async () => { await handle.dispose() })

const program = (invokes: number[][], nodes: ProgramNode[]): Program =>
  ({ version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: invokes.map(ids => ({ ids })), nodes })
const read = (site: string, invoke = 0, port = 'output'): ProgramNode => ['read', { site, port, invoke }, []]
const zero: ProgramNode = ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(0) } as never }, []]

async function run (...programs: Program[]): Promise<Extract<JobResult, { ok: true }>['saves'][]> {
  const results = await handle.run(programs.map((p, i) => ({ id: `job${i}`, program: p })))
  return results.map(r => { if (!r.ok) throw WeftError.fromWire(r.error); return r.saves })
}

/** Appends the causal-LM loss of `ids` (invoke `invoke`); returns its node. */
function loss (nodes: ProgramNode[], ids: number[], invoke = 0): number {
  const b = nodes.length
  nodes.push(read('lm_head', invoke), ['index', { index: [0, [0, -1, null]] }, [b]], ['log_softmax', { axis: -1 }, [b + 1]],
    ['const', { value: { dtype: 'float32', shape: [ids.length - 1, VOCAB], data: nextTokenOneHot(ids, VOCAB) } as never }, []],
    ['mul', {}, [b + 2, b + 3]], ['sum', { axes: null }, [b + 4]],
    ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(-1 / (ids.length - 1)) } as never }, []], ['mul', {}, [b + 5, b + 6]])
  return b + 7
}
const grad = (nodes: ProgramNode[], of: number, wrt: number, name: string): void => { nodes.push(['grad', {}, [of, wrt]], ['save', { name }, [nodes.length]]) }

/** The float64 loss with `hooks` applied to module outputs (rows × features). */
function referenceLoss (hook: ReferenceHook): number {
  return causalLmLoss(referenceForwardWeights(config, weights, P0, { hook }).get('logits')!.data, P0, VOCAB)
}

describe('through writes', () => {
  test('zero-ablated MLP: d loss/d h1 matches finite differences of the ablated model; the overwritten value gets zero', async () => {
    const ablated: ProgramNode[] = [read('transformer.h.2.mlp'), zero, ['write', { site: 'transformer.h.2.mlp', port: 'output', invoke: 0 }, [1]], read('transformer.h.1')]
    const of = loss(ablated, P0)
    grad(ablated, of, 3, 'h1')
    grad(ablated, of, 0, 'mlp')
    const clean: ProgramNode[] = [read('transformer.h.1')]
    grad(clean, loss(clean, P0), 0, 'h1')
    const [edited, plain] = await run(program([P0], ablated), program([P0], clean))
    expect(Array.from(edited!.mlp!.data as Float32Array).every(v => v === 0)).toBe(true)
    expect(relativeError(edited!.h1!.data as Float32Array, plain!.h1!.data as Float32Array)).toBeGreaterThan(0.05)
    for (const at of [1 * D + 3, 3 * D + 100, 0 * D + 200]) {
      const fd = centralDifference((delta) => referenceLoss((path, m) => {
        if (path === 'transformer.h.2.mlp') return mat(m.rows, m.cols)
        if (path !== 'transformer.h.1') return undefined
        const copy = mat(m.rows, m.cols, Float64Array.from(m.data))
        copy.data[at] = copy.data[at]! + delta
        return copy
      }), 1e-4)
      const got = Number(edited!.h1!.data[at])
      expect(Math.abs(got - fd), `h1[${at}]: ${got} vs ${fd}`).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(fd), 1e-2))
    }
  })

  test('a partial write (last position) zeroes the gradient of the overwritten part only', async () => {
    const nodes: ProgramNode[] = [read('transformer.h.2.mlp'), zero, ['write', { site: 'transformer.h.2.mlp', port: 'output', invoke: 0, index: [null, [-1, null, null]] }, [1]]]
    grad(nodes, loss(nodes, P0), 0, 'mlp')
    const [saves] = await run(program([P0], nodes))
    const g = saves!.mlp!.data as Float32Array
    expect(saves!.mlp!.shape).toEqual([1, 5, D])
    expect(g.subarray(4 * D).every(v => v === 0)).toBe(true)
    for (let t = 0; t < 4; t++) expect(g.subarray(t * D, (t + 1) * D).some(v => v !== 0), `position ${t}`).toBe(true)
  })
})

describe('attribution patching', () => {
  test('d(logit " Paris" − " Tokyo")/d(attention probabilities of block 3) matches float64 finite differences', async () => {
    const nodes: ProgramNode[] = [read('lm_head'), ['index', { index: [0, -1, PARIS] }, [0]], ['index', { index: [0, -1, TOKYO] }, [0]],
      ['sub', {}, [1, 2]], read('transformer.h.3.attn.probs')]
    grad(nodes, 3, 4, 'probs')
    const [saves] = await run(program([P0], nodes))
    expect(saves!.probs!.shape).toEqual([1, 8, 5, 5])
    for (const [head, i, j] of [[0, 4, 0], [5, 4, 3], [7, 2, 1]] as const) {
      const fd = centralDifference((delta) => {
        const logits = gpt2LogitsWithProbs(config, weights, P0, (layer, h, probs) => {
          if (layer === 3 && h === head) probs.data[i * 5 + j] = probs.data[i * 5 + j]! + delta
        })
        return logits.data[4 * VOCAB + PARIS]! - logits.data[4 * VOCAB + TOKYO]!
      }, 1e-5)
      const got = Number(saves!.probs!.data[(head * 5 + i) * 5 + j])
      expect(Math.abs(got - fd), `probs[${head},${i},${j}]: ${got} vs ${fd}`).toBeLessThanOrEqual(1e-4 * Math.max(Math.abs(fd), 1e-1))
    }
  })
})

describe('batching', () => {
  test('a padded two-invoke batch and a co-tenant job give the gradients each gets alone; other rows get zero', async () => {
    const alone: ProgramNode[] = [read('transformer.h.2')]
    grad(alone, loss(alone, P0), 0, 'g')
    const batched: ProgramNode[] = [read('transformer.h.2', 0), read('transformer.h.2', 1)]
    const of = loss(batched, P0, 0)
    grad(batched, of, 0, 'g')
    grad(batched, of, 1, 'other')
    const fox: ProgramNode[] = [read('transformer.h.4')]
    grad(fox, loss(fox, FOX), 0, 'g')
    const [one] = await run(program([P0], alone))
    const [foxAlone] = await run(program([FOX], fox))
    const [two, cotenantA, cotenantB] = await run(program([P0, FOX], batched), program([P0], alone), program([FOX], fox))
    expect(relativeError(two!.g!.data as Float32Array, one!.g!.data as Float32Array)).toBeLessThanOrEqual(1e-5)
    expect(two!.other!.shape).toEqual([1, FOX.length, D])
    expect(Array.from(two!.other!.data as Float32Array).every(v => v === 0)).toBe(true)
    expect(relativeError(cotenantA!.g!.data as Float32Array, one!.g!.data as Float32Array)).toBeLessThanOrEqual(1e-5)
    expect(relativeError(cotenantB!.g!.data as Float32Array, foxAlone!.g!.data as Float32Array)).toBeLessThanOrEqual(1e-5)
  })

  test('grads with one `of` share one backward pass', () => {
    const size = (count: number): number => {
      const nodes: ProgramNode[] = []
      const of = loss(nodes, P0)
      for (let l = 0; l < count; l++) { nodes.push(read(`transformer.h.${l}`, 0, 'input')); grad(nodes, of, nodes.length - 1, `g${l}`) }
      const p = program([P0], nodes)
      return compile(handle.loaded.graph, [{ program: p }], batchLayout([{ program: p }], () => P0)).model.graph!.node.length
    }
    const [one, three] = [size(1), size(3)]
    expect(three - one).toBeLessThan(20)
  })

  test('validation refuses a gradient w.r.t. a computed value, naming the node', async () => {
    const nodes: ProgramNode[] = [read('transformer.h.2'), ['mul', {}, [0, 0]], ['sum', {}, [1]], ['grad', {}, [2, 1]], ['save', { name: 'g' }, [3]]]
    await expect(run(program([P0], nodes))).rejects.toMatchObject({ code: 'PROGRAM_INVALID', message: expect.stringContaining('grad: wrt (node 1) must be a read, param or trainable node, got mul') })
  })
})
