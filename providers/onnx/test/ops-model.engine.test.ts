/**
 * The ops of #10 part 2 on demo-gpt2 sites: each op applied to real residual-stream values (transformer.h.1 outputs
 * of two invokes, independent of each other) on the engine, against core's reference interpreter in float64 on the same site values; and the
 * gradient of Σ w·op(…) w.r.t. the site reads (the compiled backward pass) against float64 central differences of
 * the same Program nodes on the reference interpreter.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { PROGRAM_VERSION, WeftError, interpretProgram, type JobResult, type Program, type ProgramNode, type Tensor } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'

const MODELS = new URL('../../../models/', import.meta.url).pathname
const IDS = [328, 370, 293, 3606, 297]
/** a second invoke of the same length: its transformer.h.1 output is a value independent of invoke 0's */
const IDS2 = [631, 1070, 302, 966, 680]
const H1 = 0
const H2 = 1

let handle: OnnxModelHandle
beforeAll(async () => {
  handle = await onnxBackend({ sessionCacheSize: 4 }).loadModel({ name: 'demo-gpt2', path: MODELS + 'demo-gpt2/' }) as OnnxModelHandle
})
afterAll(async () => { await handle.dispose() })

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
function random (seed: number, n: number): number[] {
  let a = seed >>> 0
  return Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1
  })
}

const f32 = (shape: number[], data: number[]): Tensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) })
const i64 = (shape: number[], data: number[]): Tensor => ({ dtype: 'int64', shape, data: BigInt64Array.from(data.map(BigInt)) })
const count = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1)

/**
 * One case: nodes appended after the two reads (node 0 = h1 [1,5,256] of invoke 0, node 1 = h2, the same site of invoke 1); `out` is the value checked
 * (its index relative to the case's first node) and `shape` its shape; `wrt` the reads it is differentiated by.
 */
interface Case { name: string; nodes: (base: number) => ProgramNode[]; shape: number[]; wrt: number[] }

const unary = (op: string, attrs: Record<string, unknown> = {}): Case =>
  ({ name: `${op} ${JSON.stringify(attrs)}`, nodes: () => [[op, attrs as never, [H1]]], shape: [1, 5, 256], wrt: [H1] })

/** index tensor [1, 5, 4] into 256 along the last axis, with a repeated and a negative index */
const IDX = i64([1, 5, 4], Array.from({ length: 20 }, (_, i) => i % 7 === 3 ? -1 : i % 5 === 0 ? 17 : (i * 37) % 256))

const CASES: Case[] = [
  unary('sin'), unary('cos'), unary('sigmoid'), unary('erf'), unary('gelu'), unary('gelu', { approximate: 'tanh' }), unary('silu'),
  unary('clamp', { min: -0.5, max: 0.5 }),
  unary('clamp', { min: 0 }),
  unary('cumsum', { axis: 1 }),
  unary('cumsum', { axis: -1, exclusive: true, reverse: true }),
  { name: 'topk along the sequence axis', nodes: () => [['topk', { k: 2, axis: 1, output: 'values' }, [H1]]], shape: [1, 2, 256], wrt: [H1] },
  { name: 'norm ord 1 over the sequence axis', nodes: () => [['norm', { axes: [1], ord: 1 }, [H1]]], shape: [1, 256], wrt: [H1] },
  { name: 'norm ord 2 over the last axis, kept', nodes: () => [['norm', { axes: [-1], ord: 2, keepdims: true }, [H1]]], shape: [1, 5, 1], wrt: [H1] },
  {
    name: 'gather along the last axis (repeated and negative indices)',
    nodes: (b) => [['const', { value: IDX as never }, []], ['gather', { axis: -1 }, [H1, b]]],
    shape: [1, 5, 4],
    wrt: [H1],
  },
  {
    name: 'scatter h2 values into h1',
    nodes: (b) => [
      ['const', { value: i64([1, 5, 3], Array.from({ length: 15 }, (_, i) => (i * 53 + 7) % 256)) as never }, []],
      ['index', { index: [null, null, [0, 3, null]] }, [H2]],
      ['scatter', { axis: -1 }, [H1, b, b + 1]],
    ],
    shape: [1, 5, 256],
    wrt: [H1, H2],
  },
  {
    name: 'scatter-add h2 values into h1 (repeated indices)',
    nodes: (b) => [['const', { value: IDX as never }, []], ['index', { index: [null, null, [0, 4, null]] }, [H2]], ['scatter', { axis: 2, reduction: 'add' }, [H1, b, b + 1]]],
    shape: [1, 5, 256],
    wrt: [H1, H2],
  },
  {
    name: 'logical and/or/xor/not of comparisons (no gradient)',
    nodes: (b) => [
      ['const', { value: f32([], [0]) as never }, []], ['gt', {}, [H1, b]], ['lt', {}, [H2, b]],
      ['logical_and', {}, [b + 1, b + 2]], ['logical_xor', {}, [b + 1, b + 2]], ['logical_not', {}, [b + 4]], ['logical_or', {}, [b + 3, b + 5]],
    ],
    shape: [1, 5, 256],
    wrt: [],
  },
  { name: "einsum 'bsd,btd->bst' (token-token scores)", nodes: () => [['einsum', { equation: 'bsd,btd->bst' }, [H1, H2]]], shape: [1, 5, 5], wrt: [H1, H2] },
  { name: "einsum 'bsd->ds'", nodes: () => [['einsum', { equation: 'bsd->ds' }, [H1]]], shape: [256, 5], wrt: [H1] },
  {
    name: "einsum 'bsd,de->bse' with a constant",
    nodes: () => [['const', { value: f32([256, 3], random(9, 768)) as never }, []], ['einsum', { equation: 'bsd,de->bse' }, [H1, 2]]],
    shape: [1, 5, 3],
    wrt: [H1],
  },
]

