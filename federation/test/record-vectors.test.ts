// spec/vectors/records: pass vectors sign byte-identically and verify; fail vectors are rejected with their code.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { loadVectors } from '@weft/spec'
import { fromHex, fromJsonForm, keyPairFromSeed, toHex } from '@weft/core'
import { renderVector } from '../../spec/scripts/gen-vectors.js'
import { RECORDS_DIR, recordVectors } from '../scripts/gen-record-vectors.js'
import { verifyProviderRecord, signProviderRecord, type ProviderRecord } from '../src/provider-record.js'
import { peerIdOfPublicKey } from '../src/identity.js'

interface VerifyInput { now: number; skew_seconds: number; publisher?: string; previous_seq?: number }
const options = (verify: VerifyInput) => ({ now: verify.now, skewSeconds: verify.skew_seconds, publisher: verify.publisher, previousSeq: verify.previous_seq })

/** title → reason; empty is the goal */
const skip: Record<string, string> = {}
const vectors = loadVectors('records')

describe('provider record vectors', () => {
  test('there are pass and fail vectors', () => {
    expect(vectors.filter(v => v.fail !== true).length).toBeGreaterThanOrEqual(3)
    expect(vectors.filter(v => v.fail === true).length).toBeGreaterThanOrEqual(10)
  })

  for (const vector of vectors) {
    test.skipIf(vector.title in skip)(vector.title, () => {
      const verify = vector.input.verify as VerifyInput
      if (vector.fail === true) {
        expect(() => verifyProviderRecord(fromHex(vector.input.cbor_hex as string), options(verify))).toThrow(expect.objectContaining({ code: vector.expect_error }))
        return
      }
      const key = vector.input.key as { d_hex: string; x_hex: string; kid: string; peer: string }
      const pair = keyPairFromSeed(fromHex(key.d_hex))
      expect(toHex(pair.publicKey)).toBe(key.x_hex)
      expect(peerIdOfPublicKey(pair.publicKey)).toBe(key.peer)
      const record = fromJsonForm(vector.input.record) as ProviderRecord
      const bytes = signProviderRecord(record, pair.secretKey)
      expect(toHex(bytes)).toBe((vector.output as { cbor_hex: string }).cbor_hex)
      const verified = verifyProviderRecord(bytes, options(verify))
      expect(verified.record).toEqual(record)
      expect(verified.record.provider).toBe(key.kid)
    })
  }

  test('spec/vectors/records is current (npx tsx federation/scripts/gen-record-vectors.ts)', () => {
    const files = recordVectors()
    for (const file of files) {
      const name = file.path.slice('records/'.length)
      expect(readFileSync(join(RECORDS_DIR, name), 'utf8') === renderVector(file), `${file.path} is stale`).toBe(true)
    }
    expect(readdirSync(RECORDS_DIR).sort()).toEqual(files.map(f => f.path.slice('records/'.length)).sort())
  })
})
