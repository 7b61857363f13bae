/**
 * Provider records (spec/provider-record.md): what a provider announces on the directory, as deterministic CBOR in
 * a COSE_Sign1 signed by the provider key. Verification binds the record to the libp2p peer id embedding that key.
 */
import { CborTag, WeftError, decodeCbor, keyId, publicKeyOf, signEnvelope, verifyEnvelope } from '@weft/core'
import { publicKeyOfPeerId } from './identity.js'
import { recordProblems } from './record-shape.js'

export { recordEndpoints } from './record-shape.js'

export { MAX_RECORD_LIFETIME_SECONDS } from './record-shape.js'

export const PROVIDER_RECORD_CONTENT_TYPE = 'application/vnd.weft.provider-record+cbor'
export const RECORD_VERSION = 1
/** a signed record larger than this is refused before decoding */
export const MAX_RECORD_BYTES = 16 * 1024
export const DEFAULT_RECORD_SKEW_SECONDS = 60

export interface RecordModel { name: string; revision: string; manifestDigest: string; family: string }
/** the provider's policy summary: `name` plus what callers need to choose (egress limits, horizon, …) */
export interface RecordPolicy { name: string; [field: string]: unknown }
export interface RecordCapacity { queueDepth: number; maxBatch: number }
export type RecordStatus = 'online' | 'offline'

export interface ProviderRecord {
  v: 1
  /** the provider id: key id of the signing key, the audience Programs are addressed to */
  provider: string
  /** the libp2p peer id embedding the same Ed25519 key */
  peer: string
  /** the provider's HTTP base URL (the preferred node: `endpoints[0]` when `endpoints` is present) */
  endpoint: string
  /** every node's HTTP base URL of a provider served by several nodes, `endpoint` first; any node serves any request */
  endpoints?: string[]
  /** 'offline' is a withdrawal: a clean shutdown */
  status: RecordStatus
  models: RecordModel[]
  policy: RecordPolicy
  capacity: RecordCapacity
  /** strictly increasing per provider; the newest record wins */
  seq: number
  /** seconds since the epoch */
  issuedAt: number
  expiresAt: number
  /** signed endorsements of this provider (endorsement.ts), for clients that trust their endorsers */
  endorsements?: Uint8Array[]
}

/** What an announcing provider supplies; the node fills identity, seq and times. */
export interface RecordInput {
  endpoint: string
  /** the provider's nodes (a multi-node provider): deduplicated, `endpoint` put first; listed only when more than one */
  endpoints?: string[]
  models: RecordModel[]
  policy: RecordPolicy
  capacity: RecordCapacity
  status?: RecordStatus
  /** signed endorsements to carry in the record */
  endorsements?: Uint8Array[]
}

export interface VerifiedRecord {
  record: ProviderRecord
  /** the signed bytes, as received (relayed unchanged) */
  bytes: Uint8Array
  publicKey: Uint8Array
}

export interface RecordVerifyOptions {
  /** seconds since the epoch (default: the clock) */
  now?: number
  skewSeconds?: number
  /** the libp2p peer that published the record (gossip originator); must be the record's peer */
  publisher?: string
  /** the seq of the record already held for this provider: the new one must be greater */
  previousSeq?: number
}

const invalid = (message: string, details: Record<string, unknown> = {}): never => {
  throw new WeftError('RECORD_INVALID', `provider record: ${message}`, details)
}

/** Signs a record with the provider key. Checks the shape, not the bindings (vectors need inconsistent records). */
export function signProviderRecord (record: ProviderRecord, secretKey: Uint8Array): Uint8Array {
  const problems = recordProblems(record)
  if (problems.length > 0) invalid(problems.join('; '), { problems })
  const bytes = signEnvelope({ payload: record as unknown as Record<string, unknown>, secretKey, kid: keyId(publicKeyOf(secretKey)), contentType: PROVIDER_RECORD_CONTENT_TYPE })
  if (bytes.length > MAX_RECORD_BYTES) invalid(`the signed record has ${bytes.length} bytes, more than ${MAX_RECORD_BYTES}: list fewer models or a shorter policy`)
  return bytes
}

/** Reads the claimed peer id out of an unverified Sign1, only to know which key to verify with. */
function claimedPeer (bytes: Uint8Array): string {
  const value = decodeCbor(bytes, { maxBytes: MAX_RECORD_BYTES })
  const parts = value instanceof CborTag && value.tag === 18 && Array.isArray(value.value) ? value.value : null
  const payload = parts !== null && parts[2] instanceof Uint8Array ? decodeCbor(parts[2], { maxBytes: MAX_RECORD_BYTES }) : null
  const peer = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>).peer : undefined
  return typeof peer === 'string' ? peer : invalid('expected a COSE_Sign1 whose payload names its libp2p peer id (`peer`)')
}