/** The forward nodes of a case: the two reads, the case's nodes, Σ w·out into the last node. */
function forward (c: Case, seed: number): { nodes: ProgramNode[]; out: number; loss: number } {
  const nodes: ProgramNode[] = [
    ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []],
    ['read', { site: 'transformer.h.1', port: 'output', invoke: 1 }, []],
  ]
  nodes.push(...c.nodes(nodes.length))
  const out = nodes.length - 1
  nodes.push(['const', { value: f32(c.shape, random(seed, count(c.shape))) as never }, []], ['mul', {}, [out, out + 1]], ['sum', { axes: null }, [out + 2]])
  return { nodes, out, loss: nodes.length - 1 }
}

const program = (nodes: ProgramNode[]): Program =>
  ({ version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: IDS }, { ids: IDS2 }], nodes })

async function run (p: Program): Promise<Extract<JobResult, { ok: true }>['saves']> {
  const [result] = await handle.run([{ id: 'job', program: p }])
  if (!result!.ok) throw WeftError.fromWire(result!.error)
  return result!.saves
}

const numbers = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number | bigint>, Number)
const float64 = (t: Tensor): Tensor => ({ dtype: 'float64', shape: [...t.shape], data: Float64Array.from(numbers(t)) })

function relError (got: number[], want: number[]): number {
  let num = 0; let den = 0
  want.forEach((w, i) => { num += (got[i]! - w) ** 2; den += w ** 2 })
  return Math.sqrt(num / Math.max(den, 1e-30))
}

describe('new ops on demo-gpt2 sites: engine vs float64 reference, gradients vs float64 finite differences', () => {
  let saves: Record<string, Tensor>
  const plans = CASES.map((c, k) => ({ c, ...forward(c, 100 + k) }))

  beforeAll(async () => {
    // one Program: every case's forward, its output, and the gradient of its loss w.r.t. each read it uses
    const nodes: ProgramNode[] = [
      ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []],
      ['read', { site: 'transformer.h.1', port: 'output', invoke: 1 }, []],
      ['save', { name: 'h1' }, [0]],
      ['save', { name: 'h2' }, [1]],
    ]
    plans.forEach(({ c, nodes: own, out }, k) => {
      // re-base the case's nodes after the shared reads (its reads are nodes 0 and 1 here too)
      const base = nodes.length - 2
      const shift = (i: number): number => i < 2 ? i : i + base
      own.slice(2).forEach(([op, attrs, inputs]) => nodes.push([op, attrs, inputs.map(shift)]))
      nodes.push(['save', { name: `out.${k}` }, [shift(out)]])
      for (const read of c.wrt) {
        nodes.push(['grad', {}, [shift(own.length - 1), read]], ['save', { name: `grad.${k}.${read}` }, [nodes.length]])
      }
    })
    saves = await run(program(nodes))
  }, 60_000)

  for (const [k, c] of CASES.entries()) {
    test(c.name, () => {
      const { nodes, out, loss } = plans[k]!
      const sites = [float64(saves.h1!), float64(saves.h2!)]
      const evaluate = (values: Tensor[], save: number): Tensor => {
        const oracle = program([...nodes, ['save', { name: 'y' }, [save]]])
        return interpretProgram(oracle, ({ attrs }) => values[attrs.invoke as number]!).y!
      }
      // forward: the engine's value vs the reference interpreter on the engine's own site values
      const want = evaluate(sites, out)
      expect(saves[`out.${k}`]!.shape).toEqual(want.shape)
      const forwardError = relError(numbers(saves[`out.${k}`]!), numbers(want))
      expect(forwardError, `${c.name}: forward relative error`).toBeLessThanOrEqual(1e-4)
      // gradient: central differences of the float64 loss at sampled coordinates of each read
      for (const read of c.wrt) {
        const grad = numbers(saves[`grad.${k}.${read}`]!)
        expect(grad.length).toBe(sites[read]!.data.length)
        const picks = Array.from({ length: 48 }, (_, i) => Math.floor((random(7 + i + 31 * k, 1)[0]! + 1) / 2 * grad.length))
        const eps = 1e-5
        const fd = picks.map(at => {
          const shifted = (delta: number): number => {
            const data = Float64Array.from(sites[read]!.data as Float64Array)
            data[at] += delta
            const values = sites.map((s, i) => i === read ? { ...s, data } : s)
            return numbers(evaluate(values, loss))[0]!
          }
          return (shifted(eps) - shifted(-eps)) / (2 * eps)
        })
        const got = picks.map(at => grad[at]!)
        const error = relError(got, fd)
        expect(error, `${c.name}: d/d(read ${read}) relative error ${error} (got ${got.slice(0, 4)} vs ${fd.slice(0, 4)})`).toBeLessThanOrEqual(1e-4)
      }
    })
  }
})
