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
  // a session-cache memory budget that is not a positive size is refused before anything starts
  await expect(providerCommand.run(['start', '--model', 'models/demo-gpt2', '--session-cache-bytes', 'lots'])).rejects.toThrow(/--session-cache-bytes/)
  await expect(providerCommand.run(['start', '--model', 'models/demo-gpt2', '--session-cache-bytes', '0'])).rejects.toThrow(/--session-cache-bytes/)
})

test('provider start takes the result, text and envelope-lifetime limits as flags and publishes them in /v1/policy', async () => {
  const { startProviderProcess } = await import('./process.js')
  const { DEMO } = await import('./helpers.js')
  const provider = await startProviderProcess(['--model', DEMO, '--db', tempDb('cli-limits'), '--max-result-bytes', '8MiB',
    '--max-result-bytes-in-flight', '32MiB', '--max-saves', '12', '--max-text-bytes', '64KiB', '--max-envelope-lifetime', '600'])
  try {
    const policy = await (await fetch(`${provider.url}/v1/policy`)).json() as { limits: Record<string, number> }
    expect(policy.limits).toMatchObject({ maxResultBytesPerJob: 8 * 2 ** 20, maxResultBytesInFlightPerKey: 32 * 2 ** 20, maxSaves: 12, maxTextBytes: 64 * 1024, maxEnvelopeLifetimeSeconds: 600 })
  } finally { await provider.stop() }
}, 60_000)
