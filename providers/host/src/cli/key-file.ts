/** Ed25519 key files: JSON `{ kid, publicKey, secretKey }` (hex), written owner-only. Used by the CLI and the SDK. */
import { readFileSync, writeFileSync } from 'node:fs'
import { fromHex, generateKeyPair, keyId, publicKeyOf, toHex } from '@weft/core'

export interface KeyFile { kid: string; publicKey: string; secretKey: string; createdAt: string }

export function newKeyFile (): KeyFile {
  const { secretKey, publicKey } = generateKeyPair()
  return { kid: keyId(publicKey), publicKey: toHex(publicKey), secretKey: toHex(secretKey), createdAt: new Date().toISOString() }
}

export function writeKeyFile (path: string, key: KeyFile): void {
  writeFileSync(path, JSON.stringify(key, null, 2) + '\n', { mode: 0o600 })
}

/** Reads and checks a key file (the public key and kid must match the secret key). */
export function readKeyFile (path: string): { kid: string; publicKey: Uint8Array; secretKey: Uint8Array } {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<KeyFile>
  if (typeof parsed.secretKey !== 'string') throw new Error(`${path}: not a weft key file (no secretKey); create one with \`weft keys new --out ${path}\``)
  const secretKey = fromHex(parsed.secretKey)
  const publicKey = publicKeyOf(secretKey)
  const kid = keyId(publicKey)
  if (parsed.kid !== undefined && parsed.kid !== kid) throw new Error(`${path}: kid ${parsed.kid} does not match the secret key (${kid})`)
  return { kid, publicKey, secretKey }
}
