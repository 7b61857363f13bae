/**
 * The op table: every op of Program v1, once, built from the groups (access.ts, shape.ts, elementwise.ts, reduce.ts,
 * grad.ts). Validation, the reference interpreter (`eval`), the SDK, engines and spec/ops.md derive from it.
 */
import { WeftError } from '../errors/weft-error.js'
import type { OpDef, TensorOpDef } from './types.js'
import { ACCESS_OPS } from './access.js'
import { SHAPE_OPS } from './shape.js'
import { ELEMENTWISE_OPS } from './elementwise.js'
import { REDUCE_OPS } from './reduce.js'
import { GRAD_OPS } from './grad.js'
import { SESSION_OPS } from './session-ops.js'

export const OPS = {
  ...ACCESS_OPS,
  ...SHAPE_OPS,
  ...ELEMENTWISE_OPS,
  ...REDUCE_OPS,
  ...GRAD_OPS,
  ...SESSION_OPS,
} as const satisfies Record<string, OpDef>

export type OpName = keyof typeof OPS

/** Ops whose definition carries a reference kernel: they run without a model. */
export type TensorOpName = { [K in OpName]: (typeof OPS)[K] extends TensorOpDef ? K : never }[OpName]

export const OP_NAMES = Object.keys(OPS) as OpName[]

export function isOpName (name: unknown): name is OpName {
  return typeof name === 'string' && Object.hasOwn(OPS, name)
}

/** Whether the op carries a reference kernel (runs without a model). */
export function isTensorOp (name: string): name is TensorOpName {
  return isOpName(name) && OPS[name].eval !== undefined
}

/** The op's definition; throws PROGRAM_INVALID for an unknown op. */
export function getOp (name: string): OpDef {
  if (!isOpName(name)) throw new WeftError('PROGRAM_INVALID', `unknown op '${name}'`, { op: name })
  return OPS[name]
}

/** Ops the model must run for (everything else is pure tensor arithmetic the reference interpreter covers). */
export function isModelOp (name: string): boolean {
  return getOp(name).flags.includes('access') || name === 'stop'
}
