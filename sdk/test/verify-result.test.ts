import { describe, expect, test } from 'vitest'
import { WeftError, encodeCbor, generateKeyPair, keyId, requestDigest, sha256Digest, signReceipt, tensor } from '@weft/core'
import { verifyResult } from '../src/remote/verify-result.js'

describe('verifyResult', () => {
  const { secretKey, publicKey } = generateKeyPair()
  const envelope = new Uint8Array([1, 2, 3])
  const body = (savesValue: unknown, egressBytes: number): Uint8Array => {
    const saves = encodeCbor(savesValue)
    const receipt = signReceipt({
      provider: 'p', job: 'j', requestDigest: requestDigest(envelope), model: 'm', modelRevision: 'r', edits: [],
      resultDigest: sha256Digest(saves), egressBytes, issuedAt: 1,
    }, secretKey, keyId(publicKey))
    return encodeCbor({ job: 'j', saves, receipt, egress: { bytes: egressBytes, remainingToday: null }, stats: null })
  }
  const expected = { providerId: 'p', publicKey, envelope, job: 'j' }

  test('accepts a signed map of tensors', () => {
    const { saves } = verifyResult(body({ h: tensor([1, 2]) }, 8), expected)
    expect(Array.from(saves.h!.data as Float32Array)).toEqual([1, 2])
  })

  test('signed saves that are not a map of tensors raise DECODE_FAILED, not a TypeError', () => {
    for (const bad of [{ h: 1 }, [tensor([1])], 5]) {
      let error: unknown
      try { verifyResult(body(bad, 0), expected) } catch (e) { error = e }
      expect(WeftError.is(error, 'DECODE_FAILED')).toBe(true)
    }
  })
})
