/** Types shared by the vector-Jacobian rules of the backward emitter and the ONNX op table (compile/onnx-ops.ts). */
import type { onnx } from '../../graph/onnx.js'
import type { GradBuilder } from './builder.js'
import type { TensorInfo } from './dims.js'

/** What a VJP rule sees of one forward node. */
export interface Vjp {
  b: GradBuilder
  node: onnx.NodeProto
  /** name of input `i` */
  x (i: number): string
  /** name of output `k` (default 0) */
  y (k?: number): string
  /** gradient reaching output `k` (default 0), or null when none does */
  g (k?: number): string | null
  /** whether input `i` needs a gradient (it lies between a `wrt` and `of`) */
  needs (i: number): boolean
  info (name: string): TensorInfo
  /** a typed BACKEND_CAPABILITY_MISSING naming the node's op and module scope */
  unsupported (why: string): Error
}

/** Gradients of the node's inputs, by position (null = none / not needed). */
export type VjpRule = (v: Vjp) => (string | null)[]

/**
 * How the backward pass's shape inference (grad/shapes.ts) finds a node's outputs: `same` = output 0 is shaped like
 * input 0; `broadcast` = numpy broadcast of all inputs; `reduce` = the Reduce ops, ArgMax and ArgMin (axes, keepdims); `own` = a
 * rule of its own in ShapeTable; `unknown` = not inferred (the rank stays unknown).
 */
type ShapeClass = 'same' | 'broadcast' | 'reduce' | 'own' | 'unknown'

/**
 * What module-call's row-wise check (`stackable`: a module acting on each vector along the last axis) may assume:
 * `elementwise` (other operands rank ≤ 1 constants), `weights` (MatMul by a 2-D weight), `last-axis` (a
 * normalisation, softmax or keepdims reduction that is row-wise when it works on the last axis only), or false.
 */
type RowWise = 'elementwise' | 'weights' | 'last-axis' | false

/**
 * An op without a VJP rule: `no-gradient` = no gradient can flow through it (its outputs are ints or bools, or it
 * has no float inputs); `none` = no rule yet (a graph using it on a float path is not differentiable, and the
 * Program lowerings may not emit it: `LoweringEmitter` refuses it at compile time).
 */
type NoVjp = 'no-gradient' | 'none'

/** One row of the ONNX op table: what the compiler and the gradient builder know of an ONNX op type. */
export interface OnnxOpRow {
  shape: ShapeClass
  /** the output dtype when it is not input 0's: bool, int64, Cast's `to`, or input 1's (Where) */
  dtype?: 'bool' | 'int64' | 'cast-to' | 'input1'
  rowwise: RowWise
  vjp: VjpRule | NoVjp
}
