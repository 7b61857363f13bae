/**
 * Reference kernels: the executable semantics of every tensor op, in plain TypeScript (float64 arithmetic,
 * rounded to the output dtype). Slow and obvious on purpose; engines are checked against it.
 */
import type { Attrs } from '../ir/program.js'
import type { Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import type { OpName } from '../ops/table.js'
import { normAxes, normAxis } from '../ops/rules.js'
import { sliceRange } from '../ops/index-spec.js'
import { aroundAxis, broadcastMap, reduceMap, strides, values } from './views.js'

export type Kernel = (attrs: Attrs, inputs: Tensor[], outShape: number[]) => Float64Array | Tensor
export type TensorOpName = Exclude<OpName, 'read' | 'write' | 'module_call' | 'param' | 'stop' | 'grad' | 'trainable' | 'from'>

function elementwise (fn: (...xs: number[]) => number): Kernel {
  return (_attrs, inputs, outShape) => {
    const vals = inputs.map(values)
    const maps = inputs.map(t => broadcastMap(t.shape, outShape))
    const out = new Float64Array(numel(outShape))
    const xs = new Array<number>(inputs.length)
    for (let i = 0; i < out.length; i++) {
      for (let k = 0; k < xs.length; k++) xs[k] = vals[k]![maps[k]![i]!]!
      out[i] = fn(...xs)
    }
    return out
  }
}

function reduce (init: number, step: (acc: number, x: number) => number, finish: (acc: number, count: number) => number = acc => acc): Kernel {
  return (attrs, [x], outShape) => {
    const axes = normAxes('', attrs.axes, x!.shape.length)
    const { map } = reduceMap(x!.shape, axes)
    const out = new Float64Array(numel(outShape)).fill(init)
    const v = values(x!)
    for (let i = 0; i < v.length; i++) out[map[i]!] = step(out[map[i]!]!, v[i]!)
    const count = v.length / Math.max(1, out.length)
    return out.map(acc => finish(acc, count))
  }
}

/** Applies `fn` to every 1-D slice along `axis`, writing `outSize` results per slice (default: the axis length). */
function alongAxis (x: Tensor, axisAttr: unknown, fn: (line: number[]) => number[], outSize?: number): Float64Array {
  const axis = normAxis('', (axisAttr ?? -1) as number, x.shape.length)
  const { outer, size, inner } = aroundAxis(x.shape, axis)
  outSize ??= size
  const v = values(x)
  const out = new Float64Array(outer * outSize * inner)
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const line = Array.from({ length: size }, (_, k) => v[(o * size + k) * inner + i]!)
      fn(line).forEach((r, k) => { out[(o * outSize + k) * inner + i] = r })
    }
  }
  return out
}

function indexKernel (attrs: Attrs, [x]: Tensor[], outShape: number[]): Float64Array {
  const spec = attrs.index as unknown[]
  const perAxis = x!.shape.map((size, axis) => {
    const item = spec[axis] ?? null
    if (item === null) return Array.from({ length: size }, (_, i) => i)
    if (typeof item === 'number') return [item < 0 ? item + size : item]
    const [start, stop, step] = item as [number | null, number | null, number | null]
    const r = sliceRange(start, stop, step, size)
    return Array.from({ length: r.length }, (_, i) => r.start + i * r.step)
  })
  const st = strides(x!.shape)
  const v = values(x!)
  const out: number[] = []
  const walk = (axis: number, offset: number): void => {
    if (axis === perAxis.length) { out.push(v[offset]!); return }
    for (const i of perAxis[axis]!) walk(axis + 1, offset + i * st[axis]!)
  }
  walk(0, 0)
  if (out.length !== numel(outShape)) throw new Error('index kernel: size mismatch')
  return Float64Array.from(out)
}

function transposeKernel (attrs: Attrs, [x]: Tensor[], outShape: number[]): Float64Array {
  const perm = (attrs.perm as number[]).map(a => normAxis('', a, x!.shape.length))
  const inStrides = strides(x!.shape)
  const v = values(x!)
  const outStrides = strides(outShape)
  const out = new Float64Array(v.length)
  for (let flat = 0; flat < out.length; flat++) {
    let src = 0
    for (let axis = 0; axis < outShape.length; axis++) src += Math.floor(flat / outStrides[axis]!) % outShape[axis]! * inStrides[perm[axis]!]!
    out[flat] = v[src]!
  }
  return out
}

function concatKernel (attrs: Attrs, inputs: Tensor[], outShape: number[]): Float64Array {
  const axis = normAxis('', attrs.axis as number, outShape.length)
  const { outer, inner } = aroundAxis(outShape, axis)
  const out: number[] = []
  const vals = inputs.map(values)
  for (let o = 0; o < outer; o++) {
    inputs.forEach((t, k) => {
      const chunk = t.shape[axis]! * inner
      for (let i = 0; i < chunk; i++) out.push(vals[k]![o * chunk + i]!)
    })
  }
  return Float64Array.from(out)
}