/**
 * Verifies, in order: size and structure, that `peer` is an Ed25519 peer id whose key id is the envelope's kid,
 * the signature under that key, the record's shape, `provider` = that key id, the publisher, issue and expiry
 * times (with skew) and seq against the record held. Throws WeftError RECORD_INVALID / SIGNATURE_INVALID /
 * RECORD_EXPIRED / RECORD_STALE (or DECODE_FAILED / ENVELOPE_INVALID for bytes that are no COSE_Sign1).
 */
export function verifyProviderRecord (bytes: Uint8Array, options: RecordVerifyOptions = {}): VerifiedRecord {
  if (bytes.length > MAX_RECORD_BYTES) invalid(`${bytes.length} bytes, more than ${MAX_RECORD_BYTES}`)
  const peer = claimedPeer(bytes)
  const publicKey = publicKeyOfPeerId(peer) ?? invalid(`peer '${peer.slice(0, 80)}' is not an Ed25519 libp2p peer id`)
  const peerKid = keyId(publicKey)
  let payload: Record<string, unknown>
  try {
    payload = verifyEnvelope(bytes, {
      resolveKey: kid => kid === peerKid ? publicKey : undefined,
      contentType: PROVIDER_RECORD_CONTENT_TYPE,
      limits: { maxBytes: MAX_RECORD_BYTES },
    }).payload
  } catch (error) {
    if (!WeftError.is(error, 'KEY_UNKNOWN')) throw error
    return invalid(`signed by key ${String(error.details.kid)} but peer ${peer} embeds key ${peerKid}: a record must be signed by its peer's key`, { kid: error.details.kid, peer, peerKid })
  }
  const problems = recordProblems(payload)
  if (problems.length > 0) invalid(problems.join('; '), { problems })
  const record = payload as unknown as ProviderRecord
  if (record.provider !== peerKid) invalid(`provider ${record.provider} is not the key id of peer ${peer} (${peerKid})`, { provider: record.provider, peerKid })
  if (options.publisher !== undefined && options.publisher !== peer) {
    invalid(`record of peer ${peer} was published by ${options.publisher}: peers publish only their own record`, { peer, publisher: options.publisher })
  }
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const skew = options.skewSeconds ?? DEFAULT_RECORD_SKEW_SECONDS
  if (record.issuedAt > now + skew) invalid(`issued at ${record.issuedAt}, in the future (now ${now}, skew ${skew} s)`, { issuedAt: record.issuedAt, now })
  if (now > record.expiresAt + skew) {
    throw new WeftError('RECORD_EXPIRED', `provider record of ${record.provider} expired at ${record.expiresAt} (now ${now}, skew ${skew} s)`, { provider: record.provider, expiresAt: record.expiresAt, now })
  }
  assertNewer(record, options.previousSeq)
  return { record, bytes, publicKey }
}

/** RECORD_STALE unless `record` is newer than the record held for its provider (seq `previousSeq`; none held: undefined). */
export function assertNewer (record: ProviderRecord, previousSeq: number | undefined): void {
  if (previousSeq !== undefined && record.seq <= previousSeq) {
    throw new WeftError('RECORD_STALE', `provider record of ${record.provider} has seq ${record.seq}, not newer than the held ${previousSeq}`, { provider: record.provider, seq: record.seq, previousSeq })
  }
}

/** A record for `input`, valid from `now` (seconds) for `lifetimeSeconds`. */
export function buildProviderRecord (identity: { provider: string; peer: string }, input: RecordInput, at: { now: number; lifetimeSeconds: number; seq: number }): ProviderRecord {
  return {
    v: RECORD_VERSION, provider: identity.provider, peer: identity.peer, endpoint: input.endpoint,
    ...endpointsOf(input),
    status: input.status ?? 'online',
    models: input.models.map(m => ({ name: m.name, revision: m.revision, manifestDigest: m.manifestDigest, family: m.family })),
    policy: withoutUndefined(input.policy) as RecordPolicy,
    capacity: { queueDepth: input.capacity.queueDepth, maxBatch: input.capacity.maxBatch },
    seq: at.seq, issuedAt: at.now, expiresAt: at.now + at.lifetimeSeconds,
    ...(input.endorsements === undefined || input.endorsements.length === 0 ? {} : { endorsements: [...input.endorsements] }),
  }
}

/** `endpoints` of a record: `endpoint` first, then the others once each; absent when that is `endpoint` alone. */
function endpointsOf (input: RecordInput): { endpoints?: string[] } {
  const endpoints = [...new Set([input.endpoint, ...(input.endpoints ?? [])])]
  return endpoints.length > 1 ? { endpoints } : {}
}

/** Policy summaries may carry undefined fields (not CBOR): drop them, recursively. */
function withoutUndefined (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined)
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, withoutUndefined(v)]))
  }
  return value
}
