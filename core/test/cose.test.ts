// COSE_Sign1 requests and receipts: round trips, every rejection code, byte-reproducible signatures.
import { describe, expect, test } from 'vitest'
import { createRequestEnvelope, keyId, keyPairFromSeed, openRequestEnvelope, programDigest, resultDigest, signReceipt, tensor, verifyEnvelope, verifyReceipt, WeftError, generateKeyPair, type Receipt } from '@weft/core'
import { programOf } from '@weft/core/testing'

const keys = keyPairFromSeed(new Uint8Array(32).fill(7))
const kid = keyId(keys.publicKey)
const program = programOf([['read', { site: 'lm_head' }, []], ['save', { name: 'logits' }, [0]]])
const iat = 1_767_225_600
const envelope = (over: Partial<Parameters<typeof createRequestEnvelope>[0]> = {}): Uint8Array =>
  createRequestEnvelope({ program, audience: 'provider-a', secretKey: keys.secretKey, kid, nonce: 'n1', iat, ...over })
const open = (bytes: Uint8Array, over: Record<string, unknown> = {}) =>
  openRequestEnvelope(bytes, { resolveKey: k => k === kid ? keys.publicKey : undefined, audience: 'provider-a', now: iat + 10, ...over })
const code = (fn: () => unknown): string => {
  try { fn() } catch (error) { if (WeftError.is(error)) return error.code; throw error }
  return 'OK'
}

describe('request envelopes', () => {
  test('a lifetime (exp − iat) over maxLifetimeSeconds is MESSAGE_LIFETIME_TOO_LONG; at the maximum it opens', () => {
    expect(code(() => open(envelope({ ttlSeconds: 10 * 365 * 86400 }), { maxLifetimeSeconds: 3600 }))).toBe('MESSAGE_LIFETIME_TOO_LONG')
    expect(code(() => open(envelope({ ttlSeconds: 3601 }), { maxLifetimeSeconds: 3600 }))).toBe('MESSAGE_LIFETIME_TOO_LONG')
    expect(code(() => open(envelope({ ttlSeconds: 3600 }), { maxLifetimeSeconds: 3600 }))).toBe('OK')
    expect(code(() => open(envelope({ ttlSeconds: 10 * 365 * 86400 })))).toBe('OK') // no maximum given: unbounded
  })

  test('round trip, deterministic bytes', () => {
    const bytes = envelope()
    expect(envelope()).toEqual(bytes)
    const opened = open(bytes)
    expect(opened).toMatchObject({ kid, audience: 'provider-a', nonce: 'n1', iat, exp: iat + 300, programDigest: programDigest(program) })
    expect(opened.program.nodes).toEqual(program.nodes)
    expect(kid).toMatch(/^ed25519:[0-9a-f]{32}$/)
  })

  test('rejections', () => {
    const bytes = envelope()
    const flipped = bytes.slice(); flipped[bytes.length - 80] ^= 1 // inside the payload
    const badSig = bytes.slice(); badSig[bytes.length - 1] ^= 1
    expect(code(() => open(flipped))).toBe('SIGNATURE_INVALID')
    expect(code(() => open(badSig))).toBe('SIGNATURE_INVALID')
    expect(code(() => open(bytes, { audience: 'provider-b' }))).toBe('AUDIENCE_MISMATCH')
    expect(code(() => open(bytes, { now: iat + 300 + 61 }))).toBe('MESSAGE_EXPIRED')
    expect(code(() => open(bytes, { now: iat - 61 }))).toBe('MESSAGE_NOT_YET_VALID')
    expect(code(() => open(bytes, { resolveKey: () => undefined }))).toBe('KEY_UNKNOWN')
    expect(code(() => open(bytes, { resolveKey: () => generateKeyPair().publicKey }))).toBe('SIGNATURE_INVALID')
    expect(code(() => open(bytes.subarray(0, 10)))).toBe('DECODE_FAILED')
    expect(code(() => open(new Uint8Array([0x80])))).toBe('ENVELOPE_INVALID')
  })

  test('generic payloads verify without claims', () => {
    const bytes = envelope()
    expect(verifyEnvelope(bytes, { resolveKey: () => keys.publicKey, now: iat }).protectedHeader).toEqual({ alg: -8, kid, contentType: 'application/vnd.weft.request+cbor' })
  })
})

describe('receipts', () => {
  const saves = { logits: tensor([[1, 2]]) }
  const receipt: Receipt = {
    provider: 'provider-a', job: 'job-1', requestDigest: 'sha256:00', model: 'demo-gpt2', modelRevision: 'sha256:11',
    edits: [], resultDigest: resultDigest(saves), egressBytes: 8, issuedAt: iat,
  }
  test('sign and verify', () => {
    const bytes = signReceipt(receipt, keys.secretKey, kid)
    expect(verifyReceipt(bytes, keys.publicKey)).toEqual(receipt)
    expect(signReceipt(receipt, keys.secretKey, kid)).toEqual(bytes)
    expect(code(() => verifyReceipt(bytes, generateKeyPair().publicKey))).toBe('SIGNATURE_INVALID')
  })
  test('result digest is the sha256 of the saves map', () => {
    expect(resultDigest(saves)).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(resultDigest({ logits: tensor([[1, 2.5]]) })).not.toBe(resultDigest(saves))
  })
})
