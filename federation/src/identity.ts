/**
 * One Ed25519 seed, two roles: the Weft signing key (key id `ed25519:…`) and the libp2p identity (`12D3KooW…`
 * peer ids embed the public key). Converts between them so records can be bound to the peer that publishes them.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { keyId, keyPairFromSeed, type KeyPair } from '@weft/core'

export interface NodeIdentity extends KeyPair {
  /** the Weft provider id (key id of the public key): the audience Programs are addressed to */
  provider: string
  /** the libp2p peer id string of the same key */
  peer: string
  /** the same key as a libp2p private key */
  privateKey: Ed25519PrivateKey
}

/** The Weft key pair and the libp2p private key of one 32-byte seed. */
export async function identityFromSeed (seed: Uint8Array): Promise<NodeIdentity> {
  const pair = keyPairFromSeed(seed)
  const privateKey = await generateKeyPairFromSeed('Ed25519', seed)
  return { ...pair, provider: keyId(pair.publicKey), peer: peerIdOfPublicKey(pair.publicKey), privateKey }
}

/** The libp2p peer id (base58 `12D3KooW…`) that embeds this Ed25519 public key. */
export function peerIdOfPublicKey (publicKey: Uint8Array): string {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString()
}

/** The Ed25519 public key a peer id embeds, or null (not a peer id, or another key type). */
export function publicKeyOfPeerId (peer: string): Uint8Array | null {
  try {
    const id = peerIdFromString(peer)
    return id.type === 'Ed25519' ? id.publicKey.raw : null
  } catch {
    return null
  }
}
