/**
 * The workbench across the directory: a libp2p directory node and a provider process announcing demo-gpt2 through it,
 * all on 127.0.0.1; the Fabric lists the provider from its signed record with live health, and a logit lens routed
 * to it comes back with the provider's verified receipt.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { newKeyFile, writeKeyFile } from '@weft/core'
import { createDirectoryNode, type DirectoryNode } from '@weft/federation'
import { createBackend, createWorkbenchApp, type Backend, type FabricView, type LensView, type RunSummary, type WorkbenchApp } from '../src/index.js'
import { startProviderProcess, type ProviderProcess } from '../../../providers/host/test/process.js'
import { DEMO, tempDb } from '../../../providers/host/test/helpers.js'

let hub: DirectoryNode
let provider: ProviderProcess
let backend: Backend
let workbench: WorkbenchApp

beforeAll(async () => {
  hub = await createDirectoryNode({})
  provider = await startProviderProcess(['--model', DEMO, '--db', tempDb('workbench-directory'), '--policy', 'open', '--directory', hub.multiaddrs[0]!])
  const keyFile = join(mkdtempSync(join(tmpdir(), 'weft-workbench-')), 'me.json')
  writeKeyFile(keyFile, newKeyFile())
  backend = await createBackend({ mode: 'directory', bootstrap: hub.multiaddrs, key: keyFile })
  workbench = createWorkbenchApp(backend)
})
afterAll(async () => { await backend?.close(); await provider?.stop(); await hub?.stop() })

const json = async <T>(path: string, init?: RequestInit): Promise<T> => await (await workbench.app.request(path, init)).json() as T

test('the fabric lists the announced provider; a logit lens is routed to it and its receipt verifies', async () => {
  let fabric = await json<FabricView>('/api/fabric')
  for (let i = 0; i < 100 && fabric.providers.length === 0; i++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    fabric = await json<FabricView>('/api/fabric')
  }
  expect(fabric.mode).toBe('directory')
  expect(fabric.providers).toHaveLength(1)
  const [entry] = fabric.providers
  expect(entry!.id).toBe(provider.providerId)
  expect(entry!.endpoint).toBe(provider.url)
  expect(entry!.status).toBe('ok')
  expect(entry!.models.map(m => m.name)).toEqual(['demo-gpt2'])
  expect(entry!.policies[0]!.name).toBe('open')
  expect(entry!.recordQueueDepth).toBe(0)

  const { id } = await json<{ id: string }>('/api/runs', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'logit-lens', model: 'demo-gpt2', params: { prompt: 'The capital of France is', topK: 1 } }),
  })
  let run = await json<RunSummary>(`/api/runs/${id}`)
  while (run.status === 'queued' || run.status === 'running') {
    await new Promise(resolve => setTimeout(resolve, 50))
    run = await json<RunSummary>(`/api/runs/${id}`)
  }
  expect(run.error).toBeNull()
  expect(run.provider).toBe(provider.providerId)
  expect(run.receipt).toMatchObject({ present: true, verified: true })
  expect((run.view as LensView).top.at(-1)!.at(-1)!.token).toBe(' Paris')
  const receipt = await workbench.app.request(`/api/runs/${id}/receipt.cbor`)
  expect(receipt.status).toBe(200)
  expect(receipt.headers.get('content-type')).toBe('application/cose')
})
