/**
 * Recorder: builds one Program while a trace callback runs. Every node is type-checked on the spot with the
 * core op table's `infer`, so a mistake throws at the researcher's line, which is also kept in `locations`.
 */
import { WeftError, getOp, PROGRAM_VERSION, type Attrs, type Invoke, type Manifest, type Program, type ProgramNode,
  type SourceLocation, type ValueType, type InferContext } from '@weft/core'
import { callerLocation, formatLocation } from './location.js'

/** Ops whose nodes matter even when nothing consumes them. */
const EFFECTS = new Set(['write', 'save', 'stop'])

export class Recorder {
  readonly manifest: Manifest
  readonly invokes: Invoke[] = []
  private readonly seqLens: (number | null)[] = []
  private readonly nodes: ProgramNode[] = []
  private readonly types: ValueType[] = []
  private readonly locations: (SourceLocation | null)[] = []
  private readonly saveNames = new Map<string, number>()
  private readonly context: InferContext
  /** nodes kept by `finish` even when unused in this trace (a later trace of the session uses them) */
  private readonly pinned = new Set<number>()
  /** after `finish`: recorded node index → index in the finished Program */
  renumbered: ReadonlyMap<number, number> = new Map()
  /** session recorders: turns a value of an earlier trace into a `from` node of this one (undefined: not allowed) */
  carry: ((value: { recorder: Recorder; node: number }) => number | undefined) | undefined

  constructor (manifest: Manifest, session: Pick<InferContext, 'params' | 'fromValue'> = {}) {
    this.manifest = manifest
    this.context = {
      ...session,
      manifest,
      seqLen: (invoke: number) => {
        if (!Number.isInteger(invoke) || invoke < 0 || invoke >= this.invokes.length) {
          throw new WeftError('PROGRAM_INVALID', `invoke ${invoke} does not exist (the trace has ${this.invokes.length})`)
        }
        return this.seqLens[invoke] ?? `seq@${invoke}`
      },
    }
  }

  /** Adds an invoke (a batch row); `ids` make its sequence length known while recording. */
  addInvoke (invoke: Invoke): number {
    if ('ids' in invoke) {
      if (invoke.ids.length === 0) throw this.error('an invoke needs at least one token', callerLocation())
      const bad = invoke.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= this.manifest.vocabSize)
      if (bad !== undefined) throw this.error(`token id ${bad} is outside the vocabulary [0, ${this.manifest.vocabSize})`, callerLocation())
    }
    this.invokes.push(invoke)
    this.seqLens.push('ids' in invoke ? invoke.ids.length : null)
    return this.invokes.length - 1
  }

  /** Appends a node after inferring its type; errors carry the caller's location. */
  add (op: string, attrs: Attrs, inputs: number[]): number {
    const location = callerLocation()
    const definition = (() => {
      try { return getOp(op) } catch (error) { throw this.rethrow(error, op, location) }
    })()
    const arity = definition.arity
    const [min, max] = arity === 'variadic' ? [1, Infinity] : typeof arity === 'number' ? [arity, arity] : arity
    if (inputs.length < min || inputs.length > max) {
      throw this.error(`${op}: expects ${arity === 'variadic' ? 'at least 1' : typeof arity === 'number' ? arity : `${min}–${max}`} input(s), got ${inputs.length}`, location, { op })
    }
    let type: ValueType
    try {
      type = definition.infer(attrs, inputs.map((i) => this.typeOf(i)), this.context)
    } catch (error) {
      throw this.rethrow(error, op, location, attrs)
    }
    this.nodes.push([op, attrs, inputs])
    this.types.push(type)
    this.locations.push(location)
    return this.nodes.length - 1
  }

  /** Keeps node `node` (and what it depends on) in the finished Program. */
  pin (node: number): void { this.typeOf(node); this.pinned.add(node) }

  /** The op of a recorded node. */
  opOf (node: number): string {
    const recorded = this.nodes[node]
    if (recorded === undefined) throw new Error(`internal: node ${node} does not exist`)
    return recorded[0]
  }

  typeOf (node: number): ValueType {
    const type = this.types[node]
    if (type === undefined) throw new Error(`internal: node ${node} does not exist`)
    return type
  }

  /** Registers a save name; names are unique per Program. */
  claimSaveName (name: string, node: number): void {
    if (this.saveNames.has(name) && this.saveNames.get(name) !== node) {
      throw this.error(`a value is already saved as '${name}'; save names must be unique`, callerLocation(), { name })
    }
    this.saveNames.set(name, node)
  }

  releaseSaveName (name: string): void { this.saveNames.delete(name) }

  saveNameOf (saveNode: number): string { return this.nodes[saveNode]![1].name as string }

  /** A save name not yet in use (`save_0`, `save_1`, …). */
  freshSaveName (): string {
    let i = this.saveNames.size
    while (this.saveNames.has(`save_${i}`)) i++
    return `save_${i}`
  }

  hasSaveName (name: string): boolean { return this.saveNames.has(name) }

  /** Renames a save node (auto-named saves get their name from where the trace callback returned them). */
  renameSave (saveNode: number, name: string): void {
    const node = this.nodes[saveNode]!
    const old = node[1].name as string
    if (old === name) return
    this.claimSaveName(name, saveNode)
    this.releaseSaveName(old)
    node[1] = { ...node[1], name }
  }

  /** The finished Program: unused pure nodes (e.g. a read that was only `set`) are dropped and indices renumbered. */
  finish (model: { name: string; revision: string | null }): Program {
    const keep = new Array<boolean>(this.nodes.length).fill(false)
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      if (EFFECTS.has(this.nodes[i]![0]) || this.pinned.has(i)) keep[i] = true
      if (keep[i]) for (const input of this.nodes[i]![2]) keep[input] = true
    }
    const renumber = new Map<number, number>()
    const nodes: ProgramNode[] = []
    const locations: (SourceLocation | null)[] = []
    this.nodes.forEach(([op, attrs, inputs], i) => {
      if (!keep[i]) return
      renumber.set(i, nodes.length)
      nodes.push([op, attrs, inputs.map((input) => renumber.get(input)!)])
      locations.push(this.locations[i] ?? null)
    })
    this.renumbered = renumber
    const program: Program = { version: PROGRAM_VERSION, model, mode: 'trace', invokes: this.invokes, nodes }
    if (locations.some((l) => l !== null)) program.locations = locations
    return program
  }

  /** Saved names → value types, for `scan`. */
  savedTypes (): Record<string, ValueType> {
    const out: Record<string, ValueType> = {}
    for (const [name, node] of this.saveNames) out[name] = this.typeOf(node)
    return out
  }

  error (message: string, location: SourceLocation | null, details: Record<string, unknown> = {}): WeftError {
    return new WeftError('PROGRAM_INVALID', message + formatLocation(location), { ...details, ...(location === null ? {} : { location }) })
  }

  private rethrow (error: unknown, op: string, location: SourceLocation | null, attrs: Attrs = {}): unknown {
    if (!WeftError.is(error)) return error
    const target = typeof attrs.site === 'string' ? attrs.site : typeof attrs.module === 'string' ? attrs.module : null
    const where = target !== null && !error.message.includes(`'${target}'`)
      ? ` [${op === 'module_call' ? 'module' : 'site'} '${target}'${typeof attrs.port === 'string' ? ` ${attrs.port}` : ''}${typeof attrs.invoke === 'number' ? `, invoke ${attrs.invoke}` : ''}]`
      : ''
    return new WeftError(error.code, error.message + where + formatLocation(location),
      { ...error.details, op, ...(location === null ? {} : { location }) }, { cause: error })
  }
}
