/**
 * Dims, tensor infos and the small helpers the shape inference of the backward emitter uses: ONNX attribute
 * access, integer initializer values, numpy broadcasting of (possibly symbolic) dims, Reshape's -1.
 */
import type { DType } from '@weft/core'
import { onnx } from '../../graph/onnx.js'
import { dtypeFromOnnx } from '../dtypes.js'

export type Dim = number | string
export interface TensorInfo {
  dtype: DType | null
  shape: Dim[] | null
  /** values of a small 1-D or 0-D integer tensor when statically known (shape vectors, axes, sizes) */
  value?: Dim[]
}

/** What the backward pass reads and records of tensor infos (implemented by ShapeTable in shapes.ts). */
export interface ShapeFacts {
  get (name: string): TensorInfo
  /** Records what the backward pass knows about a tensor it made. */
  define (name: string, info: TensorInfo): string
  /** Axes of a Reduce, Squeeze or Unsqueeze node: the `axes` input (opset 13+/18) or attribute. */
  axesOf (node: onnx.NodeProto): number[] | undefined
}

export function attrOf (node: onnx.NodeProto, name: string): onnx.AttributeProto | undefined {
  return node.attribute.find(a => a.name === name)
}
export const intAttr = (node: onnx.NodeProto, name: string, fallback: number): number => Number(attrOf(node, name)?.i ?? fallback)
export const intsAttr = (node: onnx.NodeProto, name: string): number[] | undefined => {
  const a = attrOf(node, name)
  return a === undefined ? undefined : a.ints.map(Number)
}

/** Integer values of a small int64/int32 TensorProto. */
export function tensorInts (t: onnx.TensorProto): number[] | undefined {
  const count = t.dims.reduce((a, b) => a * Number(b), 1)
  if (count > 64) return undefined
  // rawData may be a view into the whole model file (a Buffer): read it in place
  const raw = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength)
  if (t.dataType === onnx.TensorProto_DataType.INT64) {
    if (t.int64Data.length > 0) return t.int64Data.map(Number)
    if (t.rawData.length === count * 8) return Array.from({ length: count }, (_, i) => Number(raw.getBigInt64(i * 8, true)))
  }
  if (t.dataType === onnx.TensorProto_DataType.INT32) {
    if (t.int32Data.length > 0) return [...t.int32Data]
    if (t.rawData.length === count * 4) return Array.from({ length: count }, (_, i) => raw.getInt32(i * 4, true))
  }
  return undefined
}

export function tensorInfo (t: onnx.TensorProto): TensorInfo {
  let dtype: DType | null = null
  try { dtype = dtypeFromOnnx(t.dataType) } catch { dtype = null }
  const value = tensorInts(t)
  return { dtype, shape: t.dims.map(Number), ...(value === undefined ? {} : { value }) }
}

/** Names a composite symbol; equal expressions get equal names. */
export type Intern = (expression: string) => string

/** numpy broadcasting of one dim pair (the result may be a new symbol naming both). */
function broadcastDim (a: Dim, b: Dim, sym: Intern): Dim {
  if (a === b || b === 1) return a
  if (a === 1) return b
  if (typeof a === 'number') return a
  if (typeof b === 'number') return b
  return sym(`bcast(${[a, b].sort().join(',')})`)
}

export function broadcast (shapes: (Dim[] | null)[], sym: Intern): Dim[] | null {
  if (shapes.some(s => s === null)) return null
  const rank = Math.max(...shapes.map(s => s!.length))
  return Array.from({ length: rank }, (_, i) => shapes.reduce<Dim>((acc, s) => broadcastDim(acc, s![s!.length - rank + i] ?? 1, sym), 1))
}

/** The -1 of a Reshape: ∏inputs / ∏others, cancelling equal symbols; undefined unless it is one number or one symbol. */
export function quotient (inputs: readonly Dim[], others: readonly Dim[]): Dim | undefined {
  let factor = 1
  const symbols: string[] = []
  for (const d of inputs) if (typeof d === 'number') factor *= d; else symbols.push(d)
  for (const d of others) {
    if (typeof d === 'number') { factor /= d; continue }
    const at = symbols.indexOf(d)
    if (at < 0) return undefined
    symbols.splice(at, 1)
  }
  if (symbols.length === 0) return Number.isInteger(factor) ? factor : undefined
  return symbols.length === 1 && factor === 1 ? symbols[0] : undefined
}

export const product = (dims: Dim[]): number | null => dims.every(d => typeof d === 'number') ? (dims as number[]).reduce((a, b) => a * b, 1) : null
