/**
 * Building blocks of the reference kernels (float64 arithmetic, rounded to the output dtype by the interpreter).
 * Each op's own kernel sits in its definition (`eval` in core/src/ops/*.ts); slow and obvious on purpose: engines
 * are checked against it.
 */
import type { Tensor } from '../tensor/tensor.js'
import { numel } from '../tensor/tensor.js'
import type { Kernel } from '../ops/types.js'
import { normAxes, normAxis } from '../ops/rules.js'
import { aroundAxis, broadcastMap, reduceMap, values } from './views.js'

export type { Kernel } from '../ops/types.js'

/** A kernel applying `fn` to broadcast elements of the inputs. */
export function elementwise (fn: (...xs: number[]) => number): Kernel {
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

/** A reduction over `attrs.axes` (null = all) from `init` with `step`, then `finish(acc, count)`. */
export function reduce (init: number, step: (acc: number, x: number) => number, finish: (acc: number, count: number) => number = acc => acc): Kernel {
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
export function alongAxis (x: Tensor, axisAttr: unknown, fn: (line: number[]) => number[], outSize?: number): Float64Array {
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

export const identity: Kernel = (_attrs, [x]) => x!
