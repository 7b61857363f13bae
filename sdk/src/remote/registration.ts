/** Proof of key possession for self-registration: the key signs `weft-register-v1\n<provider id>\n<public key hex>`. */
import { publicKeyOf, signBytes, toHex } from '@weft/core'

export function registrationProof (providerId: string, secretKey: Uint8Array): { publicKey: string; proof: string } {
  const publicKey = toHex(publicKeyOf(secretKey))
  const message = new TextEncoder().encode(`weft-register-v1\n${providerId}\n${publicKey}`)
  return { publicKey, proof: toHex(signBytes(message, secretKey)) }
}
