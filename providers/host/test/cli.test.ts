/** `weft keys new` writes a usable key file; the provider command refuses bad usage. */
import { expect, test } from 'vitest'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { keyId, publicKeyOf, fromHex } from '@weft/core'
import { keysCommand, providerCommand, readKeyFile } from '../src/cli/index.js'
import { tempDb } from './helpers.js'

test('keys new --out writes an owner-only Ed25519 key file whose kid matches its key', async () => {
  const file = path.join(path.dirname(tempDb()), 'me.json')
  expect(await keysCommand.run(['new', '--out', file])).toBe(0)
  const json = JSON.parse(readFileSync(file, 'utf8')) as { kid: string; publicKey: string; secretKey: string }
  expect(json.kid).toBe(keyId(publicKeyOf(fromHex(json.secretKey))))
  expect(readKeyFile(file).kid).toBe(json.kid)
  expect(statSync(file).mode & 0o077).toBe(0)
})

test('usage errors are UsageErrors naming the problem (the weft dispatcher prints them and exits 2)', async () => {
  await expect(keysCommand.run(['old'])).rejects.toThrow(/unknown subcommand 'old'/)
  await expect(providerCommand.run(['start'])).rejects.toThrow(/missing --model/)
})
