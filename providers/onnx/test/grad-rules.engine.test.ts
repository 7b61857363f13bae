/**
 * Every VJP rule, one ONNX node at a time, against central finite differences computed by onnxruntime on the
 * same graph (float64 where ORT has the kernel); static and run-time broadcasting; unsupported ops are typed errors.
 */
import { describe, expect, test } from 'vitest'
import { create, toBinary } from '@bufbuild/protobuf'
import * as ort from 'onnxruntime-node'
import { WeftError, type DType } from '@weft/core'
import { onnx } from '../src/graph/onnx.js'
import { Emitter, valueInfo, type AttrSpec } from '../src/compile/emitter.js'
import { GradBuilder } from '../src/compile/grad/builder.js'
import { ShapeTable } from '../src/compile/grad/shapes.js'
import { backward } from '../src/compile/grad/backward.js'
import { ONNX_OPS, type OnnxOpType } from '../src/compile/onnx-ops.js'

type In = { shape: number[]; lo?: number; hi?: number } | { ints: number[]; dims?: number[] } | { bools: boolean[]; dims: number[] } | { floats: number[] }
interface Case { name: string; op: string; inputs: In[]; attrs?: Record<string, AttrSpec>; outputs?: number; dtype?: 'float32' | 'float64'; symbolic?: boolean; take?: number[] }

let seed = 12345
const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }

function fill (shape: number[], lo = -2, hi = 2): number[] {
  return Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * rand())
}

interface Built { bytes: Uint8Array; feeds: { name: string; shape: number[]; data: number[] }[]; of: string; grads: string[] }

/** One node, `of = Σ_k Σ y_k · w_k` (w_k random constants), and its backward graph. */
function build (c: Case, outShapes: number[][] | null): Built {
  const dtype: DType = c.dtype ?? 'float64'
  const emit = new Emitter('t.', 18)
  const feeds: Built['feeds'] = []
  const names = c.inputs.map((input, i) => {
    if ('ints' in input) return emit.int64(input.ints, input.dims)
    if ('floats' in input) {
      // a rank-0 constant of the case's dtype (Clip's bounds)
      const name = emit.fresh('bound')
      const raw = dtype === 'float64' ? new Uint8Array(Float64Array.from(input.floats).buffer) : new Uint8Array(Float32Array.from(input.floats).buffer)
      emit.initializers.push(create(onnx.TensorProtoSchema, { name, dims: [], dataType: dtype === 'float64' ? onnx.TensorProto_DataType.DOUBLE : onnx.TensorProto_DataType.FLOAT, rawData: raw }))
      return name
    }
    if ('bools' in input) {
      const name = emit.fresh('bool')
      emit.initializers.push(create(onnx.TensorProtoSchema, { name, dims: input.dims.map(BigInt), dataType: onnx.TensorProto_DataType.BOOL, int32Data: input.bools.map(Number) }))
      return name
    }
    const name = emit.input(`x${i}`, dtype, c.symbolic === true ? input.shape.map((_, d) => `s${i}.${d}`) : input.shape)
    feeds.push({ name, shape: input.shape, data: fill(input.shape, input.lo, input.hi) })
    return name
  })
  const ys = emit.node(c.op, names, c.attrs ?? {}, c.outputs ?? 1)
  const take = c.take ?? [0]
  let of = ''
  if (outShapes !== null) {
    const terms = take.map((k, j) => {
      const w = emit.input(`w${k}`, dtype, outShapes[j]!)
      feeds.push({ name: w, shape: outShapes[j]!, data: fill(outShapes[j]!) })
      return emit.op('ReduceSum', [emit.op('Mul', [ys[k]!, w])], { keepdims: 0 })
    })
    of = terms.length === 1 ? terms[0]! : emit.op('Sum', terms)
  }
  const wrt = feeds.filter(f => f.name.includes('.x')).map(f => f.name)
  let grads: string[] = []
  if (outShapes !== null) {
    const forward = [...emit.nodes]
    const b = new GradBuilder(emit, new ShapeTable(emit.inputs, emit.initializers, forward))
    const result = backward({ nodes: forward, b, of, wrt })
    grads = wrt.map(w => emit.op('Identity', [result.get(w) ?? b.zerosLike(w)]))
  }
  const outputs = outShapes === null ? take.map(k => ys[k]!) : [of, ...grads]
  const graph = create(onnx.GraphProtoSchema, {
    name: c.name, node: emit.nodes, input: emit.inputs, initializer: emit.initializers, output: outputs.map(o => valueInfo(o, dtype, null)),
  })
  const model = create(onnx.ModelProtoSchema, { irVersion: 8n, opsetImport: [create(onnx.OperatorSetIdProtoSchema, { domain: '', version: 18n })], graph })
  return { bytes: toBinary(onnx.ModelProtoSchema, model), feeds, of, grads }
}

