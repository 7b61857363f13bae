/** One error class, many codes. Identity by marker (packages may be duplicated), never instanceof. */
import { ERROR_CODES, type ErrorCode } from './codes.js'

const marker = Symbol.for('weft.error')

export interface WireError { code: ErrorCode; message: string; details: Record<string, unknown> }

export class WeftError extends Error {
  readonly [marker] = true
  override readonly name = 'WeftError'
  readonly code: ErrorCode
  readonly details: Record<string, unknown>

  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.details = details
  }

  get status (): number { return ERROR_CODES[this.code].status }
  get retryable (): boolean { return ERROR_CODES[this.code].retryable }

  static is (error: unknown, code?: ErrorCode): error is WeftError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[marker] === true &&
      (code === undefined || (error as WeftError).code === code)
  }

  toWire (): WireError { return { code: this.code, message: this.message, details: this.details } }

  static fromWire (wire: WireError): WeftError {
    const code = (Object.hasOwn(ERROR_CODES, wire.code) ? wire.code : 'INTERNAL') as ErrorCode
    return new WeftError(code, wire.message, wire.details ?? {})
  }
}
