/** Signed job requests: a COSE_Sign1 whose payload is {program, aud, nonce, iat, exp}. */
import { randomBytes } from 'node:crypto'
import { WeftError } from '../errors/weft-error.js'
import type { Program } from '../ir/program.js'
import { programStructureProblems } from '../ir/structure.js'
import { checkProgramStructure, sha256Digest } from '../cbor/program-codec.js'
import { encodeCbor } from '../cbor/encode.js'
import { toHex } from '../cbor/hex.js'
import { signEnvelope, verifyEnvelope, type VerifyOptions } from './sign1.js'
import { isInt } from '../ir/plain.js'

export const REQUEST_CONTENT_TYPE = 'application/vnd.weft.request+cbor'
export const DEFAULT_TTL_SECONDS = 300

export interface RequestInput {
  program: Program
  /** the provider id the request is addressed to */
  audience: string
  secretKey: Uint8Array
  kid: string
  /** default: 16 random bytes as hex */
  nonce?: string
  /** seconds since the epoch (default: now) */
  iat?: number
  /** default 300 */
  ttlSeconds?: number
}

export interface OpenedRequest {
  kid: string
  program: Program
  audience: string
  nonce: string
  iat: number
  exp: number
  /** `sha256:<hex>` of the program's deterministic CBOR */
  programDigest: string
  /** the program's deterministic CBOR (what `programDigest` hashes) */
  programBytes: Uint8Array
}

export function createRequestEnvelope (input: RequestInput): Uint8Array {
  const iat = input.iat ?? Math.floor(Date.now() / 1000)
  checkProgramStructure(input.program) // PROGRAM_INVALID before anything is signed
  const payload = {
    program: input.program,
    aud: input.audience,
    nonce: input.nonce ?? toHex(randomBytes(16)),
    iat,
    exp: iat + (input.ttlSeconds ?? DEFAULT_TTL_SECONDS),
  }
  return signEnvelope({ payload, secretKey: input.secretKey, kid: input.kid, contentType: REQUEST_CONTENT_TYPE })
}

export interface OpenRequestOptions extends VerifyOptions {
  /** longest accepted lifetime exp − iat in seconds (MESSAGE_LIFETIME_TOO_LONG above it); default: unbounded */
  maxLifetimeSeconds?: number
}

/** Verifies a request envelope and returns its claims; the audience option should always be set by providers. */
export function openRequestEnvelope (bytes: Uint8Array, options: OpenRequestOptions): OpenedRequest {
  const { kid, payload } = verifyEnvelope(bytes, { ...options, contentType: REQUEST_CONTENT_TYPE })
  const keys = Object.keys(payload).sort().join(',')
  if (keys !== 'aud,exp,iat,nonce,program') throw new WeftError('ENVELOPE_INVALID', `request payload must have exactly aud, exp, iat, nonce, program; got ${keys}`)
  const { program, aud, nonce, iat, exp } = payload
  if (typeof aud !== 'string' || typeof nonce !== 'string' || nonce.length === 0 || !isInt(iat) || !isInt(exp) || exp < iat) {
    throw new WeftError('ENVELOPE_INVALID', 'request claims must be aud: text, nonce: non-empty text, iat ≤ exp: integers')
  }
  const max = options.maxLifetimeSeconds
  if (max !== undefined && exp - iat > max) {
    throw new WeftError('MESSAGE_LIFETIME_TOO_LONG', `the envelope is valid for ${exp - iat} s (exp − iat); this provider accepts at most ${max} s: sign it with a shorter ttl`, { lifetimeSeconds: exp - iat, maxLifetimeSeconds: max })
  }
  const problems = programStructureProblems(program)
  if (problems.length > 0) throw new WeftError('DECODE_FAILED', `request payload is not a Program: ${problems[0]!.message}`, { issues: problems })
  const programBytes = encodeCbor(program)
  return { kid, program: program as Program, audience: aud, nonce, iat, exp, programDigest: sha256Digest(programBytes), programBytes }
}

/** `sha256:<hex>` of the envelope bytes: what a receipt's `requestDigest` names. */
export function requestDigest (envelope: Uint8Array): string {
  return sha256Digest(envelope)
}
