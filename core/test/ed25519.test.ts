// Native Ed25519 (node:crypto) against @noble/ed25519 as the reference: byte-identical signatures on the spec vectors,
// RFC 8032 and random inputs, agreeing verdicts, weak public keys refused, bounded key caches.
import { randomBytes } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { describe, expect, test } from 'vitest'
import { loadVectors } from '@weft/spec'
import { CborTag, decodeCbor, fromHex, keyCacheSizes, KEY_CACHE_LIMITS, keyPairFromSeed, sigStructure, signBytes, toHex, verifyBytes } from '@weft/core'

// RFC 8032 §7.1, tests 1–3 (secret key, public key, message, signature)
const RFC8032 = [
  ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '',
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
  ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72',
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
  ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82',
    '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'],
] as const

describe('node:crypto Ed25519 equals the noble reference', () => {
  test('spec envelope vectors: the same signature bytes as the vector, from both implementations', () => {
    const passing = loadVectors('envelope').filter(v => v.fail !== true)
    expect(passing.length).toBeGreaterThanOrEqual(2)
    for (const v of passing) {
      const key = v.input.key as { d_hex: string; x_hex: string }
      const sign1 = decodeCbor(fromHex(v.output!.cbor_hex as string)) as CborTag
      const [protectedBytes, , payload, signature] = sign1.value as [Uint8Array, unknown, Uint8Array, Uint8Array]
      const tbs = sigStructure(protectedBytes, payload)
      const seed = fromHex(key.d_hex)
      expect(toHex(signBytes(tbs, seed))).toBe(toHex(signature))
      expect(toHex(ed.sign(tbs, seed))).toBe(toHex(signature))
      expect(verifyBytes(signature, tbs, fromHex(key.x_hex))).toBe(true)
      expect(ed.verify(signature, tbs, fromHex(key.x_hex), { zip215: false })).toBe(true)
    }
  })

  test('RFC 8032 test vectors', () => {
    for (const [secret, publicKey, message, signature] of RFC8032) {
      expect(toHex(keyPairFromSeed(fromHex(secret)).publicKey)).toBe(publicKey)
      expect(toHex(signBytes(fromHex(message), fromHex(secret)))).toBe(signature)
      expect(verifyBytes(fromHex(signature), fromHex(message), fromHex(publicKey))).toBe(true)
    }
  })

  test('random keys and messages: identical signatures, identical verdicts on valid and tampered input', () => {
    for (let i = 0; i < 64; i++) {
      const seed = new Uint8Array(randomBytes(32))
      const { publicKey } = keyPairFromSeed(seed)
      const message = new Uint8Array(randomBytes(i * 37))
      const signature = signBytes(message, seed)
      expect(toHex(signature)).toBe(toHex(ed.sign(message, seed)))
      expect(verifyBytes(signature, message, publicKey)).toBe(true)
      const tampered = signature.slice(); tampered[i % 64]! ^= 1 << (i % 8)
      expect(verifyBytes(tampered, message, publicKey)).toBe(ed.verify(tampered, message, publicKey, { zip215: false }))
      expect(verifyBytes(tampered, message, publicKey)).toBe(false)
      if (message.length > 0) {
        const changed = message.slice(); changed[0]! ^= 1
        expect(verifyBytes(signature, changed, publicKey)).toBe(false)
      }
    }
  })

  test('subarray views sign and verify like copies (byteOffset respected)', () => {
    const seed = new Uint8Array(randomBytes(32))
    const { publicKey } = keyPairFromSeed(seed)
    const backing = new Uint8Array(randomBytes(300))
    const message = backing.subarray(17, 217)
    const keyView = new Uint8Array(64); keyView.set(seed, 16)
    const signature = signBytes(message, keyView.subarray(16, 48))
    expect(toHex(signature)).toBe(toHex(ed.sign(message.slice(), seed)))
    const pubView = new Uint8Array(40); pubView.set(publicKey, 5)
    const sigView = new Uint8Array(70); sigView.set(signature, 3)
    expect(verifyBytes(sigView.subarray(3, 67), message, pubView.subarray(5, 37))).toBe(true)
  })
})

describe('verifyBytes refuses what it must and never throws', () => {
  test('small-order public keys (anyone can sign for them) are refused, as in noble strict mode and libsodium', () => {
    const zeros = new Uint8Array(32)
    const identity = new Uint8Array(32); identity[0] = 1 // the neutral element (0, 1)
    const signature = new Uint8Array(64)
    signature[0] = 1 // R = identity, S = 0: "valid" under the identity key for every message
    for (const message of [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(3)]) {
      expect(ed.verify(signature, message, identity)).toBe(true) // the permissive (ZIP-215) default would accept
      expect(verifyBytes(signature, message, identity)).toBe(false)
      expect(verifyBytes(new Uint8Array(64), message, zeros)).toBe(false)
    }
  })

  test('non-canonical key encodings, wrong lengths and garbage are false, not exceptions', () => {
    const seed = new Uint8Array(randomBytes(32))
    const { publicKey } = keyPairFromSeed(seed)
    const message = new Uint8Array([9, 9, 9])
    const signature = signBytes(message, seed)
    const nonCanonical = fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f') // y = p
    expect(verifyBytes(signature, message, nonCanonical)).toBe(false)
    expect(verifyBytes(signature.subarray(0, 63), message, publicKey)).toBe(false)
    expect(verifyBytes(signature, message, publicKey.subarray(0, 31))).toBe(false)
    expect(verifyBytes(new Uint8Array(64).fill(0xff), message, publicKey)).toBe(false) // S ≥ L
    expect(verifyBytes(signature, message, new Uint8Array(32).fill(0xff))).toBe(false)
    expect(() => signBytes(message, seed.subarray(0, 31))).toThrow(/32 bytes/)
  })
})

test('key caches stay within their bounds', () => {
  const message = new Uint8Array([1])
  const signature = new Uint8Array(64)
  for (let i = 0; i < KEY_CACHE_LIMITS.publicKeys + 50; i++) verifyBytes(signature, message, new Uint8Array(randomBytes(32)))
  for (let i = 0; i < KEY_CACHE_LIMITS.secretKeys + 10; i++) signBytes(message, new Uint8Array(randomBytes(32)))
  const sizes = keyCacheSizes()
  expect(sizes.publicKeys).toBe(KEY_CACHE_LIMITS.publicKeys)
  expect(sizes.secretKeys).toBe(KEY_CACHE_LIMITS.secretKeys)
  // evicted keys still work (rebuilt on demand)
  const seed = fromHex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')
  expect(verifyBytes(signBytes(message, seed), message, keyPairFromSeed(seed).publicKey)).toBe(true)
})
