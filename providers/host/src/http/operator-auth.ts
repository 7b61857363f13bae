/**
 * Operator authentication: an Ed25519 signature over the request (provider id, method, path, time, nonce, body
 * digest) in the `Weft-Operator` header, by a key with the operator role. `operatorHeaders` builds it for clients.
 */
import { createHash, randomBytes } from 'node:crypto'
import { WeftError, fromHex, keyId, publicKeyOf, signBytes, toHex, verifyBytes } from '@weft/core'
import type { HostContext } from './host-context.js'

export const OPERATOR_HEADER = 'Weft-Operator'

function message (providerId: string, method: string, path: string, ts: number, nonce: string, body: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(body).digest('hex')
  return new TextEncoder().encode(['weft-operator-v1', providerId, method.toUpperCase(), path, String(ts), nonce, digest].join('\n'))
}

/** Headers that authenticate one operator request. `path` is the URL path (e.g. `/v1/keys`), without the query. */
export function operatorHeaders (input: { secretKey: Uint8Array; providerId: string; method: string; path: string; body?: Uint8Array; now?: number }): Record<string, string> {
  const kid = keyId(publicKeyOf(input.secretKey))
  const ts = Math.floor((input.now ?? Date.now()) / 1000)
  const nonce = toHex(randomBytes(12))
  const sig = signBytes(message(input.providerId, input.method, input.path, ts, nonce, input.body ?? new Uint8Array()), input.secretKey)
  return { [OPERATOR_HEADER]: `kid=${kid}; ts=${ts}; nonce=${nonce}; sig=${toHex(sig)}` }
}

/** Returns the operator's key id or throws a typed error naming what was wrong. */
export function checkOperator (host: HostContext, header: string | undefined, method: string, path: string, body: Uint8Array): string {
  if (header === undefined) throw new WeftError('SIGNATURE_INVALID', `operator routes need a ${OPERATOR_HEADER} header signed by an operator key`, { header: OPERATOR_HEADER })
  const fields = Object.fromEntries(header.split(';').map(part => part.trim().split('=', 2) as [string, string]))
  const { kid, nonce, sig } = fields
  const ts = Number(fields.ts)
  if (kid === undefined || nonce === undefined || sig === undefined || !Number.isInteger(ts)) {
    throw new WeftError('ENVELOPE_INVALID', `${OPERATOR_HEADER} must be 'kid=…; ts=…; nonce=…; sig=…'`)
  }
  const stored = host.store.getKey(kid)
  // a revocation holds for configured operator keys too (DELETE /v1/keys/:kid answered `revoked: true`)
  if (stored !== undefined && stored.revokedAt !== null) throw new WeftError('KEY_REVOKED', `operator key ${kid} was revoked`, { kid })
  const publicKey = host.operatorKeys.get(kid) ?? (stored?.role === 'operator' ? new Uint8Array(stored.publicKey) : undefined)
  if (publicKey === undefined) throw new WeftError(stored === undefined ? 'KEY_UNKNOWN' : 'POLICY_DENIED', `key ${kid} is not an operator key of this provider`, { kid })
  let signature: Uint8Array
  try { signature = fromHex(sig) } catch { throw new WeftError('ENVELOPE_INVALID', `${OPERATOR_HEADER} sig is not hex`) }
  if (!verifyBytes(signature, message(host.providerId, method, path, ts, nonce, body), publicKey)) {
    throw new WeftError('SIGNATURE_INVALID', `${OPERATOR_HEADER} signature does not verify under operator key ${kid}`, { kid })
  }
  const now = host.now()
  const skew = host.limits.skewSeconds
  if (Math.abs(now / 1000 - ts) > skew) throw new WeftError('MESSAGE_EXPIRED', `operator request time ${ts} is more than ${skew} s from the provider clock`, { ts, now: Math.floor(now / 1000) })
  if (!host.store.useNonce(kid, `operator:${nonce}`, (ts + 2 * skew) * 1000, now)) throw new WeftError('NONCE_REPLAYED', 'operator request replayed', { kid, nonce })
  return kid
}
