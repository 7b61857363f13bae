/**
 * Ed25519 key files: JSON `{ kid, publicKey, secretKey, createdAt }` (hex), written owner-only (mode 0600).
 * Used by `weft keys new`, `weft provider start --identity/--operator-key` and `Weft.connect({ key })`.
 */
import { existsSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs'
import { WeftError } from '../errors/weft-error.js'
import { fromHex, toHex } from '../cbor/hex.js'
import { generateKeyPair, keyId, publicKeyOf } from '../cose/keys.js'

export interface KeyFile { kid: string; publicKey: string; secretKey: string; createdAt: string }

/** A key ready to sign with. */
export interface LoadedKey { kid: string; publicKey: Uint8Array; secretKey: Uint8Array }

/** Anything a client may pass as its key: a loaded key, `{ secretKey }`, `{ file }`, secret-key bytes, a hex secret or a key-file path. */
export type KeyInput = LoadedKey | { secretKey: Uint8Array | string } | { file: string } | Uint8Array | string

export function newKeyFile (): KeyFile {
  const { secretKey, publicKey } = generateKeyPair()
  return { kid: keyId(publicKey), publicKey: toHex(publicKey), secretKey: toHex(secretKey), createdAt: new Date().toISOString() }
}

/** Writes a key file readable by its owner only (0600, also when the file existed with a wider mode). */
export function writeKeyFile (path: string, key: KeyFile): void {
  writeFileSync(path, JSON.stringify(key, null, 2) + '\n', { mode: 0o600 })
  if (process.platform !== 'win32') chmodSync(path, 0o600)
}

/** The warning for a key file that group or others may read (null when the mode is owner-only, or on Windows). */
export function keyFileModeWarning (path: string): string | null {
  if (process.platform === 'win32') return null
  const mode = statSync(path).mode & 0o777
  if ((mode & 0o077) === 0) return null
  return `warning: key file ${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); run \`chmod 600 ${path}\``
}

let warn: (message: string) => void = message => { process.emitWarning(message, { code: 'WEFT_KEY_FILE_MODE' }) }

/** Where key-file mode warnings go (default: `process.emitWarning`); the CLI prints them on stderr. */
export function onKeyFileWarning (handler: (message: string) => void): void { warn = handler }

const HEX_SECRET = /^(?:[0-9a-fA-F]{64})$/

/** Reads and checks a key file (the public key and kid must match the secret key); warns when others can read it. */
export function loadKey (path: string): LoadedKey {
  let text: string
  try { text = readFileSync(path, 'utf8') } catch (error) {
    throw new WeftError('KEY_FILE_INVALID', `cannot read key file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { path })
  }
  let parsed: Partial<KeyFile>
  try { parsed = JSON.parse(text) as Partial<KeyFile> } catch {
    throw new WeftError('KEY_FILE_INVALID', `${path} is not JSON; a weft key file is written by \`weft keys new --out ${path}\``, { path })
  }
  if (parsed === null || typeof parsed !== 'object' || typeof parsed.secretKey !== 'string' || !HEX_SECRET.test(parsed.secretKey)) {
    throw new WeftError('KEY_FILE_INVALID', `${path}: not a weft key file (no 64-hex-digit secretKey); create one with \`weft keys new --out ${path}\``, { path })
  }
  const warning = keyFileModeWarning(path)
  if (warning !== null) warn(warning)
  const secretKey = fromHex(parsed.secretKey)
  const publicKey = publicKeyOf(secretKey)
  const kid = keyId(publicKey)
  if (parsed.kid !== undefined && parsed.kid !== kid) throw new WeftError('KEY_FILE_INVALID', `${path}: kid ${parsed.kid} does not match the secret key (${kid})`, { path })
  if (parsed.publicKey !== undefined && parsed.publicKey.toLowerCase() !== toHex(publicKey)) throw new WeftError('KEY_FILE_INVALID', `${path}: publicKey does not match the secret key`, { path })
  return { kid, publicKey, secretKey }
}

function fromSecret (secretKey: Uint8Array): LoadedKey {
  if (secretKey.length !== 32) throw new WeftError('KEY_FILE_INVALID', `an Ed25519 secret key is 32 bytes, got ${secretKey.length}`)
  const publicKey = publicKeyOf(secretKey)
  return { kid: keyId(publicKey), publicKey, secretKey }
}

/**
 * Any KeyInput as a loaded key. A string is a hex secret when it is 64 hex digits, else a key-file path
 * (an existing file that is not a key file is an error naming it, never "invalid hex").
 */
export function resolveKey (key: KeyInput): LoadedKey {
  if (key instanceof Uint8Array) return fromSecret(key)
  if (typeof key === 'string') {
    if (HEX_SECRET.test(key) && !existsSync(key)) return fromSecret(fromHex(key))
    if (existsSync(key)) return loadKey(key)
    throw new WeftError('KEY_FILE_INVALID', `key '${key.length > 80 ? key.slice(0, 77) + '…' : key}' is neither a 64-hex-digit secret key nor an existing key file`)
  }
  if (key !== null && typeof key === 'object') {
    if ('file' in key && typeof key.file === 'string') return loadKey(key.file)
    if ('secretKey' in key) {
      const loaded = fromSecret(typeof key.secretKey === 'string' ? fromHexChecked(key.secretKey) : key.secretKey)
      if ('kid' in key && typeof key.kid === 'string' && key.kid !== loaded.kid) throw new WeftError('KEY_FILE_INVALID', `key object: kid ${key.kid} does not match the secret key (${loaded.kid})`)
      return loaded
    }
  }
  throw new WeftError('KEY_FILE_INVALID', 'key must be a key object ({ secretKey } or { file }), secret-key bytes, a hex secret or a key-file path')
}

function fromHexChecked (hex: string): Uint8Array {
  if (!HEX_SECRET.test(hex)) throw new WeftError('KEY_FILE_INVALID', 'secretKey must be 64 hex digits')
  return fromHex(hex)
}
