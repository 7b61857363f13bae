/**
 * The VJP rule table, keyed by ONNX op type: every op the family builders, the importer's usual exports and the
 * Program lowerings put on a float path. Ops whose outputs are never float (Shape, Equal, ArgMax, …) need none.
 */
import { ELEMENTWISE_RULES } from './rules-elementwise.js'
import { LINALG_RULES } from './rules-linalg.js'
import { SHAPE_RULES } from './rules-shape.js'
import type { VjpRule } from './types.js'

/** ONNX ops with a gradient rule. */
export type DifferentiableOnnxOp =
  | keyof typeof ELEMENTWISE_RULES | keyof typeof LINALG_RULES | keyof typeof SHAPE_RULES

export const VJP_RULES = {
  ...ELEMENTWISE_RULES,
  ...LINALG_RULES,
  ...SHAPE_RULES,
} satisfies Record<DifferentiableOnnxOp, VjpRule>

/** Ops that the builders and lowerings emit and that must have a rule (checked by the tests). */
export const REQUIRED_OPS = [
  'MatMul', 'Gemm', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Pow', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Tanh', 'Erf', 'Relu',
  'Sigmoid', 'Abs', 'Sin', 'Cos', 'Softmax', 'LogSoftmax', 'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceL1',
  'ReduceL2', 'LayerNormalization', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'Concat', 'Split',
  'Expand', 'Where', 'Cast', 'Identity', 'ScatterND', 'TopK', 'Min', 'Max',
] as const satisfies readonly DifferentiableOnnxOp[]

export function ruleFor (opType: string): VjpRule | undefined {
  return Object.hasOwn(VJP_RULES, opType) ? VJP_RULES[opType as DifferentiableOnnxOp] : undefined
}