async function check (c: Case): Promise<void> {
  const dtype = c.dtype ?? 'float64'
  const Arr = dtype === 'float64' ? Float64Array : Float32Array
  const probe = build(c, null)
  const first = await ort.InferenceSession.create(probe.bytes)
  const tensors = (feeds: Built['feeds']): Record<string, ort.Tensor> =>
    Object.fromEntries(feeds.map(f => [f.name, new ort.Tensor(dtype, Arr.from(f.data), f.shape)]))
  const shapes = Object.values(await first.run(tensors(probe.feeds))).map(t => [...t.dims])
  await first.release()
  seed = 777
  const built = build(c, shapes)
  const session = await ort.InferenceSession.create(built.bytes)
  const base = await session.run(tensors(built.feeds))
  const eps = dtype === 'float64' ? 1e-6 : 1e-2
  const tol = dtype === 'float64' ? 1e-6 : 3e-3
  const wrt = built.feeds.filter(f => f.name.includes('.x'))
  for (const [k, input] of wrt.entries()) {
    const analytic = base[built.grads[k]!]!.data as Float64Array
    expect(analytic.length, `${c.name}: gradient of ${input.name} has the input's size`).toBe(input.data.length)
    for (let probeIndex = 0; probeIndex < Math.min(4, input.data.length); probeIndex++) {
      const at = Math.floor(rand() * input.data.length)
      const value = async (delta: number): Promise<number> => {
        const feeds = built.feeds.map(f => f === input ? { ...f, data: f.data.map((v, i) => i === at ? v + delta : v) } : f)
        return Number((await session.run(tensors(feeds)))[built.of]!.data[0])
      }
      const fd = (await value(eps) - await value(-eps)) / (2 * eps)
      expect(Math.abs(analytic[at]! - fd), `${c.name}: d/d${input.name}[${at}] = ${analytic[at]} vs finite difference ${fd}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(fd)))
    }
  }
  await session.release()
}

const x = (...shape: number[]): In => ({ shape })
const pos = (...shape: number[]): In => ({ shape, lo: 0.5, hi: 2 })

const CASES: Case[] = [
  { name: 'Add broadcast (leading and size-1 axes)', op: 'Add', inputs: [x(2, 3, 4), x(3, 1)] },
  { name: 'Add run-time broadcast', op: 'Add', inputs: [x(2, 3, 4), x(1, 4)], symbolic: true },
  { name: 'Mul run-time broadcast both ways', op: 'Mul', inputs: [x(3, 1), x(2, 1, 4)], symbolic: true },
  { name: 'Sub', op: 'Sub', inputs: [x(2, 3), x(3)] },
  { name: 'Mul', op: 'Mul', inputs: [x(3, 1), x(1, 4)] },
  { name: 'Div', op: 'Div', inputs: [x(2, 3), pos(2, 1)] },
  { name: 'Pow', op: 'Pow', inputs: [pos(2, 3), x(3)] },
  ...['Neg', 'Exp', 'Tanh', 'Sigmoid', 'Relu', 'Abs', 'Sin', 'Cos', 'Identity'].map(op => ({ name: op, op, inputs: [x(2, 5)] })),
  ...['Log', 'Sqrt', 'Reciprocal'].map(op => ({ name: op, op, inputs: [pos(2, 5)] })),
  { name: 'Erf (float32)', op: 'Erf', inputs: [x(2, 5)], dtype: 'float32' },
  { name: 'Cast float64 → float64', op: 'Cast', inputs: [x(4)], attrs: { to: 11 } },
  { name: 'Where', op: 'Where', inputs: [{ bools: [true, false, true], dims: [3] }, x(2, 3), x(1)] },
  { name: 'Max (binary)', op: 'Max', inputs: [x(2, 3), x(3)] },
  { name: 'Min (binary)', op: 'Min', inputs: [x(2, 3), x(2, 1)] },
  { name: 'Sum (variadic)', op: 'Sum', inputs: [x(2, 3), x(3), x(2, 1)] },
  { name: 'MatMul batched × 2-D weight', op: 'MatMul', inputs: [x(2, 3, 4), x(4, 5)] },
  { name: 'MatMul batched × batched', op: 'MatMul', inputs: [x(2, 3, 4), x(2, 4, 5)] },
  { name: 'MatMul broadcast batch', op: 'MatMul', inputs: [x(3, 4), x(2, 4, 5)] },
  { name: 'MatMul 1-D left', op: 'MatMul', inputs: [x(4), x(2, 4, 5)] },
  { name: 'MatMul 1-D right', op: 'MatMul', inputs: [x(2, 3, 4), x(4)] },
  { name: 'Gemm transA transB alpha beta', op: 'Gemm', inputs: [x(4, 3), x(5, 4), x(5)], attrs: { transA: 1, transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } } },
  { name: 'Softmax last axis', op: 'Softmax', inputs: [x(2, 3, 5)], attrs: { axis: -1 } },
  { name: 'Softmax axis 1', op: 'Softmax', inputs: [x(2, 3, 5)], attrs: { axis: 1 } },
  { name: 'LogSoftmax', op: 'LogSoftmax', inputs: [x(3, 6)], attrs: { axis: -1 } },
  { name: 'LayerNormalization', op: 'LayerNormalization', inputs: [x(2, 3, 8), x(8), x(8)], attrs: { axis: -1, epsilon: { float: 1e-5 } } },
  { name: 'LayerNormalization over two axes', op: 'LayerNormalization', inputs: [x(2, 3, 4), x(3, 4), x(3, 4)], attrs: { axis: 1 } },
  { name: 'ReduceSum axes keepdims 0', op: 'ReduceSum', inputs: [x(2, 3, 4), { ints: [1] }], attrs: { keepdims: 0 } },
  { name: 'ReduceSum all', op: 'ReduceSum', inputs: [x(2, 3)], attrs: { keepdims: 0 } },
  { name: 'ReduceMean two axes', op: 'ReduceMean', inputs: [x(2, 3, 4), { ints: [0, -1] }], attrs: { keepdims: 1 } },
  { name: 'ReduceMean run-time count', op: 'ReduceMean', inputs: [x(2, 3, 4), { ints: [-1] }], attrs: { keepdims: 0 }, symbolic: true },
  { name: 'ReduceMax', op: 'ReduceMax', inputs: [x(2, 5), { ints: [-1] }], attrs: { keepdims: 0 } },
  { name: 'ReduceMin', op: 'ReduceMin', inputs: [x(2, 5), { ints: [0] }], attrs: { keepdims: 1 } },
  { name: 'ReduceL2', op: 'ReduceL2', inputs: [x(2, 5), { ints: [1] }], attrs: { keepdims: 0 } },
  { name: 'ReduceL1', op: 'ReduceL1', inputs: [x(2, 5), { ints: [1] }], attrs: { keepdims: 0 } },
  { name: 'ReduceSumSquare', op: 'ReduceSumSquare', inputs: [x(2, 5), { ints: [1] }] },
  { name: 'ReduceLogSumExp', op: 'ReduceLogSumExp', inputs: [x(2, 5), { ints: [1] }] },
  { name: 'Reshape', op: 'Reshape', inputs: [x(2, 3, 4), { ints: [0, -1] }] },
  { name: 'Flatten', op: 'Flatten', inputs: [x(2, 3, 4)], attrs: { axis: 2 } },
  { name: 'Squeeze', op: 'Squeeze', inputs: [x(2, 1, 4), { ints: [1] }] },
  { name: 'Unsqueeze', op: 'Unsqueeze', inputs: [x(2, 4), { ints: [0, -1] }] },
  { name: 'Transpose', op: 'Transpose', inputs: [x(2, 3, 4)], attrs: { perm: [2, 0, 1] } },
  { name: 'Transpose reversed', op: 'Transpose', inputs: [x(2, 3, 4)] },
  { name: 'Expand', op: 'Expand', inputs: [x(3, 1), { ints: [2, 3, 4] }] },
  { name: 'Concat', op: 'Concat', inputs: [x(2, 3), x(2, 2), x(2, 1)], attrs: { axis: 1 } },
  { name: 'Concat run-time sizes', op: 'Concat', inputs: [x(2, 3), x(2, 2)], attrs: { axis: -1 }, symbolic: true },
  { name: 'Split, both outputs', op: 'Split', inputs: [x(2, 4), { ints: [1, 3] }], attrs: { axis: 1 }, outputs: 2, take: [0, 1] },
  { name: 'Split, one output used', op: 'Split', inputs: [x(2, 4), { ints: [1, 3] }], attrs: { axis: 1 }, outputs: 2, take: [1] },
  { name: 'Slice negative and open bounds', op: 'Slice', inputs: [x(3, 5), { ints: [1, -3] }, { ints: [1000, -1] }, { ints: [0, 1] }] },
  { name: 'Slice with steps (negative too)', op: 'Slice', inputs: [x(4, 7), { ints: [-1, 1] }, { ints: [-1000, 1000] }, { ints: [0, 1] }, { ints: [-2, 3] }] },
  { name: 'Slice with unit steps', op: 'Slice', inputs: [x(3, 5), { ints: [0] }, { ints: [2] }, { ints: [-1] }, { ints: [1] }] },
  { name: 'Gather rows (repeated indices accumulate)', op: 'Gather', inputs: [x(4, 3), { ints: [0, 2, 2, 1], dims: [2, 2] }], attrs: { axis: 0 } },
  { name: 'Gather negative scalar index', op: 'Gather', inputs: [x(2, 4, 3), { ints: [-1], dims: [] }], attrs: { axis: 1 } },
  { name: 'Gather 1-D indices on axis 1', op: 'Gather', inputs: [x(2, 4, 3), { ints: [3, 0, 3] }], attrs: { axis: 1 } },
  { name: 'GatherElements', op: 'GatherElements', inputs: [x(3, 4), { ints: [0, 3, 3, 1, 2, 0], dims: [3, 2] }], attrs: { axis: 1 } },
  { name: 'ScatterND', op: 'ScatterND', inputs: [x(4, 3), { ints: [2, 0], dims: [2, 1] }, x(2, 3)] },
  { name: 'ScatterElements', op: 'ScatterElements', inputs: [x(3, 4), { ints: [1, 3, 0, 2, 2, 1], dims: [3, 2] }, x(3, 2)], attrs: { axis: 1 } },
  { name: 'TopK values', op: 'TopK', inputs: [x(2, 6), { ints: [3] }], attrs: { axis: -1 }, outputs: 2 },
  { name: 'TopK values on axis 0', op: 'TopK', inputs: [x(5, 3), { ints: [2] }], attrs: { axis: 0 }, outputs: 2 },
  { name: 'ScatterElements add', op: 'ScatterElements', inputs: [x(3, 4), { ints: [1, 1, 0, 2, 2, 2], dims: [3, 2] }, x(3, 2)], attrs: { axis: 1, reduction: 'add' } },
  { name: 'Clip both bounds', op: 'Clip', inputs: [x(3, 5), { floats: [-0.5] }, { floats: [0.7] }] },
  { name: 'CumSum', op: 'CumSum', inputs: [x(3, 4), { ints: [1], dims: [] }] },
  { name: 'CumSum exclusive reverse', op: 'CumSum', inputs: [x(4, 3), { ints: [0], dims: [] }], attrs: { exclusive: 1, reverse: 1 } },
  { name: 'Einsum batched contraction', op: 'Einsum', inputs: [x(2, 3, 4), x(2, 4, 5)], attrs: { equation: 'bij,bjk->bik' } },
  { name: 'Einsum with a letter summed inside one operand', op: 'Einsum', inputs: [x(3, 4, 2), x(4, 5)], attrs: { equation: 'ijx,jk->ki' } },
  { name: 'Einsum to a scalar', op: 'Einsum', inputs: [x(3, 4), x(3, 4)], attrs: { equation: 'ij,ij->' } },
  { name: 'Einsum of one operand', op: 'Einsum', inputs: [x(3, 4, 2)], attrs: { equation: 'ijk->kj' } },
]

describe('VJP rules match finite differences', () => {
  for (const c of CASES) test(c.name, async () => { await check(c) })
})

test('every VJP rule of the ONNX op table is checked above', () => {
  const withRule = (Object.keys(ONNX_OPS) as OnnxOpType[]).filter(op => typeof ONNX_OPS[op].vjp === 'function')
  const untested = withRule.filter(op => !CASES.some(c => c.op === op))
  // Dropout passes the gradient through (its mask output is not float); Floor/Ceil/Round/Sign have zero gradient
  expect(untested.sort()).toEqual(['Ceil', 'Dropout', 'Floor', 'Round', 'Sign'])
})

test('an op without a rule on the path is BACKEND_CAPABILITY_MISSING naming the ONNX op and the module scope', () => {
  const emit = new Emitter('t.', 18)
  const xs = emit.input('x', 'float32', [2, 3])
  const node = create(onnx.NodeProtoSchema, {
    name: 'n', opType: 'ReduceProd', input: [xs], output: ['y'], attribute: [],
    metadataProps: [create(onnx.StringStringEntryProtoSchema, { key: 'weft.scope', value: 'transformer.h.1.attn' })],
  })
  emit.push(node)
  const of = emit.op('ReduceSum', ['y'], { keepdims: 0 })
  const forward = [...emit.nodes]
  const b = new GradBuilder(emit, new ShapeTable(emit.inputs, [], forward))
  try {
    backward({ nodes: forward, b, of, wrt: [xs] })
    expect.unreachable()
  } catch (error) {
    expect(WeftError.is(error, 'BACKEND_CAPABILITY_MISSING')).toBe(true)
    expect((error as Error).message).toBe("grad: no gradient rule for ONNX op 'ReduceProd' (in module 'transformer.h.1.attn')")
  }
})

test('a value that does not depend on wrt has no gradient (zero), and int paths carry none', () => {
  const emit = new Emitter('t.', 18)
  const a = emit.input('a', 'float32', [3])
  const c = emit.input('c', 'float32', [3])
  const of = emit.op('ReduceSum', [emit.op('Mul', [c, emit.op('Cast', [emit.op('Shape', [a])], { to: 1 })])], { keepdims: 0 })
  const forward = [...emit.nodes]
  const b = new GradBuilder(emit, new ShapeTable(emit.inputs, [], forward))
  expect(backward({ nodes: forward, b, of, wrt: [a] }).get(a)).toBeNull()
  expect(backward({ nodes: forward, b, of, wrt: [c] }).get(c)).not.toBeNull()
})
