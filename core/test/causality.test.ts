// siteTimes (one pass over the manifest) against a straightforward O(n²) reference.
import { describe, expect, test } from 'vitest'
import { siteTimes, type Manifest } from '@weft/core'
import { demoGpt2Manifest } from '@weft/core/testing'

function reference (manifest: Manifest): Map<string, { start: number; end: number }> {
  const times = new Map<string, { start: number; end: number }>()
  const modules = manifest.modules
  modules.forEach((entry, i) => {
    let first = i
    let last = i
    const prefix = entry.path + '.'
    modules.forEach((other, j) => {
      if (other.path.startsWith(prefix)) { first = Math.min(first, j); last = Math.max(last, j) }
    })
    times.set(entry.path, { start: 2 * first, end: 2 * last + 1 })
  })
  return times
}

const entries = (m: Map<string, unknown>): [string, unknown][] => [...m.entries()]

describe('siteTimes', () => {
  test('matches the O(n²) reference on the demo manifest', () => {
    const manifest = demoGpt2Manifest()
    expect(entries(siteTimes(manifest))).toEqual(entries(reference(manifest)))
  })

  test('matches the reference on a manifest in parent-first order', () => {
    const base = demoGpt2Manifest()
    const depth = (p: string): number => p.split('.').length
    // stable sort by depth puts every parent before its children
    const modules = [...base.modules].sort((a, b) => depth(a.path) - depth(b.path))
    const manifest = { ...base, modules }
    const times = siteTimes(manifest)
    expect(entries(times)).toEqual(entries(reference(manifest)))
    expect(times).not.toEqual(siteTimes(base))
  })

  test('matches the reference with duplicate paths, and caches them', () => {
    const base = demoGpt2Manifest()
    const modules = [...base.modules, base.modules[1]!, base.modules[0]!]
    const manifest = { ...base, modules }
    const times = siteTimes(manifest)
    expect(entries(times)).toEqual(entries(reference(manifest)))
    expect(siteTimes(manifest)).toBe(times)
  })
})
