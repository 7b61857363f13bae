/**
 * COSE_Sign1 vectors with fixed keys (seeds 0x00..0x1f for the researcher, 0x20..0x3f for the provider) and fixed
 * times. Fail vectors are built by hand-chosen mutations; their expected error codes are written by hand.
 */
import {
  CborTag, createRequestEnvelope, decodeCbor, encodeCbor, encodeProgram, keyId, keyPairFromSeed, signBytes as ed25519Sign,
  sigStructure, signEnvelope, signReceipt, toHex, toJsonForm, REQUEST_CONTENT_TYPE, RECEIPT_CONTENT_TYPE, type Program, type Receipt,
} from '@weft/core'
import type { VectorFile } from './types.js'

const IAT = 1767225600 // 2026-01-01T00:00:00Z
const TTL = 3600
const researcher = keyPairFromSeed(Uint8Array.from({ length: 32 }, (_, i) => i))
const provider = keyPairFromSeed(Uint8Array.from({ length: 32 }, (_, i) => 32 + i))
const other = keyPairFromSeed(new Uint8Array(32).fill(0xee))
const kid = keyId(researcher.publicKey)
const key = (k: typeof researcher) => ({ kty: 'OKP', crv: 'Ed25519', d_hex: toHex(k.secretKey), x_hex: toHex(k.publicKey), kid: keyId(k.publicKey) })

const program: Program = {
  version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [328, 370, 293, 3606, 297] }],
  nodes: [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['index', { index: [0, -1] }, [0]], ['save', { name: 'logits' }, [1]]],
}
const requestInput = { audience: 'provider-demo', nonce: '000102030405060708090a0b0c0d0e0f', iat: IAT, ttlSeconds: TTL }

/** Re-assembles a Sign1 from (possibly altered) parts. */
function assemble (protectedBytes: Uint8Array, payload: Uint8Array, signature: Uint8Array, unprotected: unknown = new Map()): Uint8Array {
  return encodeCbor(new CborTag(18, [protectedBytes, unprotected, payload, signature]))
}

function parts (bytes: Uint8Array): [Uint8Array, unknown, Uint8Array, Uint8Array] {
  return (decodeCbor(bytes) as CborTag).value as [Uint8Array, unknown, Uint8Array, Uint8Array]
}

