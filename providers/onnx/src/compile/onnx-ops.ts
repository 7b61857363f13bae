/**
 * The ONNX op table: one row per ONNX op type holding what the compiler and the gradient builder know of it — its
 * shape class (grad/shapes.ts), output dtype, whether a row-wise module may contain it (module-call.ts) and its VJP
 * rule (grad/backward.ts). Built from the groups in grad/rules-elementwise.ts, rules-linalg.ts and rules-shape.ts;
 * a row without a shape class, row-wise flag or VJP entry fails `tsc` (`satisfies Record<…, OnnxOpRow>`).
 *
 * The Program lowerings (tensor-ops.ts, index-ops.ts) emit through `LoweringEmitter`, whose op types are the rows
 * that are differentiable or carry no gradient: emitting an ONNX op with no row, or one whose VJP is `'none'`, fails
 * `tsc` (providers/onnx/test/onnx-ops.test-d.ts).
 */
import type { AttrSpec, Emitter } from './emitter.js'
import { ELEMENTWISE_ONNX_OPS } from './grad/rules-elementwise.js'
import { LINALG_ONNX_OPS } from './grad/rules-linalg.js'
import { SHAPE_ONNX_OPS } from './grad/rules-shape.js'
import type { OnnxOpRow, VjpRule } from './grad/types.js'

export type { OnnxOpRow } from './grad/types.js'

export const ONNX_OPS = {
  ...ELEMENTWISE_ONNX_OPS,
  ...LINALG_ONNX_OPS,
  ...SHAPE_ONNX_OPS,
} as const satisfies Record<string, OnnxOpRow>

/** ONNX op types with a row. */
export type OnnxOpType = keyof typeof ONNX_OPS

/** ONNX op types the Program lowerings may emit: every row except those without a VJP rule (`vjp: 'none'`). */
export type LowerableOnnxOp = { [K in OnnxOpType]: (typeof ONNX_OPS)[K]['vjp'] extends 'none' ? never : K }[OnnxOpType]

/** The row of an ONNX op type (any domain), or undefined for an op the table does not know. */
export function onnxOp (opType: string): OnnxOpRow | undefined {
  return Object.hasOwn(ONNX_OPS, opType) ? ONNX_OPS[opType as OnnxOpType] : undefined
}

/** The VJP rule of an ONNX op type, or undefined when it has none. */
export function ruleFor (opType: string): VjpRule | undefined {
  const vjp = onnxOp(opType)?.vjp
  return typeof vjp === 'function' ? vjp : undefined
}

/** The Emitter as the Program lowerings see it: only ONNX op types of the table with a gradient story. */
export interface LoweringEmitter extends Omit<Emitter, 'op' | 'node' | 'reduce'> {
  op (opType: LowerableOnnxOp, inputs: string[], attrs?: Record<string, AttrSpec>): string
  node (opType: LowerableOnnxOp, inputs: string[], attrs?: Record<string, AttrSpec>, outputs?: number | string[]): string[]
  reduce (opType: LowerableOnnxOp & `Reduce${string}`, x: string, axes: number[] | null, keepdims: boolean): string
}
