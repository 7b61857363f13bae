/**
 * Signed plain requests: an Ed25519 signature over the request (provider id, method, path, time, nonce, body digest)
 * in a header. `Weft-Operator` (by a key with the operator role) authenticates operator routes; `Weft-Key` (by any
 * registered, unrevoked key) authenticates a key's own resources (its kept adapters). `operatorHeaders` and
 * `keyHeaders` build them for clients.
 */
import { createHash, randomBytes } from 'node:crypto'
import { WeftError, fromHex, keyId, publicKeyOf, signBytes, toHex, verifyBytes } from '@weft/core'
import type { HostContext } from './host-context.js'

export const OPERATOR_HEADER = 'Weft-Operator'
export const KEY_HEADER = 'Weft-Key'

/** The first line of the signed message: which kind of signed request this is (a signature for one is not valid as the other). */
type Purpose = 'weft-operator-v1' | 'weft-key-v1'

function message (purpose: Purpose, providerId: string, method: string, path: string, ts: number, nonce: string, body: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(body).digest('hex')
  return new TextEncoder().encode([purpose, providerId, method.toUpperCase(), path, String(ts), nonce, digest].join('\n'))
}

interface SignInput { secretKey: Uint8Array; providerId: string; method: string; path: string; body?: Uint8Array; now?: number }

function signedHeader (purpose: Purpose, input: SignInput): string {
  const kid = keyId(publicKeyOf(input.secretKey))
  const ts = Math.floor((input.now ?? Date.now()) / 1000)
  const nonce = toHex(randomBytes(12))
  const sig = signBytes(message(purpose, input.providerId, input.method, input.path, ts, nonce, input.body ?? new Uint8Array()), input.secretKey)
  return `kid=${kid}; ts=${ts}; nonce=${nonce}; sig=${toHex(sig)}`
}

/** Headers that authenticate one operator request. `path` is the URL path (e.g. `/v1/keys`), without the query. */
export function operatorHeaders (input: SignInput): Record<string, string> {
  return { [OPERATOR_HEADER]: signedHeader('weft-operator-v1', input) }
}

/** Headers that authenticate one request of a key about its own resources (e.g. `GET /v1/adapters`). */
export function keyHeaders (input: SignInput): Record<string, string> {
  return { [KEY_HEADER]: signedHeader('weft-key-v1', input) }
}

interface ParsedHeader { kid: string; ts: number; nonce: string; signature: Uint8Array }

function parseHeader (name: string, header: string | undefined, missing: string): ParsedHeader {
  if (header === undefined) throw new WeftError('SIGNATURE_INVALID', missing, { header: name })
  const fields = Object.fromEntries(header.split(';').map(part => part.trim().split('=', 2) as [string, string]))
  const { kid, nonce, sig } = fields
  const ts = Number(fields.ts)
  if (kid === undefined || nonce === undefined || sig === undefined || !Number.isInteger(ts)) {
    throw new WeftError('ENVELOPE_INVALID', `${name} must be 'kid=…; ts=…; nonce=…; sig=…'`)
  }
  let signature: Uint8Array
  try { signature = fromHex(sig) } catch { throw new WeftError('ENVELOPE_INVALID', `${name} sig is not hex`) }
  return { kid, ts, nonce, signature }
}

/** Signature, time window and replay checks shared by both kinds of signed request. */
function verifySigned (host: HostContext, purpose: Purpose, name: string, parsed: ParsedHeader, publicKey: Uint8Array, method: string, path: string, body: Uint8Array): void {
  const { kid, ts, nonce } = parsed
  if (!verifyBytes(parsed.signature, message(purpose, host.providerId, method, path, ts, nonce, body), publicKey)) {
    throw new WeftError('SIGNATURE_INVALID', `${name} signature does not verify under key ${kid}`, { kid })
  }
  const now = host.now()
  const skew = host.limits.skewSeconds
  if (Math.abs(now / 1000 - ts) > skew) throw new WeftError('MESSAGE_EXPIRED', `signed request time ${ts} is more than ${skew} s from the provider clock`, { ts, now: Math.floor(now / 1000) })
  const prefix = purpose === 'weft-operator-v1' ? 'operator' : 'key'
  if (!host.store.useNonce(kid, `${prefix}:${nonce}`, (ts + 2 * skew) * 1000, now)) throw new WeftError('NONCE_REPLAYED', 'signed request replayed', { kid, nonce })
}

/** Returns the key id of a registered, unrevoked key that signed this request (`Weft-Key`), or throws a typed error. */
export function checkKey (host: HostContext, header: string | undefined, method: string, path: string, body: Uint8Array): string {
  const parsed = parseHeader(KEY_HEADER, header, `this route needs a ${KEY_HEADER} header signed by your registered key`)
  const stored = host.store.getKey(parsed.kid)
  if (stored === undefined) throw new WeftError('KEY_UNKNOWN', `key ${parsed.kid} is not registered with this provider`, { kid: parsed.kid })
  if (stored.revokedAt !== null) throw new WeftError('KEY_REVOKED', `key ${parsed.kid} was revoked by the operator${stored.revokedReason ? `: ${stored.revokedReason}` : ''}`, { kid: parsed.kid })
  verifySigned(host, 'weft-key-v1', KEY_HEADER, parsed, new Uint8Array(stored.publicKey), method, path, body)
  return parsed.kid
}

/** Returns the operator's key id or throws a typed error naming what was wrong. */
export function checkOperator (host: HostContext, header: string | undefined, method: string, path: string, body: Uint8Array): string {
  const parsed = parseHeader(OPERATOR_HEADER, header, `operator routes need a ${OPERATOR_HEADER} header signed by an operator key`)
  const { kid } = parsed
  const stored = host.store.getKey(kid)
  // a revocation holds for configured operator keys too (DELETE /v1/keys answered `revoked: true`)
  if (stored !== undefined && stored.revokedAt !== null) throw new WeftError('KEY_REVOKED', `operator key ${kid} was revoked`, { kid })
  const publicKey = host.operatorKeys.get(kid) ?? (stored?.role === 'operator' ? new Uint8Array(stored.publicKey) : undefined)
  if (publicKey === undefined) throw new WeftError(stored === undefined ? 'KEY_UNKNOWN' : 'POLICY_DENIED', `key ${kid} is not an operator key of this provider`, { kid })
  verifySigned(host, 'weft-operator-v1', OPERATOR_HEADER, parsed, publicKey, method, path, body)
  return kid
}
