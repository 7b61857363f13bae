/**
 * Index arguments as people write them (`at(':', -1)`, `at('2:5')`, `at([0, null, 2])`) → the Program's
 * IndexSpec, plus numpy basic-indexing resolution over a concrete shape (for results and shape checks).
 */
import { WeftError, type IndexItem, type IndexSpec } from '@weft/core'

export type IndexArg = number | string | null | [number | null, number | null, number | null] | [number | null, number | null]

/** Parses one `at(...)` argument list into an IndexSpec; throws PROGRAM_INVALID naming the bad item. */
export function toIndexSpec (items: readonly IndexArg[]): IndexSpec {
  return items.map((item, position) => parseItem(item, position))
}

function parseItem (item: IndexArg, position: number): IndexItem {
  if (item === null) return null
  if (typeof item === 'number') {
    if (!Number.isInteger(item)) throw new WeftError('PROGRAM_INVALID', `Index item ${position} must be an integer, got ${item}`)
    return item
  }
  if (Array.isArray(item)) {
    if (item.length < 2 || item.length > 3) throw new WeftError('PROGRAM_INVALID', `Slice item ${position} must be [start, stop] or [start, stop, step]`)
    const [start, stop, step = null] = item
    for (const bound of [start, stop, step]) {
      if (bound !== null && !Number.isInteger(bound)) throw new WeftError('PROGRAM_INVALID', `Slice item ${position} has a non-integer bound ${String(bound)}`)
    }
    if (step === 0) throw new WeftError('PROGRAM_INVALID', `Slice item ${position} has step 0`)
    return [start, stop, step]
  }
  if (typeof item === 'string') return parseSliceString(item.trim(), position)
  throw new WeftError('PROGRAM_INVALID', `Index item ${position} must be a number, ':' or 'a:b:c' string, null or [start, stop, step]`)
}

function parseSliceString (text: string, position: number): IndexItem {
  if (text === ':' || text === '::' || text === '...') return null
  const parts = text.split(':')
  if (parts.length === 1) {
    const value = Number(text)
    if (text === '' || !Number.isInteger(value)) throw new WeftError('PROGRAM_INVALID', `Index item ${position} '${text}' is not an integer or a slice`)
    return value
  }
  if (parts.length > 3) throw new WeftError('PROGRAM_INVALID', `Index item ${position} '${text}' has too many ':'`)
  const bounds = parts.map((part) => {
    if (part.trim() === '') return null
    const value = Number(part)
    if (!Number.isInteger(value)) throw new WeftError('PROGRAM_INVALID', `Index item ${position} '${text}' has a non-integer bound '${part}'`)
    return value
  })
  const [start = null, stop = null, step = null] = bounds
  if (step === 0) throw new WeftError('PROGRAM_INVALID', `Index item ${position} '${text}' has step 0`)
  return [start, stop, step]
}

/** Resolves one slice against a dimension of `size`, numpy style; returns the chosen positions. */
function slicePositions (size: number, slice: [number | null, number | null, number | null]): number[] {
  const step = slice[2] ?? 1
  const clamp = (value: number | null, fallback: number, low: number, high: number): number => {
    if (value === null) return fallback
    const v = value < 0 ? value + size : value
    return Math.min(Math.max(v, low), high)
  }
  const out: number[] = []
  if (step > 0) {
    const start = clamp(slice[0], 0, 0, size)
    const stop = clamp(slice[1], size, 0, size)
    for (let i = start; i < stop; i += step) out.push(i)
  } else {
    const start = clamp(slice[0], size - 1, -1, size - 1)
    const stop = clamp(slice[1], -1, -1, size - 1)
    for (let i = start; i > stop; i += step) out.push(i)
  }
  return out
}

/** The result shape and flat source offsets of indexing a row-major tensor of `shape` with `items`. */
export function resolveIndex (shape: readonly number[], items: readonly IndexArg[]): { shape: number[]; offsets: number[] } {
  const spec = toIndexSpec(items)
  if (spec.length > shape.length) {
    throw new WeftError('PROGRAM_INVALID', `Too many indices (${spec.length}) for shape [${shape.join(', ')}]`)
  }
  const perDim: number[][] = []
  const outShape: number[] = []
  shape.forEach((size, d) => {
    const item = d < spec.length ? spec[d]! : null
    if (typeof item === 'number') {
      const i = item < 0 ? item + size : item
      if (i < 0 || i >= size) throw new WeftError('PROGRAM_INVALID', `Index ${item} is out of range for dimension ${d} of size ${size}`)
      perDim.push([i])
    } else {
      const positions = item === null ? Array.from({ length: size }, (_, i) => i) : slicePositions(size, item)
      perDim.push(positions)
      outShape.push(positions.length)
    }
  })
  const strides = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1))
  let offsets = [0]
  perDim.forEach((positions, d) => {
    const next: number[] = []
    for (const base of offsets) for (const p of positions) next.push(base + p * strides[d]!)
    offsets = next
  })
  return { shape: outShape, offsets }
}
