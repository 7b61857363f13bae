/** Ed25519 keys (@noble/ed25519, synchronous API wired to @noble/hashes) and Weft key ids. */
import * as ed from '@noble/ed25519'
import { sha256, sha512 } from '@noble/hashes/sha2.js'
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

/** `ed25519:` + hex of the first 16 bytes of SHA-256(publicKey): 128 bits, fixed length, says nothing about the key. */
export function keyId (publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new WeftError('ENVELOPE_INVALID', `an Ed25519 public key has 32 bytes, got ${publicKey.length}`)
  return 'ed25519:' + toHex(sha256(publicKey).subarray(0, 16))
}

export function signBytes (message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed.sign(message, secretKey)
}

/** false for a wrong signature or a malformed key/signature; never throws. */
export function verifyBytes (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, publicKey)
  } catch {
    return false
  }
}
