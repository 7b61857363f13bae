/**
 * Ed25519 keys and Weft key ids. Signing and verification run on node:crypto (OpenSSL), with KeyObjects built from
 * raw 32-byte keys through the fixed PKCS#8/SPKI DER prefixes and cached per key; @noble/ed25519 derives public keys
 * from seeds (cheaper than node, which can only do it by importing the private key) and screens each public key once
 * when it enters the cache (canonical encoding, not of small order). See docs/decisions/2026-11-27-cose.md.
 */
import { createHash, createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'
import { WeftError } from '../errors/weft-error.js'
import { toHex } from '../cbor/hex.js'

ed.hashes.sha512 = sha512

export interface KeyPair { secretKey: Uint8Array; publicKey: Uint8Array }

/** A fresh random key pair. */
export function generateKeyPair (): KeyPair {
  return ed.keygen()
}

/** The key pair of a 32-byte seed (the seed is the Ed25519 secret key). Deterministic: test vectors use it. */
export function keyPairFromSeed (seed: Uint8Array): KeyPair {
  if (seed.length !== 32) throw new WeftError('ENVELOPE_INVALID', `an Ed25519 seed has 32 bytes, got ${seed.length}`)
  return ed.keygen(seed)
}

export function publicKeyOf (secretKey: Uint8Array): Uint8Array {
  return ed.getPublicKey(secretKey)
}

const bufferOf = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** `ed25519:` + hex of the first 16 bytes of SHA-256(publicKey): 128 bits, fixed length, says nothing about the key. */
export function keyId (publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new WeftError('ENVELOPE_INVALID', `an Ed25519 public key has 32 bytes, got ${publicKey.length}`)
  return 'ed25519:' + toHex(createHash('sha256').update(bufferOf(publicKey)).digest().subarray(0, 16))
}

// RFC 8410 DER wrappers of a raw Ed25519 key: PKCS#8 OneAsymmetricKey (version 0, id-Ed25519, OCTET STRING of the
// 32-byte seed) and SubjectPublicKeyInfo (id-Ed25519, BIT STRING of the 32-byte point). Fixed 16- and 12-byte prefixes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** A small LRU map: a hit moves the entry to the back, an insert beyond `max` drops the front (least recent). */
class KeyCache<V> {
  private readonly entries = new Map<string, V>()
  constructor (private readonly max: number) {}
  get (key: string): V | undefined {
    const value = this.entries.get(key)
    if (value !== undefined) { this.entries.delete(key); this.entries.set(key, value) }
    return value
  }
  set (key: string, value: V): void {
    this.entries.set(key, value)
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!)
  }
  get size (): number { return this.entries.size }
  clear (): void { this.entries.clear() }
}

/** Bounds: a provider sees many researcher keys (verify), a process signs with few keys of its own. */
export const KEY_CACHE_LIMITS = { publicKeys: 4096, secretKeys: 64 } as const

/** KeyObject per public key, or null for a key that can never verify (not canonical, small order, not a point). */
const publicKeys = new KeyCache<KeyObject | null>(KEY_CACHE_LIMITS.publicKeys)
/** KeyObject per secret key, indexed by a hash of the seed so the cache keeps no copy of secret bytes as text. */
const secretKeys = new KeyCache<KeyObject>(KEY_CACHE_LIMITS.secretKeys)

/** Entries in the key caches (tests check the bounds). */
export function keyCacheSizes (): { publicKeys: number; secretKeys: number } {
  return { publicKeys: publicKeys.size, secretKeys: secretKeys.size }
}

/**
 * OpenSSL verifies cofactorless RFC 8032 but takes any 32 bytes as a public key, including the small-order points,
 * for which anyone can produce "valid" signatures (an all-zero key verifies an all-zero signature). A signer with
 * such a key could later disown its receipts, so keys are screened once, the way noble's strict mode and libsodium
 * do: the encoding must be canonical (y < p) and the point must not be of small order.
 */
function screenedPublicKey (publicKey: Uint8Array): KeyObject | null {
  try {
    const point = ed.Point.fromBytes(publicKey, false)
    if (point.isSmallOrder()) return null
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
  } catch {
    return null
  }
}

function publicKeyObject (publicKey: Uint8Array): KeyObject | null {
  const id = bufferOf(publicKey).toString('latin1')
  let key = publicKeys.get(id)
  if (key === undefined) {
    key = screenedPublicKey(publicKey)
    publicKeys.set(id, key)
  }
  return key
}

function secretKeyObject (secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== 32) throw new WeftError('ENVELOPE_INVALID', `an Ed25519 secret key has 32 bytes, got ${secretKey.length}`)
  const id = createHash('sha256').update('weft-key-cache\n').update(bufferOf(secretKey)).digest().toString('latin1')
  let key = secretKeys.get(id)
  if (key === undefined) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' })
    secretKeys.set(id, key)
  }
  return key
}

/** Pure Ed25519 (RFC 8032): 64 bytes, deterministic, byte-identical to any conforming implementation. */
export function signBytes (message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, bufferOf(message), secretKeyObject(secretKey)))
}

/** false for a wrong signature or a malformed key/signature; never throws. */
export function verifyBytes (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    if (signature.length !== 64 || publicKey.length !== 32) return false
    const key = publicKeyObject(publicKey)
    return key !== null && nodeVerify(null, bufferOf(message), key, bufferOf(signature))
  } catch {
    return false
  }
}
