/** Shared shape and dtype rules for the op table: numpy broadcasting, dtype promotion, axes, attr access. */
import { WeftError } from '../errors/weft-error.js'
import type { DType } from '../tensor/tensor.js'
import type { Attrs } from '../ir/program.js'
import { SYMBOLIC_DIM_ESTIMATE, type Dim, type ValueType } from './types.js'

export function fail (op: string, message: string): never {
  throw new WeftError('PROGRAM_INVALID', `${op}: ${message}`, { op })
}

export function fmtShape (shape: readonly Dim[]): string {
  return `[${shape.join(',')}]`
}

const FLOATS: readonly DType[] = ['float16', 'bfloat16', 'float32', 'float64']
const INT_RANK: Partial<Record<DType, number>> = { bool: 0, uint8: 1, int8: 2, int32: 3, int64: 4 }

export function isFloat (dtype: DType): boolean { return FLOATS.includes(dtype) }

/** The float dtype an op on `dtype` computes in: floats keep theirs, everything else becomes float32. */
export function floatOf (dtype: DType): DType { return isFloat(dtype) ? dtype : 'float32' }

/**
 * numpy-like promotion: the widest float wins over any integer (float16 with bfloat16 gives float32);
 * among integers the widest wins (uint8 with int8 gives int32). `arithmetic` turns an all-bool result into int64.
 */
export function promote (dtypes: readonly DType[], arithmetic: boolean): DType {
  const floats = dtypes.filter(isFloat)
  if (floats.length > 0) {
    if (floats.includes('float64')) return 'float64'
    if (floats.includes('float32')) return 'float32'
    const first = floats[0]!
    return floats.every(d => d === first) ? first : 'float32'
  }
  let best: DType = 'bool'
  for (const d of dtypes) if ((INT_RANK[d] ?? 0) > (INT_RANK[best] ?? 0)) best = d
  if (dtypes.includes('uint8') && dtypes.includes('int8') && best === 'int8') best = 'int32'
  if (best === 'bool' && arithmetic) return 'int64'
  return best
}

/** One broadcast dim. Symbols match equal symbols and any concrete size other than 1 (checked at run time). */
function broadcastDim (a: Dim, b: Dim): Dim | undefined {
  if (a === b) return a
  if (a === 1) return b
  if (b === 1) return a
  if (typeof a === 'string' && typeof b === 'number') return b
  if (typeof a === 'number' && typeof b === 'string') return a
  if (typeof a === 'string' && typeof b === 'string') return a
  return undefined
}

export function broadcastShapes (op: string, shapes: readonly (readonly Dim[])[]): Dim[] {
  let out: Dim[] = [...(shapes[0] ?? [])]
  for (const next of shapes.slice(1)) {
    const rank = Math.max(out.length, next.length)
    const result: Dim[] = []
    for (let i = 0; i < rank; i++) {
      const a = out[out.length - rank + i] ?? 1
      const b = next[next.length - rank + i] ?? 1
      const d = broadcastDim(a, b)
      if (d === undefined) fail(op, `cannot broadcast ${fmtShape(out)} with ${fmtShape(next)}`)
      result.push(d)
    }
    out = result
  }
  return out
}

/** A possibly negative axis counted from the end (`-1` is `rank - 1`), without a range check (see normAxis). */
export function wrapAxis (axis: number, rank: number): number { return axis < 0 ? axis + rank : axis }

/** Normalises a possibly negative axis against `rank` (use rank + 1 for stack's insertion axis); out of range fails. */
export function normAxis (op: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) fail(op, `axis ${axis} out of range for rank ${rank}`)
  return wrapAxis(axis, rank)
}

/** Axes attr (`null` or absent = all axes), normalised, unique, sorted. */
export function normAxes (op: string, axes: unknown, rank: number): number[] {
  if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i)
  const list = (axes as number[]).map(a => normAxis(op, a, rank))
  if (new Set(list).size !== list.length) fail(op, `duplicate axes ${fmtShape(axes as number[])}`)
  return list.sort((x, y) => x - y)
}

export function reducedShape (shape: readonly Dim[], axes: readonly number[], keepdims: boolean): Dim[] {
  const out: Dim[] = []
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d)
    else if (keepdims) out.push(1)
  })
  return out
}

/** Element count with symbols estimated, for cost rules. */
export function numelEstimate (shape: readonly Dim[]): number {
  let n = 1
  for (const d of shape) n *= typeof d === 'number' ? d : SYMBOLIC_DIM_ESTIMATE
  return n
}

export function attr<T> (attrs: Attrs, name: string, fallback: T): T {
  const value = attrs[name]
  return (value === undefined ? fallback : value) as T
}

export function expectRank (op: string, input: ValueType, min: number): void {
  if (input.shape.length < min) fail(op, `needs rank ≥ ${min}, got ${fmtShape(input.shape)}`)
}
