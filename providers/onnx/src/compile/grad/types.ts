/** Types shared by the vector-Jacobian rules of the backward emitter. */
import type { onnx } from '../../graph/onnx.js'
import type { GradBuilder } from './builder.js'
import type { TensorInfo } from './shapes.js'

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
