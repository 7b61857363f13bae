/** Shared benchmark helpers: a suite yields tables; timings are medians over warm repetitions. */
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
export const ratio = (a: number, b: number): string => (a / b).toFixed(3) + '×'
