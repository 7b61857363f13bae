/** The op table: every op of Program v1, once. Validation, the SDK, engines and spec/ops.md derive from it. */
import { WeftError } from '../errors/weft-error.js'
import type { OpDef } from './types.js'
import { read, write, moduleCall, param, constant, stop, save } from './access.js'
import { index, reshape, transpose, concat, stack } from './shape.js'
import { add, sub, mul, div, pow, neg, exp, log, sqrt, abs, tanh, relu, eq, ne, lt, le, gt, ge, where, cast } from './elementwise.js'
import { matmul, sum, mean, max, min, argmax, topk, norm, softmax, logSoftmax } from './reduce.js'
import { grad } from './grad.js'
import { trainable, from, detach } from './session-ops.js'

export const OPS = {
  read, write, module_call: moduleCall, param, const: constant, stop, save,
  index, reshape, transpose, concat, stack,
  add, sub, mul, div, pow, neg, exp, log, sqrt, abs, tanh, relu,
  eq, ne, lt, le, gt, ge, where, cast,
  matmul, sum, mean, max, min, argmax, topk, norm, softmax, log_softmax: logSoftmax,
  grad,
  trainable, from, detach,
} as const satisfies Record<string, OpDef>

export type OpName = keyof typeof OPS

export const OP_NAMES = Object.keys(OPS) as OpName[]

export function isOpName (name: unknown): name is OpName {
  return typeof name === 'string' && Object.hasOwn(OPS, name)
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
