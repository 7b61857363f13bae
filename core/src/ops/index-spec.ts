/** numpy basic indexing (ints drop a dim, [start,stop,step] slices, null = ':'): checks and result shapes. */
import { show } from '../errors/show.js'
import type { IndexItem } from '../ir/program.js'
import type { Dim } from './types.js'
import { fail, fmtShape } from './rules.js'

export interface SliceRange { start: number; step: number; length: number }

/** Python slice semantics over a concrete size. */
export function sliceRange (start: number | null, stop: number | null, step: number | null, size: number): SliceRange {
  const s = step ?? 1
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi)
  const norm = (v: number): number => v < 0 ? v + size : v
  let first: number
  let end: number
  if (s > 0) {
    first = start === null ? 0 : clamp(norm(start), 0, size)
    end = stop === null ? size : clamp(norm(stop), 0, size)
  } else {
    first = start === null ? size - 1 : clamp(norm(start), -1, size - 1)
    end = stop === null ? -1 : clamp(norm(stop), -1, size - 1)
  }
  const length = s > 0 ? Math.max(0, Math.ceil((end - first) / s)) : Math.max(0, Math.ceil((first - end) / -s))
  return { start: first, step: s, length }
}

function isIntOrNull (v: unknown): v is number | null {
  return v === null || (typeof v === 'number' && Number.isInteger(v))
}

export function checkIndexItem (op: string, item: unknown): asserts item is IndexItem {
  if (item === null) return
  if (typeof item === 'number') {
    if (!Number.isInteger(item)) fail(op, `index item ${item} is not an integer`)
    return
  }
  if (!Array.isArray(item) || item.length !== 3 || !item.every(isIntOrNull)) {
    fail(op, `index item ${show(item)} must be null, an integer or [start, stop, step] of integers/nulls`)
  }
  if (item[2] === 0) fail(op, 'slice step must not be 0')
}

/** Shape after applying `spec` to a value of `shape`; ints out of range on concrete dims are errors. */
export function indexedShape (op: string, shape: readonly Dim[], spec: unknown): Dim[] {
  if (!Array.isArray(spec)) fail(op, 'index must be a list of index items')
  if (spec.length > shape.length) fail(op, `too many indices (${spec.length}) for ${fmtShape(shape)}`)
  const out: Dim[] = []
  spec.forEach((item: unknown, axis) => {
    checkIndexItem(op, item)
    const size = shape[axis]!
    if (item === null) { out.push(size); return }
    if (typeof item === 'number') {
      if (typeof size === 'number' && (item >= size || item < -size)) {
        fail(op, `index ${item} out of range for dim ${axis} of size ${size}`)
      }
      return
    }
    const [start, stop, step] = item
    if (typeof size === 'number') out.push(sliceRange(start, stop, step, size).length)
    else if (start === null && stop === null && (step === null || step === 1)) out.push(size)
    else out.push(`${size}[${start ?? ''}:${stop ?? ''}:${step ?? ''}]`)
  })
  return [...out, ...shape.slice(spec.length)]
}
