/**
 * Endorsements (spec/provider-record.md, "Trust"): a key the client trusts (a model owner, a lab, a registry)
 * vouches that a provider id may serve some models, optionally only at given revisions, until an expiry. Signed as
 * a COSE_Sign1 over deterministic CBOR with the endorser's Ed25519 key, like provider records; a provider may carry
 * its endorsements in its record, and a client may hold them itself.
 */
import { WeftError, keyId, publicKeyOf, signEnvelope, verifyEnvelope } from '@weft/core'

export const ENDORSEMENT_CONTENT_TYPE = 'application/vnd.weft.endorsement+cbor'
export const ENDORSEMENT_VERSION = 1
/** a signed endorsement larger than this is refused before decoding */
export const MAX_ENDORSEMENT_BYTES = 4096
/** an endorsement may claim at most this lifetime (expiresAt − issuedAt) */
export const MAX_ENDORSEMENT_LIFETIME_SECONDS = 366 * 24 * 3600
const MAX_MODELS = 64
const KID = /^ed25519:[0-9a-f]{32}$/

export interface EndorsedModel { name: string; revision?: string }

export interface Endorsement {
  v: 1
  /** key id of the signing key */
  endorser: string
  /** the endorsed provider id */
  provider: string
  /** what the provider is vouched for: model names, each optionally pinned to one revision */
  models: EndorsedModel[]
  /** seconds since the epoch */
  issuedAt: number
  expiresAt: number
}

export interface EndorsementVerifyOptions {
  /** the endorser keys the client trusts (raw 32-byte Ed25519 public keys) */
  trusted: readonly Uint8Array[]
  /** seconds since the epoch (default: the clock) */
  now?: number
  /** default 60 s */
  skewSeconds?: number
}

const invalid = (message: string, details: Record<string, unknown> = {}): never => {
  throw new WeftError('RECORD_INVALID', `endorsement: ${message}`, details)
}

const isText = (v: unknown, max = 512): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** Every structural problem of a decoded endorsement payload (empty when well-formed). */
export function endorsementProblems (value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Map || ArrayBuffer.isView(value)) return ['the payload must be a map with text keys']
  const e = value as Record<string, unknown>
  const problems: string[] = []
  if (e.v !== 1) problems.push('`v` must be 1')
  if (typeof e.endorser !== 'string' || !KID.test(e.endorser)) problems.push('`endorser` must be a key id `ed25519:` + 32 hex digits')
  if (typeof e.provider !== 'string' || !KID.test(e.provider)) problems.push('`provider` must be a key id `ed25519:` + 32 hex digits')
  if (!Array.isArray(e.models) || e.models.length === 0 || e.models.length > MAX_MODELS) problems.push(`\`models\` must list 1 to ${MAX_MODELS} models`)
  else {
    e.models.forEach((m: unknown, i) => {
      const model = m as Record<string, unknown> | null
      if (typeof model !== 'object' || model === null || !isText(model.name)) problems.push(`models[${i}] must be { name, ? revision }`)
      else if (model.revision !== undefined && !isText(model.revision)) problems.push(`models[${i}].revision must be a non-empty string`)
    })
  }
  if (!isUint(e.issuedAt) || !isUint(e.expiresAt)) problems.push('`issuedAt` and `expiresAt` must be unsigned integers (seconds)')
  else if (e.expiresAt <= e.issuedAt) problems.push('`expiresAt` must be after `issuedAt`')
  else if (e.expiresAt - e.issuedAt > MAX_ENDORSEMENT_LIFETIME_SECONDS) problems.push(`an endorsement lives at most ${MAX_ENDORSEMENT_LIFETIME_SECONDS} s`)
  return problems
}

/** Signs an endorsement with the endorser's key (its `endorser` must be that key's id). */
export function signEndorsement (endorsement: Endorsement, secretKey: Uint8Array): Uint8Array {
  const problems = endorsementProblems(endorsement)
  if (problems.length > 0) invalid(problems.join('; '), { problems })
  const kid = keyId(publicKeyOf(secretKey))
  if (endorsement.endorser !== kid) invalid(`endorser ${endorsement.endorser} is not the signing key ${kid}`)
  const payload = { ...endorsement, models: endorsement.models.map(m => m.revision === undefined ? { name: m.name } : { name: m.name, revision: m.revision }) }
  return signEnvelope({ payload: payload as unknown as Record<string, unknown>, secretKey, kid, contentType: ENDORSEMENT_CONTENT_TYPE })
}

/** An endorsement for `provider` by `secretKey`'s owner, valid from `now` for `days`. */
export function createEndorsement (input: { provider: string; models: EndorsedModel[]; secretKey: Uint8Array; now?: number; days: number }): Uint8Array {
  const issuedAt = input.now ?? Math.floor(Date.now() / 1000)
  return signEndorsement({ v: 1, endorser: keyId(publicKeyOf(input.secretKey)), provider: input.provider, models: input.models, issuedAt, expiresAt: issuedAt + Math.round(input.days * 86400) }, input.secretKey)
}

/**
 * Verifies, in order: size, a Sign1 of the endorsement content type whose kid is one of the trusted keys
 * (KEY_UNKNOWN otherwise), the signature (SIGNATURE_INVALID), the shape and `endorser` = that kid
 * (RECORD_INVALID), issue time (RECORD_INVALID when in the future) and expiry (RECORD_EXPIRED), with skew.
 */
export function verifyEndorsement (bytes: Uint8Array, options: EndorsementVerifyOptions): Endorsement {
  if (bytes.length > MAX_ENDORSEMENT_BYTES) invalid(`${bytes.length} bytes, more than ${MAX_ENDORSEMENT_BYTES}`)
  const keys = new Map(options.trusted.map(key => [keyId(key), key]))
  let verified
  try {
    verified = verifyEnvelope(bytes, { resolveKey: k => keys.get(k), contentType: ENDORSEMENT_CONTENT_TYPE, limits: { maxBytes: MAX_ENDORSEMENT_BYTES } })
  } catch (error) {
    if (!WeftError.is(error, 'KEY_UNKNOWN')) throw error
    throw new WeftError('KEY_UNKNOWN', `endorsement signed by ${String(error.details.kid)}, not a trusted endorser`, { kid: error.details.kid })
  }
  const { kid, payload } = verified
  const problems = endorsementProblems(payload)
  if (problems.length > 0) invalid(problems.join('; '), { problems })
  const endorsement = payload as unknown as Endorsement
  if (endorsement.endorser !== kid) invalid(`names endorser ${endorsement.endorser} but is signed by ${kid}`)
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const skew = options.skewSeconds ?? 60
  if (endorsement.issuedAt > now + skew) invalid(`issued at ${endorsement.issuedAt}, in the future (now ${now})`)
  if (now > endorsement.expiresAt + skew) throw new WeftError('RECORD_EXPIRED', `endorsement of ${endorsement.provider} by ${kid} expired at ${endorsement.expiresAt} (now ${now})`, { provider: endorsement.provider, endorser: kid, expiresAt: endorsement.expiresAt })
  return endorsement
}

/** true when `endorsement` vouches for `provider` serving `model` at `revision` */
export function endorses (endorsement: Endorsement, provider: string, model: string, revision: string): boolean {
  return endorsement.provider === provider && endorsement.models.some(m => m.name === model && (m.revision === undefined || m.revision === revision))
}
