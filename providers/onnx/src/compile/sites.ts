/**
 * Site access for the compiler: reading one invoke's row of a site (sliced to its real length on every 'seq'
 * dim), writing it back into the batch tensor, and the override table that later rewires the base graph's
 * consumers to the written value. Row offsets and lengths are graph inputs, never constants.
 */
import type { DType, IndexItem, ModuleEntry, SitePort } from '@weft/core'
import { WeftError } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import { INT64_MAX, type Emitter } from './emitter.js'
import { assignIndex } from './index-ops.js'
import { manifestEntries } from './graph-index.js'

interface SiteInfo { value: string; batchAxis: number; seqAxes: number[]; rank: number; dtype: DType; entry: ModuleEntry }
interface InvokeBounds { rowStart: string; rowEnd: string; length: string }

export class SiteAccess {
  /** base value name → current value, for output-port writes (every consumer follows) */
  readonly valueOverrides = new Map<string, string>()
  /** module path → current value of its input, for input-port writes (only the module's own nodes follow) */
  readonly inputOverrides = new Map<string, { base: string; current: string }>()
  /** global invoke → the graph input carrying `[row, row + 1, length]` */
  readonly boundsInputs = new Map<number, string>()
  private readonly bounds = new Map<number, InvokeBounds>()
  private readonly starts = new Map<string, [string, string]>()
  private readonly entries: Map<string, ModuleEntry>

  /** `singleRow`: one row whose length is the tensors' seq length (see CompileOptions.rowsAreWhole): a row view is the whole tensor. */
  constructor (private readonly emit: Emitter, private readonly graph: ModelGraph, private readonly singleRow = false) {
    this.entries = manifestEntries(graph)
  }

  info (site: string, port: SitePort): SiteInfo {
    const entry = this.entries.get(site)
    const signature = entry?.[port]
    const value = this.graph.sites.get(site)?.[port]
    if (entry === undefined || signature === undefined || value === undefined) {
      throw new WeftError('PROGRAM_INVALID', `site '${site}' has no ${port} in this model graph`, { site, port })
    }
    const seqAxes = signature.shape.flatMap((d, i) => d === 'seq' ? [i] : [])
    return { value, batchAxis: signature.shape.indexOf('batch'), seqAxes, rank: signature.shape.length, dtype: signature.dtype, entry }
  }

  invokeBounds (invoke: number): InvokeBounds {
    const known = this.bounds.get(invoke)
    if (known !== undefined) return known
    const input = this.emit.input(`invoke${invoke}.bounds`, 'int64', [3])
    this.boundsInputs.set(invoke, input)
    const made = {
      rowStart: this.emit.slice(input, [0], [1], [0]),
      rowEnd: this.emit.slice(input, [1], [2], [0]),
      length: this.emit.slice(input, [2], [3], [0]),
    }
    this.bounds.set(invoke, made)
    return made
  }

  /** The current (possibly rewritten) batch value of a site's port. */
  current (site: string, port: SitePort): string {
    const info = this.info(site, port)
    if (port === 'input') {
      const own = this.inputOverrides.get(site)
      if (own !== undefined) return own.current
    }
    return this.valueOverrides.get(info.value) ?? info.value
  }

  /** Slice bounds for the row and its real length on `seqCount` seq dims: [starts, ends]. */
  private rowSlice (invoke: number, seqCount: number): [string, string] {
    const key = `${invoke}:${seqCount}`
    const known = this.starts.get(key)
    if (known !== undefined) return known
    const b = this.invokeBounds(invoke)
    const zeros = Array.from({ length: seqCount }, () => this.emit.int64([0]))
    const lengths = Array.from({ length: seqCount }, () => b.length)
    const made: [string, string] = seqCount === 0
      ? [b.rowStart, b.rowEnd]
      : [this.emit.op('Concat', [b.rowStart, ...zeros], { axis: 0 }), this.emit.op('Concat', [b.rowEnd, ...lengths], { axis: 0 })]
    this.starts.set(key, made)
    return made
  }

  /** `[1, seq, …]` view of one invoke's row of `value` (a batch tensor laid out like the site). */
  view (value: string, info: SiteInfo, invoke: number): string {
    if (info.batchAxis < 0 || this.singleRow) return value
    const [starts, ends] = this.rowSlice(invoke, info.seqAxes.length)
    return this.emit.op('Slice', [value, starts, ends, this.emit.int64([info.batchAxis, ...info.seqAxes])])
  }

  read (site: string, port: SitePort, invoke: number): string {
    return this.view(this.current(site, port), this.info(site, port), invoke)
  }

  /**
   * Writes `value` (already cast to the site dtype; `valueRank` its rank) into the invoke's row, optionally
   * into `index` of the row view. Returns the new `[1, seq, …]` view (the op's result).
   */
  write (site: string, port: SitePort, invoke: number, value: string, valueRank: number, index?: IndexItem[]): string {
    const info = this.info(site, port)
    if (info.batchAxis !== 0 && info.batchAxis !== -1) throw new Error(`site '${site}': batch must be axis 0`)
    const before = this.current(site, port)
    const oldView = this.view(before, info, invoke)
    const newView = index === undefined
      ? this.emit.op('Expand', [value, this.emit.op('Shape', [oldView])])
      : assignIndex(this.emit, oldView, info.rank, index, value, valueRank)
    const after = info.batchAxis < 0 || this.singleRow ? newView : this.putBack(before, newView, info, invoke)
    if (port === 'input') {
      const own = this.inputOverrides.get(site)
      this.inputOverrides.set(site, { base: own?.base ?? info.value, current: after })
    } else {
      this.valueOverrides.set(info.value, after)
    }
    return newView
  }

  /** Rebuilds the whole row (real positions from `newView`, padding from `before`) and scatters it into the batch. */
  private putBack (before: string, newView: string, info: SiteInfo, invoke: number): string {
    const b = this.invokeBounds(invoke)
    let row = newView
    if (info.seqAxes.length > 0) {
      const oldRow = this.emit.op('Slice', [before, b.rowStart, b.rowEnd, this.emit.int64([0])])
      for (let i = info.seqAxes.length - 1; i >= 0; i--) {
        // the padding tail along seq axis i; earlier seq axes are still cut to the real length
        const earlier = info.seqAxes.slice(0, i)
        const starts = this.emit.op('Concat', [b.length, ...earlier.map(() => this.emit.int64([0]))], { axis: 0 })
        const ends = this.emit.op('Concat', [this.emit.int64([INT64_MAX]), ...earlier.map(() => b.length)], { axis: 0 })
        const tail = this.emit.op('Slice', [oldRow, starts, ends, this.emit.int64([info.seqAxes[i]!, ...earlier])])
        row = this.emit.op('Concat', [row, tail], { axis: info.seqAxes[i]! })
      }
    }
    const indices = this.emit.op('Reshape', [b.rowStart, this.emit.int64([1, 1])])
    return this.emit.op('ScatterND', [before, indices, row])
  }
}
