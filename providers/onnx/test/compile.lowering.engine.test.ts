/**
 * Every tensor-op lowering, run by onnxruntime on a one-node graph, against the op table's hand-written
 * examples and core's reference interpreter (evalOp) on seeded random inputs; plus index assignment.
 */
import { describe, expect, test } from 'vitest'
import { create, toBinary } from '@bufbuild/protobuf'
import * as ort from 'onnxruntime-node'
import { OPS, evalOp, inferProgramTypes, tensor, type Attrs, type DType, type NestedArray, type Tensor } from '@weft/core'
import { onnx } from '../src/graph/onnx.js'
import { Emitter, valueInfo } from '../src/compile/emitter.js'
import { TENSOR_LOWERINGS, type LoweredOpName } from '../src/compile/tensor-ops.js'
import { assignIndex } from '../src/compile/index-ops.js'

interface Typed { shape: readonly number[]; dtype: DType }

async function runGraph (build: (emit: Emitter, inputs: string[]) => string, inputs: Tensor[], outDtype: DType): Promise<Tensor> {
  const emit = new Emitter('t.', 18)
  const names = inputs.map((t, i) => emit.input(`x${i}`, t.dtype, t.shape.map((_, d) => `x${i}d${d}`)))
  const out = emit.op('Identity', [build(emit, names)])
  const graph = create(onnx.GraphProtoSchema, {
    name: 'lowering', node: emit.nodes, input: emit.inputs, initializer: emit.initializers, output: [valueInfo(out, outDtype, null)],
  })
  const model = create(onnx.ModelProtoSchema, { irVersion: 8n, opsetImport: [create(onnx.OperatorSetIdProtoSchema, { domain: '', version: 18n })], graph })
  const session = await ort.InferenceSession.create(toBinary(onnx.ModelProtoSchema, model), { graphOptimizationLevel: 'disabled' })
  const feeds: Record<string, ort.Tensor> = {}
  inputs.forEach((t, i) => { feeds[names[i]!] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.shape]) })
  const result = (await session.run(feeds))[out]!
  await session.release()
  return { dtype: outDtype, shape: [...result.dims], data: result.data as Tensor['data'] }
}

/** Lowers one op through the table, with types from core's inference (a Program of consts feeding the op). */
async function lowerAndRun (op: LoweredOpName, attrs: Attrs, inputs: Tensor[]): Promise<Tensor> {
  const types = inferProgramTypes({
    version: 1, model: { name: 'm', revision: null }, mode: 'trace', invokes: [{ ids: [0] }],
    nodes: [...inputs.map(t => ['const', { value: t as never }, []] as [string, Attrs, number[]]), [op, attrs, inputs.map((_, i) => i)], ['save', { name: 'y' }, [inputs.length]]],
  }, { name: 'm', revision: 'sha256:0', family: 'test', config: {}, parameters: 0, modules: [], tokenizer: null, vocabSize: 1, maxPositions: null })
  const out = types[inputs.length]! as Typed
  return await runGraph((emit, names) => TENSOR_LOWERINGS[op](emit, attrs, names.map((name, i) => ({ name, type: types[i]! as Typed })), out), inputs, out.dtype)
}

const numbers = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number | bigint>, v => typeof v === 'bigint' ? Number(v) : Number(v))

