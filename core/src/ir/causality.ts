/**
 * The causality rule: a `write` to a site may only take values computed no later than that site in the forward pass.
 * Time of a site: a module's input happens before its first descendant, its output after its last descendant.
 */
import type { Manifest } from '../manifest/manifest.js'
import type { Program } from './program.js'
import type { ValidationIssue } from './issues.js'

interface SiteTime { start: number; end: number }

/**
 * Start/end times per path, from manifest order; works whether parents are listed before or after children.
 * One pass: every entry widens the first/last index of each of its ancestors (each prefix ending before a '.'); a
 * path's time spans its own (last) index and those of its descendants. Cached per modules array.
 */
const cache = new WeakMap<Manifest['modules'], Map<string, SiteTime>>()

export function siteTimes (manifest: Manifest): Map<string, SiteTime> {
  const modules = manifest.modules
  const cached = cache.get(modules)
  if (cached !== undefined) return cached
  const span = new Map<string, { first: number; last: number }>()
  modules.forEach((entry, j) => {
    const path = entry.path
    for (let k = path.indexOf('.'); k >= 0; k = path.indexOf('.', k + 1)) {
      const ancestor = path.slice(0, k)
      const s = span.get(ancestor)
      if (s === undefined) span.set(ancestor, { first: j, last: j })
      else { if (j < s.first) s.first = j; if (j > s.last) s.last = j }
    }
  })
  const times = new Map<string, SiteTime>()
  modules.forEach((entry, i) => {
    const s = span.get(entry.path)
    const first = s === undefined ? i : Math.min(i, s.first)
    const last = s === undefined ? i : Math.max(i, s.last)
    times.set(entry.path, { start: 2 * first, end: 2 * last + 1 })
  })
  cache.set(modules, times)
  return times
}

interface Origin { time: number; node: number }

/**
 * `counts` (generate mode) picks the reads and writes of one step: the others are values of other steps, which are
 * either already computed (earlier steps: no time) or not usable at all (validated elsewhere).
 */
export function checkCausality (program: Program, manifest: Manifest, counts?: (attrs: Record<string, unknown>) => boolean): ValidationIssue[] {
  const times = siteTimes(manifest)
  const issues: ValidationIssue[] = []
  const origins: (Origin | null)[] = []
  const timeOf = (attrs: Record<string, unknown>): number | undefined => {
    if (typeof attrs.site !== 'string') return undefined
    const t = times.get(attrs.site)
    if (t === undefined) return undefined
    return attrs.port === 'input' ? t.start : t.end
  }
  program.nodes.forEach(([op, attrs, inputs], i) => {
    let latest: Origin | null = null
    for (const n of inputs) {
      const o = n >= 0 && n < i ? origins[n] : null
      if (o != null && (latest === null || o.time > latest.time)) latest = o
    }
    if ((op === 'read' || op === 'write') && counts !== undefined && !counts(attrs)) { origins.push(null); return }
    // a gradient is known only after the whole forward (and backward) pass
    if (op === 'grad') { origins.push({ time: Number.POSITIVE_INFINITY, node: i }); return }
    if (op === 'read' || op === 'write') {
      const own = timeOf(attrs)
      if (own === undefined) { origins.push(latest); return }
      if (op === 'write' && latest !== null && latest.time > own) {
        const source = program.nodes[latest.node]!
        const what = source[0] === 'grad' ? 'a gradient' : `${source[0]} of '${source[1].site as string}' ${source[1].port === 'input' ? 'input' : 'output'}`
        issues.push({
          node: i,
          op,
          message: `write: causality violation: the value written to '${attrs.site as string}' ${attrs.port === 'input' ? 'input' : 'output'} depends on node ${latest.node} ` +
            `(${what}), which is computed later in the forward pass`,
        })
      }
      origins.push(latest === null || own >= latest.time ? { time: own, node: i } : latest)
      return
    }
    origins.push(latest)
  })
  return issues
}
