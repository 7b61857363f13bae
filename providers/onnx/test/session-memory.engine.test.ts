/**
 * The compiled-session cache is bounded by memory (issue #9 item 7): a child process compiles many distinct Program
 * structures on demo-gpt2 (8 rows × 128 tokens each, no count bound) and its RSS plateaus under the byte budget.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, test } from 'vitest'
import { SessionCache } from '../src/runtime/session-cache.js'

const CHILD = fileURLToPath(new URL('./fixtures/session-rss-child.ts', import.meta.url))
const MB = 2 ** 20

interface ChildReport { rss: number[]; sessions: number; cachedBytes: number; evictions: number }

async function child (budget: number, rounds: number, perRound: number): Promise<ChildReport> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--conditions=@weft/source', '--import', 'tsx', CHILD, String(budget), String(rounds), String(perRound)], { timeout: 120_000 })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildReport
}

describe('session cache memory budget', () => {
  test('RSS plateaus: 36 distinct structures under a 100 MiB budget stay within 300 MiB of round 2 (unbounded: ≈ 200 MiB per round)', async () => {
    const report = await child(100 * MB, 6, 6)
    const [first, second, ...later] = report.rss as [number, number, ...number[]]
    // unbounded (today's count-only cache), each round adds 6 sessions of ≈ 34 MB (weights they load + arena): measured
    // +1,025 MB from round 1 to 6, +815 MB from round 2; bounded, +146 MB (the arena of cached sessions, glibc's retained pages)
    expect(report.cachedBytes).toBeLessThanOrEqual(100 * MB)
    expect(report.evictions).toBeGreaterThanOrEqual(24)
    expect(Math.max(...later) - second, JSON.stringify(report.rss.map(r => Math.round(r / MB)))).toBeLessThan(300 * MB)
    expect(first).toBeGreaterThan(0)
  }, 150_000)
})

describe('SessionCache byte accounting', () => {
  const item = (bytes: number, released: string[], name: string) => ({ bytes, release: () => { released.push(name) } })

  test('evicts least recently used entries beyond maxBytes, keeps the newest even when it alone exceeds it, releases after use', async () => {
    const released: string[] = []
    const cache = new SessionCache<ReturnType<typeof item>>({ capacity: 100, maxBytes: 100, measure: false })
    await cache.get('a', async () => item(40, released, 'a'))
    await cache.get('b', async () => item(40, released, 'b'))
    expect(cache.bytes).toBe(80)
    await cache.get('a', async () => item(0, released, 'x')) // a is now most recent
    await cache.use('c', async () => item(40, released, 'c'), async () => {
      expect(released).toEqual([]) // charged when its first run ends
    })
    expect(released).toEqual(['b'])
    expect([cache.has('a'), cache.has('b'), cache.has('c'), cache.bytes]).toEqual([true, false, true, 80])
    let during: string[] = []
    await cache.use('d', async () => item(500, released, 'd'), async () => { during = [...released] })
    expect(during).toEqual(['b'])
    expect(released).toEqual(['b', 'a', 'c'])
    expect([cache.size, cache.bytes, cache.evictions]).toEqual([1, 500, 3])
    expect(() => new SessionCache({ maxBytes: 0 })).toThrow(RangeError)
  })
})
