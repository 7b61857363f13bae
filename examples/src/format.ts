/** Small helpers shared by the examples: text tables, token display, seeded Gaussian noise, "run me directly". */
import { pathToFileURL } from 'node:url'

/** Shows a token with visible leading spaces and escaped newlines, e.g. `␣Paris`. */
export function showToken (token: string): string {
  return token.replace(/ /g, '␣').replace(/\n/g, '⏎')
}

/** A fixed-width text table. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

/** Deterministic standard normal samples (mulberry32 + Box–Muller). */
export function gaussian (seed: number, count: number): Float32Array {
  let state = seed >>> 0
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296
  }
  const out = new Float32Array(count)
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()))
    const theta = 2 * Math.PI * uniform()
    out[i] = r * Math.cos(theta)
    if (i + 1 < count) out[i + 1] = r * Math.sin(theta)
  }
  return out
}

/** True when the module at `url` is the script node was started with (`npx tsx examples/src/x.ts`). */
export function isMain (url: string): boolean {
  return process.argv[1] !== undefined && url === pathToFileURL(process.argv[1]).href
}
