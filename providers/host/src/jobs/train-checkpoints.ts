/**
 * Training checkpoints on the host (docs/decisions/2026-12-06-training-checkpoints.md): the engine's
 * TrainingCheckpoint as the bytes of the job's `train_checkpoints` row, and back. Layout: a 4-byte little-endian
 * length, a JSON header (format, step, steps, each array's name, shape and byte range), then the raw
 * little-endian bytes of the loss curve (float64, NaN and infinities included) and of the float32 arrays, each at an
 * 8-byte aligned offset. Raw bytes (no per-element encoding) keep a write close to a memory copy, and a checkpoint
 * read back is bit for bit the state the engine reported.
 */
import { endianness } from 'node:os'
import { WeftError, type OptimizerState, type Tensor, type TrainingCheckpoint } from '@weft/core'

const FORMAT = 1
const SLOT_KEYS = ['m', 'v', 'buf'] as const
type SlotKey = typeof SLOT_KEYS[number]

interface Range { shape: number[]; offset: number; length: number }
interface Header {
  format: number
  step: number
  steps: number
  losses: Range
  params: Record<string, Range>
  optimizer: { step: number; slots: Record<string, Partial<Record<SlotKey, Range>>> }
}

if (endianness() !== 'LE') throw new Error('training checkpoints are written as little-endian float32: this host is big-endian')

const align = (n: number): number => (n + 7) & ~7

export function encodeCheckpoint (checkpoint: TrainingCheckpoint): Uint8Array {
  const arrays: (Float32Array | Float64Array)[] = []
  let offset = 0
  const place = (data: Float32Array | Float64Array, shape: number[]): Range => {
    const range = { shape, offset, length: data.length }
    arrays.push(data)
    offset += align(data.byteLength)
    return range
  }
  const losses = place(Float64Array.from(checkpoint.losses), [checkpoint.losses.length])
  const header: Header = { format: FORMAT, step: checkpoint.step, steps: checkpoint.steps, losses, params: {}, optimizer: { step: checkpoint.optimizer.step, slots: {} } }
  for (const [name, tensor] of Object.entries(checkpoint.params)) {
    if (!(tensor.data instanceof Float32Array)) throw new WeftError('INTERNAL', `training checkpoint: param '${name}' is not float32`)
    header.params[name] = place(tensor.data, [...tensor.shape])
  }
  for (const [name, slot] of Object.entries(checkpoint.optimizer.slots)) {
    const ranges: Partial<Record<SlotKey, Range>> = {}
    for (const key of SLOT_KEYS) if (slot[key] !== undefined) ranges[key] = place(slot[key], [slot[key].length])
    header.optimizer.slots[name] = ranges
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const start = align(4 + json.byteLength)
  const out = Buffer.alloc(start + offset)
  out.writeUInt32LE(json.byteLength, 0)
  json.copy(out, 4)
  let at = start
  for (const data of arrays) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at)
    at += align(data.byteLength)
  }
  return out
}

/** The checkpoint in `bytes` (copies of its arrays); DECODE_FAILED when they are not one this host wrote. */
export function decodeCheckpoint (bytes: Uint8Array): TrainingCheckpoint {
  const bad = (why: string): never => { throw new WeftError('DECODE_FAILED', `stored training checkpoint: ${why}`) }
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.byteLength < 4) bad('too short')
  const length = buffer.readUInt32LE(0)
  if (4 + length > buffer.byteLength) bad('header past the end')
  let header: Header
  try { header = JSON.parse(buffer.subarray(4, 4 + length).toString('utf8')) as Header } catch { return bad('header is not JSON') }
  if (header?.format !== FORMAT) bad('unknown format')
  if (!Number.isInteger(header.step) || !Number.isInteger(header.steps)) bad('bad step counts')
  const start = align(4 + length)
  function array (range: Range | undefined, what: string): Float32Array
  function array (range: Range | undefined, what: string, wide: true): Float64Array
  function array (range: Range | undefined, what: string, wide = false): Float32Array | Float64Array {
    if (range === undefined || !Number.isInteger(range.offset) || !Number.isInteger(range.length) || range.offset < 0 || range.length < 0) return bad(`${what} has no valid range`)
    const from = start + range.offset
    const to = from + range.length * (wide ? 8 : 4)
    if (to > buffer.byteLength) bad(`${what} runs past the end`)
    const out = wide ? new Float64Array(range.length) : new Float32Array(range.length)
    new Uint8Array(out.buffer).set(buffer.subarray(from, to))
    return out
  }
  const losses = Array.from(array(header.losses, 'the loss curve', true))
  const params: Record<string, Tensor> = {}
  for (const [name, range] of Object.entries(header.params ?? {})) params[name] = { dtype: 'float32', shape: range.shape, data: array(range, `param '${name}'`) }
  const slots: OptimizerState['slots'] = {}
  for (const [name, ranges] of Object.entries(header.optimizer?.slots ?? {})) {
    const slot: OptimizerState['slots'][string] = {}
    for (const key of SLOT_KEYS) if (ranges[key] !== undefined) slot[key] = array(ranges[key], `optimizer ${key} of '${name}'`)
    slots[name] = slot
  }
  if (!Number.isInteger(header.optimizer?.step)) bad('no optimizer step')
  return { step: header.step, steps: header.steps, losses, params, optimizer: { step: header.optimizer.step, slots } }
}
