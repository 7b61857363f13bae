/**
 * SiteProxy: a module's input or output for one invoke. Reading it is a `read` node; `set(value)` replaces it
 * (`write`), and `at(...).set(value)` assigns into a region of it (`write` with `index`).
 */
import type { SitePort } from '@weft/core'
import type { Recorder } from './recorder.js'
import { ValueProxy, type Operand } from './value-proxy.js'
import { toIndexSpec, type IndexArg } from '../tensor/indexing.js'

export interface SiteAddress { site: string; port: SitePort; invoke: number }

export class SiteProxy extends ValueProxy {
  readonly address: SiteAddress

  constructor (recorder: Recorder, address: SiteAddress) {
    super(recorder, recorder.add('read', { site: address.site, port: address.port, invoke: address.invoke }, []))
    this.address = address
  }

  /** Replaces the whole value (broadcasting `value` to the site's shape). Later reads of the site see it. */
  set (value: Operand): void {
    const input = this.lift(value)
    this.recorder.add('write', { ...this.address }, [input])
  }

  /** A region of the site: read it like any value, or `set` it to assign into just that region. */
  override at (...index: IndexArg[]): SiteSlice {
    let spec
    try { spec = toIndexSpec(index) } catch (error) { throw this.withLocation(error) }
    const node = this.recorder.add('index', { index: spec }, [this.node])
    return new SiteSlice(this.recorder, node, this.address, spec)
  }

  override toString (): string { return `SiteProxy(${this.address.site}.${this.address.port}@${this.address.invoke} [${this.shape.join(', ')}])` }
}

export class SiteSlice extends ValueProxy {
  private readonly address: SiteAddress
  private readonly index: ReturnType<typeof toIndexSpec>

  constructor (recorder: Recorder, node: number, address: SiteAddress, index: ReturnType<typeof toIndexSpec>) {
    super(recorder, node)
    this.address = address
    this.index = index
  }

  /** Assigns `value` into this region of the site (broadcasting), e.g. `h.at(':', -1).set(0)`. */
  set (value: Operand): void {
    const input = this.lift(value)
    this.recorder.add('write', { ...this.address, index: this.index }, [input])
  }
}

declare module './value-proxy.js' {
  /** OP_METHODS rows may name SiteProxy's members (value-proxy.ts) */
  interface OpRecorders { SiteProxy: SiteProxy }
}
