/** Keys: `Weft.connect({ key })` takes a key object, a hex secret or a key-file path; key files are owner-only. */
import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, keyFileModeWarning, newKeyFile, onKeyFileWarning, resolveKey, toHex, writeKeyFile } from '@weft/core'
import { createHost, openPolicy, type Host } from '@weft/host'
import { Weft, loadKey } from '../src/index.js'
import { DEMO, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'weft-keys-'))
const file = join(dir, 'me.json')
const key = newKeyFile()
let host: Host
let url: string
const warnings: string[] = []

beforeAll(async () => {
  writeKeyFile(file, key)
  onKeyFileWarning(message => warnings.push(message))
  host = await createHost({
    dbPath: tempDb('sdk-keys'), backends: { onnx: await onnxBackendInline() }, models: [{ name: 'demo-gpt2', path: DEMO }],
    policies: [openPolicy()], selfRegistration: true, limits: { batchWindowMs: 0 },
  })
  url = (await host.listen({ port: 0 })).url
})
afterAll(async () => { await host.close() })

describe('key files', () => {
  test('are written owner-only (0600), also over an existing world-readable file', () => {
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const other = join(dir, 'wide.json')
    writeFileSync(other, '{}', { mode: 0o644 })
    writeKeyFile(other, newKeyFile())
    expect(statSync(other).mode & 0o777).toBe(0o600)
  })

  test('loadKey reads one back; a file others can read loads with a warning naming the mode', () => {
    expect(loadKey(file)).toMatchObject({ kid: key.kid, publicKey: Uint8Array.from(Buffer.from(key.publicKey, 'hex')) })
    expect(warnings).toEqual([])
    const shared = join(dir, 'shared.json')
    writeKeyFile(shared, key)
    chmodSync(shared, 0o644)
    expect(keyFileModeWarning(shared)).toMatch(/readable by others \(mode 0644\).*chmod 600/)
    expect(loadKey(shared).kid).toBe(key.kid)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(shared)
  })

  test.each([
    ['a missing file', join(dir, 'absent.json'), /neither a 64-hex-digit secret key nor an existing key file/],
    ['a file that is not JSON', 'notjson', /is not JSON/],
    ['JSON without a secret key', 'nosecret', /not a weft key file/],
    ['a kid that does not match', 'badkid', /kid .* does not match the secret key/],
    ['a short hex string', 'abcd', /neither a 64-hex-digit secret key nor an existing key file/],
  ])('%s is KEY_FILE_INVALID naming the problem', (_what, input, message) => {
    const contents: Record<string, string> = { notjson: 'secret', nosecret: '{"kid":"x"}', badkid: JSON.stringify({ ...key, kid: 'wrong' }) }
    let path = input
    if (input in contents) { path = join(dir, `${input}.json`); writeFileSync(path, contents[input]!, { mode: 0o600 }) }
    let error: unknown
    try { resolveKey(path) } catch (e) { error = e }
    expect(WeftError.is(error, 'KEY_FILE_INVALID')).toBe(true)
    expect((error as Error).message).toMatch(message)
  })
})

describe('Weft.connect({ key })', () => {
  test.each([
    ['a key-file path', () => file],
    ['a hex secret', () => key.secretKey],
    ['a loaded key object', () => loadKey(file)],
    ['{ file }', () => ({ file })],
    ['{ secretKey } bytes', () => ({ secretKey: Uint8Array.from(Buffer.from(key.secretKey, 'hex')) })],
  ])('accepts %s and signs as that key', async (_what, make) => {
    const weft = await Weft.connect({ provider: url, key: make(), providerId: host.providerId })
    try {
      expect((weft.executor as unknown as { kid: string }).kid).toBe(key.kid)
      const model = await weft.model<any>('demo-gpt2')
      const out = await model.trace('Hello', (m: any) => ({ h: m.transformer.h[0].output.save() }))
      expect(out.h.shape[2]).toBe(256)
    } finally { await weft.close() }
  })

  test('a bad key fails before any request with KEY_FILE_INVALID, not "invalid hex string"', async () => {
    await expect(Weft.connect({ provider: url, key: join(dir, 'me.jsn') })).rejects.toMatchObject({ code: 'KEY_FILE_INVALID' })
    expect(toHex(loadKey(file).secretKey)).toBe(key.secretKey)
  })
})
