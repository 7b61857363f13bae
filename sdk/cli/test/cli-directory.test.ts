/** `weft directory start` as a real process: --help, bad flags, then a provider and a client meet through it on loopback. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'
import { generateKeyPair, toHex } from '@weft/core'
import { createDirectoryNode, endorses, verifyEndorsement, type DirectoryNode } from '@weft/federation'
import { readEndorsementFile } from '@weft/federation/cli'
import { newKeyFile, writeKeyFile } from '@weft/host/cli'
import { fromHex, keyId } from '@weft/core'
import { Weft } from '@weft/sdk'
import { startProvider, testSeed, type TestProvider } from '../../test/fixtures/fabric.js'

const WEFT = fileURLToPath(new URL('../bin/weft.mjs', import.meta.url))
const children: ChildProcess[] = []
const cleanup: (() => Promise<void>)[] = []

afterAll(async () => {
  await Promise.allSettled(cleanup.map(f => f()))
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Starts the command and resolves with its multiaddrs once it printed them. */
function startDirectory (args: string[]): Promise<{ child: ChildProcess; peer: string; addresses: string[]; output: () => string }> {
  const child = spawn(process.execPath, [WEFT, 'directory', 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`directory node not ready in 20 s:\n${output}`)) }, 20_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const peer = /weft directory node (\S+)/.exec(output)?.[1]
      const addresses = [...output.matchAll(/listening on (\S+)/g)].map(m => m[1]!)
      if (peer !== undefined && addresses.length > 0) { clearTimeout(timer); resolve({ child, peer, addresses, output: () => output }) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`directory node exited (${code}):\n${output}`)) })
  })
}

describe('weft directory start', () => {
  test('--help prints the usage; bad flags exit 2 naming the problem', () => {
    const help = spawnSync(process.execPath, [WEFT, 'directory', '--help'], { encoding: 'utf8' })
    expect(help.status).toBe(0)
    expect(help.stdout).toContain('usage: weft directory start [--port N]')
    expect(help.stdout).toContain('--bootstrap addr')
    const bad = spawnSync(process.execPath, [WEFT, 'directory', 'start', '--port', 'x'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain("--port must be an integer 0–65535, got 'x'")
  }, 30_000)

  test('a provider announces through the node and a client discovers and traces through it', async () => {
    const directory = await startDirectory(['--port', '0'])
    expect(directory.addresses[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    const provider: TestProvider = await startProvider({ seed: testSeed(40), bootstrap: directory.addresses })
    cleanup.push(() => provider.stop())
    // the node logs the record it verified and keeps
    await expect.poll(() => directory.output(), { timeout: 10_000 }).toContain(`added ${provider.provider} ${provider.url} models=demo-gpt2`)

    const client: DirectoryNode = await createDirectoryNode({ bootstrap: directory.addresses })
    cleanup.push(() => client.stop())
    expect((await client.find('demo-gpt2', { timeoutMs: 10_000 })).map(r => r.record.provider)).toEqual([provider.provider])
    const weft = await Weft.discover({ directory: client, key: toHex(generateKeyPair().secretKey) })
    try {
      const model = await weft.model<any>('demo-gpt2')
      const out = await model.run(model.record('Hello', (m: any) => { m.transformer.h[1].output.save('h') }).program)
      expect(out.provider).toBe(provider.provider)
    } finally {
      await weft.close()
    }
    // a clean stop (SIGTERM) exits 0
    directory.child.kill('SIGTERM')
    const code = await new Promise(resolve => directory.child.once('exit', resolve))
    expect(code).toBe(0)
  }, 60_000)

  test('weft endorse signs an endorsement file that verifies under the endorser key', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'weft-endorse-'))
    const keyFile = path.join(dir, 'endorser.json')
    const out = path.join(dir, 'provider.endorsement.json')
    writeKeyFile(keyFile, newKeyFile())
    const provider = keyId(generateKeyPair().publicKey)
    const run = spawnSync(process.execPath, [WEFT, 'endorse', '--key', keyFile, '--provider', provider, '--model', 'demo-gpt2@sha256:abc', '--model', 'tiny-llama', '--days', '7', '--out', out], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
    const key = JSON.parse(readFileSync(keyFile, 'utf8')) as { publicKey: string }
    const endorsement = verifyEndorsement(readEndorsementFile(out), { trusted: [fromHex(key.publicKey)] })
    expect(endorsement.models).toEqual([{ name: 'demo-gpt2', revision: 'sha256:abc' }, { name: 'tiny-llama' }])
    expect(endorsement.expiresAt - endorsement.issuedAt).toBe(7 * 86400)
    expect(endorses(endorsement, provider, 'tiny-llama', 'sha256:any')).toBe(true)
    const bad = spawnSync(process.execPath, [WEFT, 'endorse', '--key', keyFile, '--provider', 'nobody', '--model', 'x'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('`provider` must be a key id')
  }, 30_000)
})
