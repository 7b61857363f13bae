/** Test helpers: a host over a temp-file SQLite db with the real onnx backend, keys, signed programs. */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequestEnvelope, generateKeyPair, keyId, toHex, type KeyPair, type Program } from '@weft/core'
import { createHost, keyHeaders, operatorHeaders, type Host, type HostInit } from '../src/index.js'

export const REPO = fileURLToPath(new URL('../../../', import.meta.url))
export const DEMO = path.join(REPO, 'models/demo-gpt2')
export const ONNX_BACKEND_MODULE = new URL('../../onnx/src/backend/onnx-backend.ts', import.meta.url).href

export async function onnxBackendInline (): Promise<HostInit['backends'][string]> {
  const module = await import(ONNX_BACKEND_MODULE) as { onnxBackend: () => HostInit['backends'][string] }
  return module.onnxBackend()
}

export function tempDb (name = 'host'): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'weft-host-')), `${name}.db`)
}

export interface TestHost { host: Host; operator: KeyPair; user: KeyPair & { kid: string } }

export async function startTestHost (init: Partial<HostInit> = {}): Promise<TestHost> {
  const operator = generateKeyPair()
  const host = await createHost({
    dbPath: tempDb(),
    backends: { onnx: await onnxBackendInline() },
    models: [{ name: 'demo-gpt2', path: DEMO }],
    operatorKeys: [operator.publicKey],
    ...init,
  })
  const user = newUser()
  await registerKey(host, operator, user.publicKey)
  return { host, operator, user }
}

export function newUser (): KeyPair & { kid: string } {
  const pair = generateKeyPair()
  return { ...pair, kid: keyId(pair.publicKey) }
}

export async function operatorRequest (host: Host, operator: KeyPair, method: string, url: string, body?: unknown): Promise<Response> {
  const bytes = body === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(body))
  const headers = { 'content-type': 'application/json', ...operatorHeaders({ secretKey: operator.secretKey, providerId: host.providerId, method, path: new URL(url, 'http://x').pathname, body: bytes }) }
  return await host.app.request(url, { method, headers, ...(body === undefined ? {} : { body: bytes }) })
}

export async function registerKey (host: Host, operator: KeyPair, publicKey: Uint8Array, role: 'researcher' | 'operator' = 'researcher'): Promise<string> {
  const response = await operatorRequest(host, operator, 'POST', '/v1/keys', { publicKey: toHex(publicKey), role })
  if (response.status !== 201) throw new Error(`key registration failed: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { kid: string }).kid
}

/** A one-save program: the output of block `layer` for the given ids. */
export function blockProgram (ids: number[] = [464, 3139, 286, 4881, 318].map(i => i % 4096), layer = 2, extra: Program['nodes'] = []): Program {
  return {
    version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids }],
    nodes: [['read', { site: `transformer.h.${layer}`, port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]], ...extra],
  }
}

export function sign (host: Host, user: KeyPair & { kid: string }, program: Program, overrides: { audience?: string; iat?: number; ttlSeconds?: number; nonce?: string } = {}): Uint8Array {
  return createRequestEnvelope({ program, audience: overrides.audience ?? host.providerId, secretKey: user.secretKey, kid: user.kid, iat: overrides.iat, ttlSeconds: overrides.ttlSeconds, nonce: overrides.nonce })
}

export async function submit (host: Host, envelope: Uint8Array, wait = 0): Promise<Response> {
  return await host.app.request('/v1/jobs', {
    method: 'POST', body: envelope as Uint8Array<ArrayBuffer>,
    headers: { 'content-type': 'application/cose', ...(wait > 0 ? { prefer: `wait=${wait}` } : {}) },
  })
}

/** A request signed by a researcher key about its own resources (`Weft-Key`), e.g. its kept adapters. */
export async function keyRequest (host: Host, user: KeyPair, method: string, url: string): Promise<Response> {
  const headers = keyHeaders({ secretKey: user.secretKey, providerId: host.providerId, method, path: new URL(url, 'http://x').pathname })
  return await host.app.request(url, { method, headers })
}