export function envelopeVectors (): VectorFile[] {
  const good = createRequestEnvelope({ program, secretKey: researcher.secretKey, kid, ...requestInput })
  const [prot, , payload, signature] = parts(good)
  const verify = { audience: 'provider-demo', now: IAT + 10, skew_seconds: 60, keys: [key(researcher)] }
  const files: VectorFile[] = [{
    path: 'envelope/sign1-pass-01-request.json',
    body: {
      title: 'sign1-pass-01: a signed job request',
      input: { key: key(researcher), program: toJsonForm(program), ...requestInput, verify },
      intermediates: { program_cbor_hex: toHex(encodeProgram(program)), protected_hex: toHex(prot), payload_hex: toHex(payload), to_be_signed_hex: toHex(sigStructure(prot, payload)) },
      output: { cbor_hex: toHex(good) },
    },
  }]
  const receipt: Receipt = {
    provider: 'provider-demo', job: 'job-0001', requestDigest: 'sha256:' + '11'.repeat(32), model: 'demo-gpt2',
    modelRevision: 'sha256:c6496eb1485491b74c2a6bebe2c61b7ef7e8a9b29e7596bf6238bc2d12edb06f', edits: [],
    resultDigest: 'sha256:' + '22'.repeat(32), egressBytes: 16384, issuedAt: IAT + 5,
  }
  const signedReceipt = signReceipt(receipt, provider.secretKey, keyId(provider.publicKey))
  files.push({ path: 'envelope/sign1-pass-02-receipt.json', body: { title: 'sign1-pass-02: a provider receipt', input: { key: key(provider), receipt }, output: { cbor_hex: toHex(signedReceipt) } } })
  const adapterReceipt: Receipt = {
    ...receipt, job: 'job-0002', egressBytes: 120,
    adaptersUsed: ['base-lora@sha256:' + '33'.repeat(32)], adapterKept: 'rome-steer@sha256:' + '44'.repeat(32),
  }
  files.push({
    path: 'envelope/sign1-pass-03-receipt-adapters.json',
    body: { title: 'sign1-pass-03: a receipt of a session that initialised params from a kept adapter and kept another', input: { key: key(provider), receipt: adapterReceipt }, output: { cbor_hex: toHex(signReceipt(adapterReceipt, provider.secretKey, keyId(provider.publicKey))) } },
  })

  const flippedPayload = payload.slice()
  flippedPayload[flippedPayload.length - 1] ^= 0x01 // the last input index of the last node: still valid CBOR
  const flippedSignature = signature.slice()
  flippedSignature[0] ^= 0x80
  const es256Header = encodeCbor(new Map<number, unknown>([[1, -7], [3, REQUEST_CONTENT_TYPE], [4, new TextEncoder().encode(kid)]]))
  const receiptTyped = signEnvelope({ payload: decodeCbor(payload) as Record<string, unknown>, secretKey: researcher.secretKey, kid, contentType: RECEIPT_CONTENT_TYPE })
  const fail: [string, string, Uint8Array, string, Record<string, unknown>?][] = [
    ['01', 'payload byte changed after signing', assemble(prot, flippedPayload, signature), 'SIGNATURE_INVALID'],
    ['02', 'signature byte changed', assemble(prot, payload, flippedSignature), 'SIGNATURE_INVALID'],
    ['03', 'addressed to another provider', good, 'AUDIENCE_MISMATCH', { audience: 'provider-other' }],
    ['04', 'expired: now is 61 s past exp with 60 s skew', good, 'MESSAGE_EXPIRED', { now: IAT + TTL + 61 }],
    ['05', 'not yet valid: iat is 61 s in the future', good, 'MESSAGE_NOT_YET_VALID', { now: IAT - 61 }],
    ['06', 'algorithm ES256 (-7) in the protected header', assemble(es256Header, payload, ed25519Sign(sigStructure(es256Header, payload), researcher.secretKey)), 'ENVELOPE_INVALID'],
    ['07', 'COSE_Sign1 array with three elements', encodeCbor(new CborTag(18, [prot, new Map(), payload])), 'ENVELOPE_INVALID'],
    ['08', 'key id not registered', good, 'KEY_UNKNOWN', { keys: [] }],
    ['09', 'signed by another key under the same kid', assemble(prot, payload, ed25519Sign(sigStructure(prot, payload), other.secretKey)), 'SIGNATURE_INVALID'],
    ['10', 'truncated bytes', good.subarray(0, good.length - 10), 'DECODE_FAILED'],
    ['11', 'receipt content type on a request', receiptTyped, 'ENVELOPE_INVALID'],
    ['12', 'untagged COSE_Sign1', encodeCbor([prot, new Map(), payload, signature]), 'ENVELOPE_INVALID'],
    ['13', 'non-empty unprotected header', assemble(prot, payload, signature, new Map([[4, new Uint8Array([1])]])), 'ENVELOPE_INVALID'],
    ['14', 'protected header without kid', assemble(encodeCbor(new Map<number, unknown>([[1, -8], [3, REQUEST_CONTENT_TYPE]])), payload, signature), 'ENVELOPE_INVALID'],
  ]
  for (const [n, title, bytes, code, over] of fail) {
    files.push({
      path: `envelope/sign1-fail-${n}.json`,
      body: { title: `sign1-fail-${n}: ${title}`, description: `Verifier must reject with ${code}.`, fail: true, expect_error: code, input: { cbor_hex: toHex(bytes), verify: { ...verify, ...over } } },
    })
  }
  return files
}