function stackKernel (attrs: Attrs, inputs: Tensor[], outShape: number[]): Float64Array {
  const axis = normAxis('', attrs.axis as number, outShape.length)
  const expanded = inputs.map(t => { const shape = [...t.shape]; shape.splice(axis, 0, 1); return { ...t, shape } })
  return concatKernel({ axis }, expanded, outShape)
}

function matmulKernel (_attrs: Attrs, [a, b]: Tensor[], outShape: number[]): Float64Array {
  const aShape = a!.shape.length === 1 ? [1, a!.shape[0]!] : [...a!.shape]
  const bShape = b!.shape.length === 1 ? [b!.shape[0]!, 1] : [...b!.shape]
  const [m, k] = aShape.slice(-2) as [number, number]
  const n = bShape.at(-1)!
  const batchShape = outShape.slice(0, outShape.length - (a!.shape.length > 1 ? 1 : 0) - (b!.shape.length > 1 ? 1 : 0))
  const aMap = broadcastMap(aShape.slice(0, -2), batchShape)
  const bMap = broadcastMap(bShape.slice(0, -2), batchShape)
  const av = values(a!)
  const bv = values(b!)
  const out = new Float64Array(numel(batchShape) * m * n)
  for (let batch = 0; batch < numel(batchShape); batch++) {
    const ao = aMap[batch]! * m * k
    const bo = bMap[batch]! * k * n
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0
        for (let p = 0; p < k; p++) acc += av[ao + i * k + p]! * bv[bo + p * n + j]!
        out[(batch * m + i) * n + j] = acc
      }
    }
  }
  return out
}

function topkLine (k: number, wantIndices: boolean) {
  return (line: number[]): number[] => {
    const order = line.map((_, i) => i).sort((p, q) => (line[q]! - line[p]!) || p - q).slice(0, k)
    return wantIndices ? order : order.map(i => line[i]!)
  }
}

function softmaxLine (line: number[]): number[] {
  const top = Math.max(...line)
  const exps = line.map(x => Math.exp(x - top))
  const total = exps.reduce((s, x) => s + x, 0)
  return exps.map(x => x / total)
}

function logSoftmaxLine (line: number[]): number[] {
  const top = Math.max(...line)
  const lse = top + Math.log(line.reduce((s, x) => s + Math.exp(x - top), 0))
  return line.map(x => x - lse)
}

const identity: Kernel = (_attrs, [x]) => x!
const b = (v: boolean): number => v ? 1 : 0

export const KERNELS = {
  const: (attrs) => attrs.value as unknown as Tensor,
  save: identity,
  detach: identity,
  index: indexKernel,
  reshape: (_attrs, [x]) => values(x!),
  transpose: transposeKernel,
  concat: concatKernel,
  stack: stackKernel,
  add: elementwise((x, y) => x + y),
  sub: elementwise((x, y) => x - y),
  mul: elementwise((x, y) => x * y),
  div: elementwise((x, y) => x / y),
  pow: elementwise((x, y) => x ** y),
  neg: elementwise(x => -x),
  exp: elementwise(Math.exp),
  log: elementwise(Math.log),
  sqrt: elementwise(Math.sqrt),
  abs: elementwise(Math.abs),
  tanh: elementwise(Math.tanh),
  relu: elementwise(x => x > 0 ? x : 0),
  eq: elementwise((x, y) => b(x === y)),
  ne: elementwise((x, y) => b(x !== y)),
  lt: elementwise((x, y) => b(x < y)),
  le: elementwise((x, y) => b(x <= y)),
  gt: elementwise((x, y) => b(x > y)),
  ge: elementwise((x, y) => b(x >= y)),
  where: elementwise((c, x, y) => c !== 0 ? x : y),
  cast: elementwise(x => x),
  matmul: matmulKernel,
  sum: reduce(0, (acc, x) => acc + x),
  mean: reduce(0, (acc, x) => acc + x, (acc, count) => acc / count),
  max: reduce(-Infinity, (acc, x) => Number.isNaN(x) || x > acc ? x : acc),
  min: reduce(Infinity, (acc, x) => Number.isNaN(x) || x < acc ? x : acc),
  norm: (attrs, inputs, outShape) => (attrs.ord === 1
    ? reduce(0, (acc, x) => acc + Math.abs(x))
    : reduce(0, (acc, x) => acc + x * x, acc => Math.sqrt(acc)))(attrs, inputs, outShape),
  argmax: (attrs, [x]) => alongAxis(x!, attrs.axis, line => [topkLine(1, true)(line)[0]!], 1),
  topk: (attrs, [x]) => alongAxis(x!, attrs.axis, topkLine(attrs.k as number, attrs.output === 'indices'), attrs.k as number),
  softmax: (attrs, [x]) => alongAxis(x!, attrs.axis, softmaxLine),
  log_softmax: (attrs, [x]) => alongAxis(x!, attrs.axis, logSoftmaxLine),
} as const satisfies Record<TensorOpName, Kernel>
