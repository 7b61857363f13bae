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

  test('the receipt must name the model and the revision the client validated with (issue #9 item 10)', () => {
    const good = body({ h: tensor([1, 2]) }, 8)
    expect(() => verifyResult(good, { ...expected, model: 'm', revision: 'r' })).not.toThrow()
    expect(() => verifyResult(good, { ...expected, model: 'm', revision: 'sha256:other' }))
      .toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining('receipt names model revision r, but the Program was validated against revision sha256:other') }))
    expect(() => verifyResult(good, { ...expected, model: 'other-model', revision: 'r' }))
      .toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining('receipt is for model m') }))
  })

  test('signed saves that are not a map of tensors raise DECODE_FAILED, not a TypeError', () => {
    for (const bad of [{ h: 1 }, [tensor([1])], 5]) {
      let error: unknown
      try { verifyResult(body(bad, 0), expected) } catch (e) { error = e }
      expect(WeftError.is(error, 'DECODE_FAILED')).toBe(true)
    }
  })
})
