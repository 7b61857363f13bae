// Provider selection against real HTTP servers on 127.0.0.1 that answer GET /v1/health like a provider does:
// ranking by load and latency, impostor endpoints, timeouts, exponential backoff bans on a controllable clock.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, test } from 'vitest'
import { buildProviderRecord, signProviderRecord, verifyProviderRecord, type VerifiedRecord } from '../src/provider-record.js'
import { identityFromSeed } from '../src/identity.js'
import { ProviderSelector } from '../src/selection.js'
import { fakeClock, modelInput, seed } from './fabric.js'

interface HealthServer { url: string; close: () => Promise<void> }
let servers: HealthServer[] = []
afterEach(async () => { await Promise.all(servers.map(s => s.close())); servers = [] })

/** A server whose /v1/health answers as `provider` with `queued` jobs, after `delayMs`. */
async function healthServer (provider: string, options: { queued?: number; delayMs?: number; status?: number } = {}): Promise<HealthServer> {
  const server = http.createServer((request, response) => {
    const answer = (): void => {
      if (request.url !== '/v1/health') { response.writeHead(404).end(); return }
      response.writeHead(options.status ?? 200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ status: 'ok', provider, uptimeMs: 1, queue: { queued: options.queued ?? 0, running: 0 }, models: 1 }))
    }
    if (options.delayMs === undefined) answer()
    else setTimeout(answer, options.delayMs)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const entry = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
  servers.push(entry)
  return entry
}

async function recordFor (n: number, endpoint: string, queueDepth = 0, endpoints?: string[]): Promise<VerifiedRecord> {
  const identity = await identityFromSeed(seed(n))
  const record = buildProviderRecord(identity, { ...modelInput(1), endpoint, endpoints, capacity: { queueDepth, maxBatch: 4 } }, { now: Math.floor(Date.now() / 1000), lifetimeSeconds: 120, seq: 1 })
  return verifyProviderRecord(signProviderRecord(record, identity.secretKey))
}

const providerOf = async (n: number): Promise<string> => (await identityFromSeed(seed(n))).provider

describe('ProviderSelector', () => {
  test('live providers only, idle before busy', async () => {
    const idle = await recordFor(1, (await healthServer(await providerOf(1), { queued: 0 })).url)
    const busy = await recordFor(2, (await healthServer(await providerOf(2), { queued: 40 })).url)
    const down = await recordFor(3, 'http://127.0.0.1:1') // nothing listens on port 1
    const selector = new ProviderSelector()
    const ranked = await selector.rank([busy, down, idle])
    expect(ranked.map(c => c.record.record.provider)).toEqual([await providerOf(1), await providerOf(2)])
    expect(ranked[1].load).toBe(10)
    expect(selector.isBanned(await providerOf(3))).toBe(true)
  })

  test('a record pointing at another provider\'s server is refused and banned', async () => {
    const victim = await healthServer(await providerOf(4))
    const impostor = await recordFor(5, victim.url) // valid self-signed record, someone else's endpoint
    const selector = new ProviderSelector()
    expect(await selector.rank([impostor])).toEqual([])
    expect(selector.banState(await providerOf(5))?.lastError).toMatch(/answers as ed25519:/)
  })

  test('a provider of several nodes stays live while one node answers; its dead and impostor endpoints are left out', async () => {
    const id = await providerOf(10)
    const other = await healthServer(await providerOf(11)) // another provider's server listed by mistake (or malice)
    const second = await healthServer(id, { queued: 3 })
    const third = await healthServer(id, { queued: 3 })
    // the preferred node (endpoint) is dead: nothing listens on port 1
    const entry = await recordFor(10, 'http://127.0.0.1:1', 0, [other.url, second.url, third.url])
    expect(entry.record.endpoints).toEqual(['http://127.0.0.1:1', other.url, second.url, third.url])
    const selector = new ProviderSelector()
    const [candidate] = await selector.rank([entry])
    expect(candidate?.endpoints).toEqual([second.url, third.url])
    expect(candidate?.queued).toBe(3)
    expect(selector.isBanned(id)).toBe(false)
    await second.close()
    await third.close()
    expect(await selector.rank([entry])).toEqual([])
    expect(selector.isBanned(id)).toBe(true)
  })

  test('a provider slower than the probe timeout is skipped', async () => {
    const slow = await recordFor(6, (await healthServer(await providerOf(6), { delayMs: 400 })).url)
    const fast = await recordFor(7, (await healthServer(await providerOf(7))).url)
    const ranked = await new ProviderSelector({ probeTimeoutMs: 150 }).rank([slow, fast])
    expect(ranked.map(c => c.record.record.provider)).toEqual([await providerOf(7)])
  })

  test('unhealthy answers count as failures', async () => {
    const broken = await recordFor(8, (await healthServer(await providerOf(8), { status: 503 })).url)
    const selector = new ProviderSelector()
    expect(await selector.rank([broken])).toEqual([])
    expect(selector.isBanned(await providerOf(8))).toBe(true)
  })

  test('bans double per consecutive failure up to the cap, lift with time, reset on success', async () => {
    const clock = fakeClock()
    const selector = new ProviderSelector({ clock: clock.now, banBaseMs: 1000, banMaxMs: 5000 })
    const id = await providerOf(9)
    const durations = [1, 2, 3, 4, 5].map(() => selector.reportFailure(id, new Error('down')).bannedUntil - clock.now())
    expect(durations).toEqual([1000, 2000, 4000, 5000, 5000])
    expect(selector.isBanned(id)).toBe(true)
    clock.advance(5000)
    expect(selector.isBanned(id)).toBe(false)
    selector.reportSuccess(id)
    expect(selector.reportFailure(id).bannedUntil - clock.now()).toBe(1000)
    const live = await recordFor(9, (await healthServer(id)).url)
    expect(await selector.rank([live])).toEqual([]) // banned providers are not even probed
    clock.advance(1000)
    expect(await selector.rank([live])).toHaveLength(1)
  })
})
