/**
 * COSE_Sign1 (RFC 9052) with EdDSA/Ed25519, Weft profile: protected header {1: -8, 3: content type, 4: kid},
 * empty unprotected header, embedded payload (a deterministic CBOR map), external_aad empty. Tagged 18.
 */
import { show } from '../errors/show.js'
import { WeftError } from '../errors/weft-error.js'
import { CborTag, encodeCbor } from '../cbor/encode.js'
import { decodeCbor, type DecodeLimits } from '../cbor/decode.js'
import { TAG_COSE_SIGN1 } from '../cbor/tags.js'
import { signBytes, verifyBytes } from './keys.js'
import { isPlainMap } from '../ir/plain.js'

export const ALG_EDDSA = -8
const HEADER_ALG = 1
const HEADER_CONTENT_TYPE = 3
const HEADER_KID = 4

export interface ProtectedHeader { alg: number; kid: string; contentType: string | null }

export interface SignInput { payload: Record<string, unknown>; secretKey: Uint8Array; kid: string; contentType?: string }

export interface VerifyOptions {
  resolveKey (kid: string): Uint8Array | undefined
  audience?: string
  /** seconds since the epoch (default: the clock) */
  now?: number
  /** allowed clock skew for iat/exp (default 60 s) */
  skewSeconds?: number
  limits?: Partial<DecodeLimits>
  /** when set, the protected content type must equal it */
  contentType?: string
}

export interface VerifiedEnvelope { kid: string; payload: Record<string, unknown>; protectedHeader: ProtectedHeader }

const invalid = (message: string): never => { throw new WeftError('ENVELOPE_INVALID', `COSE_Sign1: ${message}`) }

export function protectedHeaderBytes (kid: string, contentType?: string): Uint8Array {
  const header = new Map<number, unknown>([[HEADER_ALG, ALG_EDDSA], [HEADER_KID, new TextEncoder().encode(kid)]])
  if (contentType !== undefined) header.set(HEADER_CONTENT_TYPE, contentType)
  return encodeCbor(header)
}

/** The bytes Ed25519 signs: Sig_structure = ["Signature1", protected, external_aad = h'', payload]. */
export function sigStructure (protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature1', protectedBytes, new Uint8Array(0), payload])
}

export function signEnvelope (input: SignInput): Uint8Array {
  const protectedBytes = protectedHeaderBytes(input.kid, input.contentType)
  const payload = encodeCbor(input.payload)
  const signature = signBytes(sigStructure(protectedBytes, payload), input.secretKey)
  return encodeCbor(new CborTag(TAG_COSE_SIGN1, [protectedBytes, new Map(), payload, signature]))
}

function parseProtected (bytes: Uint8Array): ProtectedHeader {
  const header = decodeCbor(bytes, { maxDepth: 2, maxItems: 16 })
  if (!(header instanceof Map)) return invalid('protected header must be a map with integer labels')
  for (const label of header.keys()) {
    if (label !== HEADER_ALG && label !== HEADER_KID && label !== HEADER_CONTENT_TYPE) invalid(`unsupported protected header label ${show(label)}`)
  }
  const alg = header.get(HEADER_ALG)
  if (alg !== ALG_EDDSA) invalid(`algorithm ${show(alg)} is not EdDSA (-8)`)
  const kid = header.get(HEADER_KID)
  if (!(kid instanceof Uint8Array) || kid.length === 0) return invalid('protected header needs a kid (label 4) byte string')
  const contentType = header.get(HEADER_CONTENT_TYPE)
  if (contentType !== undefined && typeof contentType !== 'string') invalid('content type (label 3) must be text')
  let kidText: string
  try { kidText = new TextDecoder('utf-8', { fatal: true }).decode(kid) } catch { return invalid('kid must be UTF-8') }
  return { alg: alg as number, kid: kidText, contentType: (contentType as string | undefined) ?? null }
}

interface Parts { protectedBytes: Uint8Array; header: ProtectedHeader; payload: Uint8Array; signature: Uint8Array }

function parseSign1 (bytes: Uint8Array, limits?: Partial<DecodeLimits>): Parts {
  const value = decodeCbor(bytes, limits)
  if (!(value instanceof CborTag) || value.tag !== TAG_COSE_SIGN1) return invalid('expected a tag 18 COSE_Sign1')
  const parts = value.value
  if (!Array.isArray(parts) || parts.length !== 4) return invalid('expected [protected, unprotected, payload, signature]')
  const [protectedBytes, unprotected, payload, signature] = parts
  if (!(protectedBytes instanceof Uint8Array)) invalid('protected header must be a byte string')
  const emptyMap = (unprotected instanceof Map && unprotected.size === 0) ||
    (isPlainMap(unprotected) && Object.keys(unprotected).length === 0)
  if (!emptyMap) invalid('unprotected header must be an empty map')
  if (!(payload instanceof Uint8Array)) invalid('payload must be an embedded byte string')
  if (!(signature instanceof Uint8Array) || signature.length !== 64) invalid('signature must be 64 bytes')
  return { protectedBytes, header: parseProtected(protectedBytes), payload, signature } as Parts
}

function checkClaims (payload: Record<string, unknown>, options: VerifyOptions): void {
  if (options.audience !== undefined && payload.aud !== options.audience) {
    throw new WeftError('AUDIENCE_MISMATCH', `envelope is addressed to ${show(payload.aud)}, not '${options.audience}'`)
  }
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const skew = options.skewSeconds ?? 60
  if (typeof payload.exp === 'number' && now > payload.exp + skew) {
    throw new WeftError('MESSAGE_EXPIRED', `envelope expired at ${payload.exp} (now ${now}, skew ${skew}s)`, { exp: payload.exp, now })
  }
  if (typeof payload.iat === 'number' && payload.iat > now + skew) {
    throw new WeftError('MESSAGE_NOT_YET_VALID', `envelope issued at ${payload.iat}, in the future (now ${now}, skew ${skew}s)`, { iat: payload.iat, now })
  }
}

/** Verifies structure, key, signature, then audience and time claims (in that order). */
export function verifyEnvelope (bytes: Uint8Array, options: VerifyOptions): VerifiedEnvelope {
  const parts = parseSign1(bytes, options.limits)
  const { header } = parts
  if (options.contentType !== undefined && header.contentType !== options.contentType) {
    invalid(`content type ${show(header.contentType)} is not '${options.contentType}'`)
  }
  const publicKey = options.resolveKey(header.kid)
  if (publicKey === undefined) throw new WeftError('KEY_UNKNOWN', `key '${header.kid}' is not registered`, { kid: header.kid })
  if (!verifyBytes(parts.signature, sigStructure(parts.protectedBytes, parts.payload), publicKey)) {
    throw new WeftError('SIGNATURE_INVALID', `signature does not verify under key '${header.kid}'`, { kid: header.kid })
  }
  const payload = decodeCbor(parts.payload, options.limits)
  if (!isPlainMap(payload)) {
    return invalid('payload must be a map with text keys')
  }
  checkClaims(payload as Record<string, unknown>, options)
  return { kid: header.kid, payload: payload as Record<string, unknown>, protectedHeader: header }
}
