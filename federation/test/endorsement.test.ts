// spec/vectors/endorsements: pass vectors sign byte-identically and verify; fail vectors are rejected with their code.
// Plus: what an endorsement vouches for, and records carrying endorsements.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { loadVectors } from '@weft/spec'
import { fromHex, fromJsonForm, generateKeyPair, keyId, keyPairFromSeed, toHex } from '@weft/core'
import { renderVector } from '../../spec/scripts/gen-vectors.js'
import { ENDORSEMENTS_DIR, endorsementVectors } from '../scripts/gen-record-vectors.js'
import { createEndorsement, endorses, signEndorsement, verifyEndorsement, type Endorsement } from '../src/endorsement.js'
import { buildProviderRecord, signProviderRecord, verifyProviderRecord } from '../src/provider-record.js'
import { identityFromSeed } from '../src/identity.js'
import { modelInput, seed } from './fabric.js'

interface VerifyInput { now: number; skew_seconds: number; trusted_hex: string[] }
const options = (verify: VerifyInput) => ({ now: verify.now, skewSeconds: verify.skew_seconds, trusted: verify.trusted_hex.map(fromHex) })
const vectors = loadVectors('endorsements')

describe('endorsement vectors', () => {
  test('there are pass and fail vectors', () => {
    expect(vectors.filter(v => v.fail !== true).length).toBeGreaterThanOrEqual(2)
    expect(vectors.filter(v => v.fail === true).length).toBeGreaterThanOrEqual(6)
  })

  for (const vector of vectors) {
    test(vector.title, () => {
      const verify = vector.input.verify as VerifyInput
      if (vector.fail === true) {
        expect(() => verifyEndorsement(fromHex(vector.input.cbor_hex as string), options(verify))).toThrow(expect.objectContaining({ code: vector.expect_error }))
        return
      }
      const key = vector.input.key as { d_hex: string; x_hex: string; kid: string }
      const pair = keyPairFromSeed(fromHex(key.d_hex))
      expect(toHex(pair.publicKey)).toBe(key.x_hex)
      const endorsement = fromJsonForm(vector.input.endorsement) as Endorsement
      const bytes = signEndorsement(endorsement, pair.secretKey)
      expect(toHex(bytes)).toBe((vector.output as { cbor_hex: string }).cbor_hex)
      expect(verifyEndorsement(bytes, options(verify))).toEqual(endorsement)
    })
  }

  test('spec/vectors/endorsements is current (npx tsx federation/scripts/gen-record-vectors.ts)', () => {
    const files = endorsementVectors()
    for (const file of files) {
      const name = file.path.slice('endorsements/'.length)
      expect(readFileSync(join(ENDORSEMENTS_DIR, name), 'utf8') === renderVector(file), `${file.path} is stale`).toBe(true)
    }
    expect(readdirSync(ENDORSEMENTS_DIR).sort()).toEqual(files.map(f => f.path.slice('endorsements/'.length)).sort())
  })
})

describe('endorsements', () => {
  const endorser = generateKeyPair()
  const provider = keyId(generateKeyPair().publicKey)

  test('vouch for the provider and models named, at the revision when one is named', () => {
    const e = verifyEndorsement(createEndorsement({ provider, models: [{ name: 'a' }, { name: 'b', revision: 'sha256:1' }], secretKey: endorser.secretKey, days: 1 }), { trusted: [endorser.publicKey] })
    expect(endorses(e, provider, 'a', 'sha256:anything')).toBe(true)
    expect(endorses(e, provider, 'b', 'sha256:1')).toBe(true)
    expect(endorses(e, provider, 'b', 'sha256:2')).toBe(false)
    expect(endorses(e, provider, 'c', 'sha256:1')).toBe(false)
    expect(endorses(e, keyId(generateKeyPair().publicKey), 'a', 'sha256:1')).toBe(false)
  })

  test('signing checks the shape and that the endorser is the signing key', () => {
    const base = { v: 1 as const, endorser: keyId(endorser.publicKey), provider, models: [{ name: 'a' }], issuedAt: 10, expiresAt: 20 }
    expect(() => signEndorsement({ ...base, endorser: keyId(generateKeyPair().publicKey) }, endorser.secretKey)).toThrow(expect.objectContaining({ code: 'RECORD_INVALID' }))
    expect(() => signEndorsement({ ...base, expiresAt: 5 }, endorser.secretKey)).toThrow(/expiresAt/)
  })

  test('a provider record carries endorsements (signed with the record, at most 8)', async () => {
    const identity = await identityFromSeed(seed(7))
    const endorsement = createEndorsement({ provider: identity.provider, models: [{ name: 'demo-gpt2' }], secretKey: endorser.secretKey, days: 1 })
    const now = Math.floor(Date.now() / 1000)
    const record = buildProviderRecord(identity, { ...modelInput(8740), endorsements: [endorsement] }, { now, lifetimeSeconds: 120, seq: 1 })
    const verified = verifyProviderRecord(signProviderRecord(record, identity.secretKey), { now })
    expect(verified.record.endorsements).toEqual([endorsement])
    const tooMany = buildProviderRecord(identity, { ...modelInput(8740), endorsements: Array(9).fill(endorsement) }, { now, lifetimeSeconds: 120, seq: 1 })
    expect(() => signProviderRecord(tooMany, identity.secretKey)).toThrow(/endorsements/)
  })
})
