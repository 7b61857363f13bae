/**
 * ModuleTable: records modules and finer sites in forward order (an entry is appended when its output is
 * produced, so children precede their parent) together with the ONNX values bound to them.
 */
import type { DType, ModuleEntry, SymDim } from '@weft/core'
import type { SiteBinding } from '../graph/model-graph.js'
import type { Checkpoint } from '../safetensors/read.js'

export interface ModuleSpec {
  type: string
  kind?: 'module' | 'site'
  callable?: boolean
  output?: { value: string; shape: SymDim[]; dtype?: DType }
  input?: { value: string; shape: SymDim[]; dtype?: DType }
  /** parameter-name prefixes owned by this module, when not `${path}.` (tied heads) */
  owns?: string[]
}

export class ModuleTable {
  readonly entries: ModuleEntry[] = []
  readonly sites = new Map<string, SiteBinding>()
  private readonly owners = new Map<string, string[]>()

  add (path: string, spec: ModuleSpec): void {
    const entry: ModuleEntry = { path, kind: spec.kind ?? 'module', type: spec.type, callable: spec.callable ?? false, parameters: 0 }
    if (spec.output) entry.output = { shape: spec.output.shape, dtype: spec.output.dtype ?? 'float32' }
    if (spec.input) entry.input = { shape: spec.input.shape, dtype: spec.input.dtype ?? 'float32' }
    this.entries.push(entry)
    if (spec.output || spec.input) {
      this.sites.set(path, { ...(spec.output ? { output: spec.output.value } : {}), ...(spec.input ? { input: spec.input.value } : {}) })
    }
    if (spec.owns) this.owners.set(path, spec.owns)
  }

  /** Fills `parameters` of every entry from the checkpoint's tensor shapes; returns the model's total. */
  countParameters (checkpoint: Checkpoint, isParameter: (name: string) => boolean = () => true): number {
    const sizes: [string, number][] = []
    for (const [name, entry] of checkpoint.tensors) {
      if (isParameter(name)) sizes.push([name, entry.shape.reduce((a, b) => a * b, 1)])
    }
    for (const entry of this.entries) {
      const prefixes = this.owners.get(entry.path) ?? [entry.path + '.']
      entry.parameters = sizes.reduce((sum, [name, n]) => sum + (prefixes.some(p => name.startsWith(p)) ? n : 0), 0)
    }
    return sizes.reduce((sum, [, n]) => sum + n, 0)
  }
}
