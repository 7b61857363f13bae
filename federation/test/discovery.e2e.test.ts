// End to end on 127.0.0.1: two real provider processes (host + onnx + directory node, one seed each) announce
// demo-gpt2; the SDK discovers them, traces, loses its provider (SIGKILL mid-job) and fails over, re-signed.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { generateKeyPair, toHex } from '@weft/core'
import { Weft, type TraceOptions } from '@weft/sdk'
import type { RoutingExecutor, RouteEvent } from '../../sdk/src/routing/index.js'
import { createDirectoryNode, type DirectoryNode } from '../src/index.js'
import { seed, waitForChange } from './fabric.js'

const SCRIPT = fileURLToPath(new URL('./fixtures/provider-node.ts', import.meta.url))

interface ProviderChild { child: ChildProcess; url: string; provider: string; peer: string }

async function startProvider (n: number, bootstrap: string[]): Promise<ProviderChild> {
  const db = path.join(mkdtempSync(path.join(tmpdir(), 'weft-fed-')), 'provider.db')
  const child = spawn(process.execPath, ['--conditions=@weft/source', '--import', 'tsx', SCRIPT, toHex(seed(n)), db, ...bootstrap], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`provider ${n} not ready in 60 s:\n${output}`)) }, 60_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const line = output.split('\n').find(l => l.startsWith('{'))
      if (line !== undefined) { clearTimeout(timer); resolve({ child, ...JSON.parse(line) as Omit<ProviderChild, 'child'> }) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`provider ${n} exited (${code}):\n${output}`)) })
  })
}

function exited (child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise(resolve => child.once('exit', () => resolve()))
}

let hub: DirectoryNode
let providers: ProviderChild[] = []

beforeAll(async () => {
  hub = await createDirectoryNode({ seed: seed(200) })
  providers = await Promise.all([startProvider(201, hub.multiaddrs), startProvider(202, hub.multiaddrs)])
}, 90_000)

afterAll(async () => {
  for (const { child } of providers) { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  await Promise.all(providers.map(p => exited(p.child)))
  await hub?.stop()
})

describe('discovery and failover with real providers', () => {
  test('discover demo-gpt2, trace, kill the chosen provider mid-job, fail over to the other with the same numbers', async () => {
    expect((await hub.find('demo-gpt2', { timeoutMs: 10_000, min: 2 })).map(r => r.record.provider).sort()).toEqual(providers.map(p => p.provider).sort())
    const events: RouteEvent[] = []
    const researcher = generateKeyPair()
    const weft = await Weft.discover({ bootstrap: hub.multiaddrs, key: toHex(researcher.secretKey), onRoute: event => events.push(event), findTimeoutMs: 10_000 })
    try {
      const routing = weft.executor as RoutingExecutor
      const model = await weft.model<any>('demo-gpt2')
      const trace = (options?: TraceOptions) => model.trace('The capital of France is', (m: any) => ({ h: m.transformer.h[1].output.save() }), options)
      const first = await trace()
      expect(first.h.shape[0]).toBe(1)
      const chosen = (await routing.current('demo-gpt2'))!.record
      const victim = providers.find(p => p.provider === chosen.provider)!
      const survivor = providers.find(p => p !== victim)!
      expect(events.map(e => [e.type, e.provider])).toEqual([['select', victim.provider]])

      // mid-job: the provider accepted the job (202) and dies before the result is fetched
      const second = await trace({ onProgress: event => { if (event.stage === 'received' && !victim.child.killed) victim.child.kill('SIGKILL') } })
      await exited(victim.child)
      expect(events.map(e => [e.type, e.provider])).toEqual([['select', victim.provider], ['failover', victim.provider], ['select', survivor.provider]])
      expect((await routing.current('demo-gpt2'))!.record.provider).toBe(survivor.provider)
      expect(routing.selector.isBanned(victim.provider)).toBe(true)
      expect(Array.from(second.h.data as Float32Array)).toEqual(Array.from(first.h.data as Float32Array))

      // the next run goes straight to the survivor; the dead provider's record is still listed until it expires
      await trace()
      expect(events).toHaveLength(3)
      expect((await hub.find('demo-gpt2')).map(r => r.record.provider)).toContain(victim.provider)
    } finally {
      await weft.close()
    }
  })

  test('a provider stopped cleanly withdraws its record', async () => {
    const survivor = providers.find(p => p.child.exitCode === null && p.child.signalCode === null)!
    const withdrawn = waitForChange(hub, change => change.type === 'withdrawn' && change.provider === survivor.provider, 10_000)
    survivor.child.kill('SIGTERM')
    await withdrawn
    await exited(survivor.child)
    expect((await hub.find('demo-gpt2')).map(r => r.record.provider)).not.toContain(survivor.provider)
  })
})