function expectClose (got: Tensor, want: Tensor, label: string): void {
  expect(got.shape, label).toEqual([...want.shape])
  expect(got.dtype, label).toBe(want.dtype)
  const a = numbers(got)
  const b = numbers(want)
  a.forEach((v, i) => {
    if (Number.isNaN(b[i]!)) expect(Number.isNaN(v), label).toBe(true)
    else expect(Math.abs(v - b[i]!), `${label} [${i}]: ${v} vs ${b[i]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b[i]!)))
  })
}

const inputTensor = (value: NestedArray, dtype: DType | undefined): Tensor =>
  tensor(value, undefined, dtype ?? (typeof value === 'boolean' || (Array.isArray(value) && JSON.stringify(value).match(/true|false/) !== null) ? 'bool' : 'float32'))

describe('lowerings reproduce the op table examples', () => {
  for (const op of Object.keys(TENSOR_LOWERINGS) as LoweredOpName[]) {
    for (const example of OPS[op].examples) {
      test(`${op}: ${example.name}`, async () => {
        const inputs = example.inputs.map((v, i) => inputTensor(v as NestedArray, example.inputDtypes?.[i]))
        const got = await lowerAndRun(op, example.attrs, inputs)
        expectClose(got, evalOp(op, example.attrs, inputs), `${op}/${example.name} vs evalOp`)
      })
    }
  }
})

/** Deterministic pseudo-random floats (mulberry32). */
function random (seed: number, n: number): Float32Array {
  let a = seed >>> 0
  return Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 4 - 2
  })
}

describe('lowerings match evalOp on random inputs', () => {
  const x = (seed: number, shape: number[]): Tensor => ({ dtype: 'float32', shape, data: random(seed, shape.reduce((p, d) => p * d, 1)) })
  const count = (shape: number[]): number => shape.reduce((p, d) => p * d, 1)
  const bools = (seed: number, shape: number[]): Tensor => ({ dtype: 'bool', shape, data: Uint8Array.from(random(seed, count(shape)), v => v > 0 ? 1 : 0) })
  /** int64 indices in [-size, size) (negative ones count from the end) */
  const ints = (seed: number, shape: number[], size: number): Tensor =>
    ({ dtype: 'int64', shape, data: BigInt64Array.from(random(seed, count(shape)), v => BigInt(Math.min(size - 1, Math.floor((v + 2) / 4 * 2 * size) - size))) })
  const cases: [LoweredOpName, Attrs, Tensor[]][] = [
    ['add', {}, [x(1, [2, 3, 4]), x(2, [4])]],
    ['div', {}, [x(3, [3, 1]), x(4, [1, 5])]],
    ['matmul', {}, [x(5, [2, 3, 4]), x(6, [4, 5])]],
    ['softmax', { axis: 1 }, [x(7, [2, 6, 3])]],
    ['log_softmax', {}, [x(8, [3, 7])]],
    ['mean', { axes: [0, 2], keepdims: true }, [x(9, [3, 4, 5])]],
    ['max', { axes: [-1] }, [x(10, [3, 4])]],
    ['norm', { axes: [1], ord: 1 }, [x(11, [3, 4])]],
    ['norm', { axes: null }, [x(12, [3, 4])]],
    ['topk', { k: 3, output: 'indices' }, [x(13, [2, 9])]],
    ['argmax', { axis: 0, keepdims: true }, [x(14, [5, 3])]],
    ['index', { index: [[null, null, -2], 1, [1, -1, null]] }, [x(15, [5, 3, 6])]],
    ['index', { index: [-1, [-3, null, 2]] }, [x(16, [4, 7])]],
    ['transpose', { perm: [2, 0, 1] }, [x(17, [2, 3, 4])]],
    ['reshape', { shape: [4, -1] }, [x(18, [2, 3, 4])]],
    ['stack', { axis: -1 }, [x(19, [2, 3]), x(20, [2, 3])]],
    ['concat', { axis: 1 }, [x(21, [2, 3]), x(22, [2, 2])]],
    ['tanh', {}, [x(23, [7])]],
    ['gt', {}, [x(24, [3, 3]), x(25, [3])]],
    ['sin', {}, [x(26, [4, 5])]],
    ['cos', {}, [x(27, [4, 5])]],
    ['sigmoid', {}, [x(28, [4, 5])]],
    ['erf', {}, [x(29, [4, 5])]],
    ['gelu', {}, [x(30, [4, 5])]],
    ['gelu', { approximate: 'tanh' }, [x(31, [4, 5])]],
    ['silu', {}, [x(32, [4, 5])]],
    ['clamp', { min: -0.5, max: 0.75 }, [x(33, [4, 5])]],
    ['clamp', { max: 0 }, [x(34, [4, 5])]],
    ['cumsum', { axis: 1 }, [x(35, [3, 4, 2])]],
    ['cumsum', { axis: -1, exclusive: true, reverse: true }, [x(36, [3, 5])]],
    ['logical_and', {}, [bools(37, [3, 4]), bools(38, [4])]],
    ['logical_or', {}, [bools(39, [3, 4]), bools(40, [3, 1])]],
    ['logical_xor', {}, [bools(41, [3, 4]), bools(42, [3, 4])]],
    ['logical_not', {}, [x(43, [3, 4])]],
    ['topk', { k: 2, axis: 0, output: 'values' }, [x(44, [5, 3, 4])]],
    ['topk', { k: 3, axis: 1, output: 'indices' }, [x(45, [2, 6, 3])]],
    ['norm', { axes: [0, 2], keepdims: true, ord: 2 }, [x(46, [3, 4, 5])]],
    ['gather', { axis: 1 }, [x(47, [3, 6, 2]), ints(48, [3, 4, 2], 6)]],
    ['gather', { axis: 0 }, [x(49, [5, 3]), ints(50, [7, 3], 5)]],
    ['scatter', { axis: 1, reduction: 'add' }, [x(51, [3, 6]), ints(52, [3, 8], 6), x(53, [3, 8])]],
    ['scatter', { axis: -1 }, [x(54, [2, 6]), { dtype: 'int64', shape: [2, 2], data: BigInt64Array.from([5n, 0n, -1n, 2n]) }, x(55, [])]],
    ['einsum', { equation: 'bhqd,bhkd->bhqk' }, [x(56, [2, 3, 4, 5]), x(57, [2, 3, 6, 5])]],
    ['einsum', { equation: 'ij,jk,kl->il' }, [x(58, [3, 4]), x(59, [4, 5]), x(60, [5, 2])]],
    ['einsum', { equation: 'ijk->kj' }, [x(61, [3, 4, 2])]],
    ['einsum', { equation: 'i,i->' }, [x(62, [7]), x(63, [7])]],
  ]
  for (const [op, attrs, inputs] of cases) {
    test(`${op} ${JSON.stringify(attrs)}`, async () => {
      expectClose(await lowerAndRun(op, attrs, inputs), evalOp(op, attrs, inputs), op)
    })
  }
})

describe('index assignment', () => {
  test('x[:, 1::2, -1] = v broadcasts like numpy', async () => {
    const xs: Tensor = { dtype: 'float32', shape: [2, 5, 3], data: random(30, 30) }
    // the region x[:, 1::2, -1] is [2, 2]: v2 = [10, 20] broadcasts over the first dim (positions 1 and 3)
    const v2: Tensor = { dtype: 'float32', shape: [2], data: Float32Array.from([10, 20]) }
    const got = await runGraph((emit, [a, b]) => assignIndex(emit, a!, 3, [null, [1, null, 2], -1], b!, 1), [xs, v2], 'float32')
    const want = Float32Array.from(xs.data as Float32Array)
    for (let i = 0; i < 2; i++) { want[i * 15 + 1 * 3 + 2] = 10; want[i * 15 + 3 * 3 + 2] = 20 }
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(want))
  })
})
