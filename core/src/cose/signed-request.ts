/**
 * Signed plain HTTP requests (spec/provider-protocol.md §4): an Ed25519 signature over the purpose, the provider id,
 * the method, the path, a time, a nonce and the body's SHA-256, carried in a header as
 * `kid=<key id>; ts=<unix seconds>; nonce=<hex>; sig=<hex>`. `weft-operator-v1` (header `Weft-Operator`)
 * authenticates operator routes, `weft-key-v1` (header `Weft-Key`) a key's requests about its own resources; the
 * purpose is the first line of the message, so a signature for one is never valid as the other.
 */
import { createHash, randomBytes } from 'node:crypto'
import { WeftError } from '../errors/weft-error.js'
import { fromHex, toHex } from '../cbor/hex.js'
import { keyId, publicKeyOf, signBytes } from './keys.js'

export type RequestSignaturePurpose = 'weft-operator-v1' | 'weft-key-v1'

/** The header each purpose travels in. */
export const REQUEST_SIGNATURE_HEADERS: Record<RequestSignaturePurpose, string> = { 'weft-operator-v1': 'Weft-Operator', 'weft-key-v1': 'Weft-Key' }

/** The signed message: its lines joined by "\n". `path` is the URL path without the query. */
export function requestSignatureMessage (purpose: RequestSignaturePurpose, providerId: string, method: string, path: string, ts: number, nonce: string, body: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(body).digest('hex')
  return new TextEncoder().encode([purpose, providerId, method.toUpperCase(), path, String(ts), nonce, digest].join('\n'))
}

export interface RequestSignatureInput { secretKey: Uint8Array; providerId: string; method: string; path: string; body?: Uint8Array; now?: number }

/** The header value signing one request. */
export function signRequest (purpose: RequestSignaturePurpose, input: RequestSignatureInput): string {
  const kid = keyId(publicKeyOf(input.secretKey))
  const ts = Math.floor((input.now ?? Date.now()) / 1000)
  const nonce = toHex(randomBytes(12))
  const sig = signBytes(requestSignatureMessage(purpose, input.providerId, input.method, input.path, ts, nonce, input.body ?? new Uint8Array()), input.secretKey)
  return `kid=${kid}; ts=${ts}; nonce=${nonce}; sig=${toHex(sig)}`
}

export interface ParsedRequestSignature { kid: string; ts: number; nonce: string; signature: Uint8Array }

/** Parses a header value (ENVELOPE_INVALID naming the header when malformed). */
export function parseRequestSignature (headerName: string, value: string): ParsedRequestSignature {
  const fields = Object.fromEntries(value.split(';').map(part => part.trim().split('=', 2) as [string, string]))
  const { kid, nonce, sig } = fields
  const ts = Number(fields.ts)
  if (kid === undefined || nonce === undefined || sig === undefined || !Number.isInteger(ts)) {
    throw new WeftError('ENVELOPE_INVALID', `${headerName} must be 'kid=…; ts=…; nonce=…; sig=…'`)
  }
  let signature: Uint8Array
  try { signature = fromHex(sig) } catch { throw new WeftError('ENVELOPE_INVALID', `${headerName} sig is not hex`) }
  return { kid, ts, nonce, signature }
}
