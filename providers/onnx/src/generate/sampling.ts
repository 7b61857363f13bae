/**
 * Token choice per step (spec/program.md, Generation): greedy argmax (lowest id on ties) or seeded sampling whose
 * uniform draw for (invoke k, step s) is a SplitMix64 hash of (seed, k, s), so results never depend on batching.
 */
import { splitmix64, type GenerateStrategy } from '@weft/core'

/** The uniform draw in [0, 1) of invoke `invoke` at step `step`: top 53 bits of h(h(h(seed) ⊕ invoke) ⊕ step). */
function uniformDraw (seed: number, invoke: number, step: number): number {
  const h = splitmix64(splitmix64(splitmix64(BigInt(seed)) ^ BigInt(invoke)) ^ BigInt(step))
  return Number(h >> 11n) / 2 ** 53
}

/** Index of the largest value; the lowest index among equals. */
function argmax (row: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i
  return best
}

/**
 * Samples from softmax(logits / temperature) over the candidates (the topK largest logits, ties to the lower id, or
 * every token), visited in ascending id order: the first candidate whose running sum of exp(x/T − max) exceeds
 * u · total, computed in float64.
 */
function sampleToken (row: ArrayLike<number>, temperature: number, topK: number | undefined, u: number): number {
  let candidates: number[]
  if (topK !== undefined && topK < row.length) {
    const order = Array.from({ length: row.length }, (_, i) => i)
    order.sort((a, b) => (row[b]! - row[a]!) || (a - b))
    candidates = order.slice(0, topK).sort((a, b) => a - b)
  } else {
    candidates = Array.from({ length: row.length }, (_, i) => i)
  }
  let max = -Infinity
  for (const id of candidates) if (row[id]! > max) max = row[id]!
  const weights = candidates.map(id => Math.exp((row[id]! - max) / temperature))
  const total = weights.reduce((a, b) => a + b, 0)
  const threshold = u * total
  let sum = 0
  for (let i = 0; i < candidates.length; i++) {
    sum += weights[i]!
    if (sum > threshold) return candidates[i]!
  }
  return candidates[candidates.length - 1]!
}

/** The next token of invoke `invoke` at step `step` from its logits row. */
export function chooseToken (strategy: GenerateStrategy, row: ArrayLike<number>, invoke: number, step: number): number {
  if (strategy === 'greedy') return argmax(row)
  return sampleToken(row, strategy.temperature, strategy.topK, uniformDraw(strategy.seed, invoke, step))
}
