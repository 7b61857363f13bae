/**
 * Signed plain requests: an Ed25519 signature over the request (provider id, method, path, time, nonce, body digest)
 * in a header. `Weft-Operator` (by a key with the operator role) authenticates operator routes; `Weft-Key` (by any
 * registered, unrevoked key) authenticates a key's own resources (its kept adapters). `operatorHeaders` and
 * `keyHeaders` build them for clients.
 */
import { WeftError, parseRequestSignature, requestSignatureMessage, signRequest, verifyBytes, type ParsedRequestSignature, type RequestSignatureInput, type RequestSignaturePurpose } from '@weft/core'
import type { Context } from 'hono'
import type { HostContext } from './host-context.js'

export const OPERATOR_HEADER = 'Weft-Operator'
export const KEY_HEADER = 'Weft-Key'

type Purpose = RequestSignaturePurpose
type ParsedHeader = ParsedRequestSignature

/** Headers that authenticate one operator request. `path` is the URL path (e.g. `/v1/keys`), without the query. */
export function operatorHeaders (input: RequestSignatureInput): Record<string, string> {
  return { [OPERATOR_HEADER]: signRequest('weft-operator-v1', input) }
}

/** Headers that authenticate one request of a key about its own resources (e.g. `GET /v1/adapters`). */
export function keyHeaders (input: RequestSignatureInput): Record<string, string> {
  return { [KEY_HEADER]: signRequest('weft-key-v1', input) }
}

function parseHeader (name: string, header: string | undefined, missing: string): ParsedHeader {
  if (header === undefined) throw new WeftError('SIGNATURE_INVALID', missing, { header: name })
  return parseRequestSignature(name, header)
}

/** Signature, time window and replay checks shared by both kinds of signed request. */
function verifySigned (host: HostContext, purpose: Purpose, name: string, parsed: ParsedHeader, publicKey: Uint8Array, method: string, path: string, body: Uint8Array): void {
  const { kid, ts, nonce } = parsed
  if (!verifyBytes(parsed.signature, requestSignatureMessage(purpose, host.providerId, method, path, ts, nonce, body), publicKey)) {
    throw new WeftError('SIGNATURE_INVALID', `${name} signature does not verify under key ${kid}`, { kid })
  }
  const now = host.now()
  const skew = host.limits.skewSeconds
  if (Math.abs(now / 1000 - ts) > skew) throw new WeftError('MESSAGE_EXPIRED', `signed request time ${ts} is more than ${skew} s from the provider clock`, { ts, now: Math.floor(now / 1000) })
  const prefix = purpose === 'weft-operator-v1' ? 'operator' : 'key'
  if (!host.store.useNonce(kid, `${prefix}:${nonce}`, (ts + 2 * skew) * 1000, now)) throw new WeftError('NONCE_REPLAYED', 'signed request replayed', { kid, nonce })
}

/** Returns the key id of a registered, unrevoked key that signed this request (`Weft-Key`), or throws a typed error. */
function checkKey (host: HostContext, header: string | undefined, method: string, path: string, body: Uint8Array): string {
  const parsed = parseHeader(KEY_HEADER, header, `this route needs a ${KEY_HEADER} header signed by your registered key`)
  const stored = host.store.getKey(parsed.kid)
  if (stored === undefined) throw new WeftError('KEY_UNKNOWN', `key ${parsed.kid} is not registered with this provider`, { kid: parsed.kid })
  if (stored.revokedAt !== null) throw new WeftError('KEY_REVOKED', `key ${parsed.kid} was revoked by the operator${stored.revokedReason ? `: ${stored.revokedReason}` : ''}`, { kid: parsed.kid })
  verifySigned(host, 'weft-key-v1', KEY_HEADER, parsed, new Uint8Array(stored.publicKey), method, path, body)
  return parsed.kid
}

/** The key id of the registered key that signed this request (its `Weft-Key` header, over its method, path and body). */
export async function keyOf (host: HostContext, c: Context): Promise<string> {
  return checkKey(host, c.req.header(KEY_HEADER), c.req.method, c.req.path, new Uint8Array(await c.req.arrayBuffer()))
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
