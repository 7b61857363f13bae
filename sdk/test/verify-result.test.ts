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

  test('the receipt binds the adapters a run used and kept: a body or receipt that disagrees with them or the Program is rejected', () => {
    const digest = 'sha256:' + 'ab'.repeat(32)
    const other = 'sha256:' + 'cd'.repeat(32)
    const saves = encodeCbor({ h: tensor([1]) })
    const make = (fields: { adaptersUsed?: string[]; adapterKept?: string }, extra: Record<string, unknown> = {}): Uint8Array => encodeCbor({
      job: 'j', saves, egress: { bytes: 4, remainingToday: null }, stats: null, ...extra,
      receipt: signReceipt({ provider: 'p', job: 'j', requestDigest: requestDigest(envelope), model: 'm', modelRevision: 'r', edits: [], resultDigest: sha256Digest(saves), egressBytes: 4, issuedAt: 1, ...fields }, secretKey, keyId(publicKey)),
    })
    const kept = { adapter: { name: 'rome', id: 'adp_1', digest, bytes: 4, replaced: false } }
    const rejects = (bytes: Uint8Array, exp: Partial<Parameters<typeof verifyResult>[1]>, text: string): void => {
      expect(() => verifyResult(bytes, { ...expected, ...exp })).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID', message: expect.stringContaining(text) }))
    }
    // a run that used adapter 'lora' and kept 'rome'
    const good = make({ adaptersUsed: [`lora@${digest}`], adapterKept: `rome@${digest}` }, { ...kept, adaptersUsed: [`lora@${digest}`] })
    expect(verifyResult(good, { ...expected, adapterInits: ['lora'], keep: 'rome' }).receipt).toMatchObject({ adaptersUsed: [`lora@${digest}`], adapterKept: `rome@${digest}` })
    rejects(good, { adapterInits: [], keep: 'rome' }, 'receipt binds adapters [lora] as used, but the Program initialises params from []')
    rejects(good, { adapterInits: ['lora'], keep: 'other' }, "the result kept adapter 'rome', the Program asked to keep 'other'")
    rejects(make({ adapterKept: `rome@${digest}` }, { adapter: { ...kept.adapter, digest: other } }), {}, `receipt binds kept adapter rome@${digest}, the result reports rome@${other}`)
    rejects(make({}, kept), {}, 'receipt binds kept adapter none')
    rejects(make({}), { adapterInits: ['lora'] }, 'receipt binds adapters [] as used, but the Program initialises params from [lora]')
    rejects(make({ adaptersUsed: [`lora@${digest}`] }, { adaptersUsed: [`lora@${other}`] }), { adapterInits: ['lora'] }, 'other adapters used than its receipt binds')
    // a malformed binding never verifies
    expect(() => signReceipt({ provider: 'p', job: 'j', requestDigest: 'x', model: 'm', modelRevision: 'r', edits: [], resultDigest: 'x', egressBytes: 0, issuedAt: 1, adaptersUsed: [] }, secretKey, keyId(publicKey))).toThrow(/adaptersUsed/)
  })
})
