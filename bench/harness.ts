/** Shared benchmark helpers: a suite yields tables; timings are medians over warm repetitions, or paired and interleaved. */
import { existsSync, mkdirSync } from 'node:fs'
import { loadavg } from 'node:os'
import path from 'node:path'
import { writePresetCheckpoint } from '../providers/onnx/scripts/presets.js'

export interface BenchTable { title: string; columns: string[]; rows: (string | number)[][]; note?: string }
export interface BenchSuite { name: string; run: () => Promise<BenchTable[]> }

/** Median and p99 wall time (ms) of `fn` after `warmup` untimed calls. */
export async function timeIt (fn: () => Promise<unknown> | unknown, { warmup = 3, reps = 20 } = {}): Promise<{ p50: number; p99: number; mean: number }> {
  for (let i = 0; i < warmup; i++) await fn()
  const samples: number[] = []
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    await fn()
    samples.push(performance.now() - t0)
  }
  samples.sort((a, b) => a - b)
  const q = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!
  return { p50: q(0.5), p99: q(0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length }
}

export const fmt = (ms: number): string => ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
const ratio = (a: number, b: number): string => (a / b).toFixed(3) + '×'

export interface PairedStats {
  /** pairs measured */
  n: number
  aP50: number
  bP50: number
  /** median of the per-pair ratios b/a, and its ~95% confidence interval (order statistics) */
  ratio: number
  lo: number
  hi: number
}

export interface PairedOptions {
  warmup?: number
  minPairs?: number
  maxPairs?: number
  /** stop once this much wall time is spent (after minPairs) */
  budgetMs?: number
  /** stop once the CI half-width of the paired ratio is within this fraction of it */
  tolerance?: number
}

/**
 * Times `a` and `b` in alternating pairs (AB, BA, AB, …, so neither always runs second) until the median of the
 * paired ratios b/a has a tight CI, the time budget is spent, or `maxPairs` is reached. Paired ratios cancel the
 * load of other processes that hits both runs of a pair alike; p50s are reported too.
 */
export async function paired (a: () => Promise<unknown>, b: () => Promise<unknown>, options: PairedOptions = {}): Promise<PairedStats> {
  const { warmup = 3, minPairs = 10, maxPairs = 500, budgetMs = 10_000, tolerance = 0.01 } = options
  for (let i = 0; i < warmup; i++) { await a(); await b() }
  const as: number[] = []
  const bs: number[] = []
  const started = performance.now()
  const time = async (fn: () => Promise<unknown>): Promise<number> => { const t = performance.now(); await fn(); return performance.now() - t }
  for (let i = 0; i < maxPairs; i++) {
    if (i % 2 === 0) { as.push(await time(a)); bs.push(await time(b)) } else { bs.push(await time(b)); as.push(await time(a)) }
    if (as.length < minPairs || as.length % 2 !== 0) continue
    const stats = summarise(as, bs)
    if ((stats.hi - stats.lo) / 2 <= tolerance * stats.ratio) break
    if (performance.now() - started > budgetMs) break
  }
  return summarise(as, bs)
}

function summarise (as: number[], bs: number[]): PairedStats {
  const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y)
  const median = (xs: number[]): number => { const s = sorted(xs); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }
  const ratios = sorted(as.map((x, i) => bs[i]! / x))
  const n = ratios.length
  const half = 0.98 * Math.sqrt(n)
  return {
    n, aP50: median(as), bP50: median(bs), ratio: median(ratios),
    lo: ratios[Math.max(0, Math.floor(n / 2 - half))]!, hi: ratios[Math.min(n - 1, Math.ceil(n / 2 + half))]!,
  }
}

/** `1.034× [1.02–1.05]` */
export const ratioCI = (s: PairedStats): string => `${s.ratio.toFixed(3)}× [${s.lo.toFixed(2)}–${s.hi.toFixed(2)}]`

/** The repository root. */
export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')

/** The GPT-2-small-sized preset checkpoint (seed 0) under .weft/bench, written on first use. */
export function gpt2Small (): string {
  const dir = path.join(ROOT, '.weft', 'bench', 'gpt2-small')
  if (!existsSync(path.join(dir, 'config.json'))) { mkdirSync(dir, { recursive: true }); writePresetCheckpoint(dir, 'gpt2-small', 0) }
  return dir
}

/** `seq` deterministic token ids in [10, 4010), varied by `seed`. */
export const benchIds = (seq: number, seed = 1): number[] => Array.from({ length: seq }, (_, i) => (i * 7919 + seed * 104729) % 4000 + 10)

/** Table note on machine load: `load` (the 1-minute load average at the start) and the load average now. */
export const loadNote = (load: number): string =>
  `load average ${load.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end (2 cores: above ~1 means other processes share the CPU).`
