/** A trainable param of a session (`s.param(…)`): usable as an operand in any trace of the session. */
import type { ParamDecl } from '@weft/core'

const PARAM = Symbol.for('weft.param')

export class ParamRef {
  readonly [PARAM] = true
  constructor (readonly name: string, readonly decl: ParamDecl) {}
}

export function isParamRef (value: unknown): value is ParamRef {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PARAM] === true
}
