/**
 * `module_call`: clones a module's subgraph (its scope's nodes that depend on its input) with the argument as input,
 * weights shared; per-row side inputs are re-derived for the argument's invoke. Row-wise modules also take stacked arguments.
 */
import { create } from '@bufbuild/protobuf'
import { WeftError } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import type { ModelGraph } from '../graph/model-graph.js'
import type { Emitter } from './emitter.js'
import { graphIndex, inScope, type GraphIndex } from './graph-index.js'
import type { SiteAccess } from './sites.js'
import { tensorInts } from './grad/dims.js'
import { onnxOp } from './onnx-ops.js'

interface ModuleBody { input: string; output: string; nodes: number[] }

export class ModuleCaller {
  private readonly index: GraphIndex
  private readonly context = new Map<string, string>()
  private readonly bodies = new Map<string, ModuleBody>()
  private readonly stackables = new Map<string, boolean>()
  /** base nodes whose work a `callRows(…, withBase)` took over: the compiler drops them */
  readonly replacedBase = new Set<number>()

  constructor (private readonly emit: Emitter, private readonly graph: ModelGraph, private readonly sites: SiteAccess) {
    this.index = graphIndex(graph)
  }

  /** The module's nodes that depend on its input and are needed for its output (base-graph order). */
  private body (module: string): ModuleBody {
    const known = this.bodies.get(module)
    if (known !== undefined) return known
    const binding = this.graph.sites.get(module)
    if (binding?.input === undefined || binding.output === undefined) {
      throw new WeftError('PROGRAM_INVALID', `module_call: '${module}' has no input/output binding in this graph`, { module })
    }
    const { nodes, scope, producer } = this.index
    const tainted = new Set([binding.input])
    const members = new Set<number>()
    nodes.forEach((node, i) => {
      if (!inScope(scope[i]!, module) || !node.input.some(n => tainted.has(n))) return
      members.add(i)
      for (const out of node.output) tainted.add(out)
    })
    if (!tainted.has(binding.output)) {
      throw new WeftError('PROGRAM_INVALID', `module_call: the output of '${module}' does not depend on its input in this graph`, { module })
    }
    // keep only members the output needs
    const needed = new Set<number>()
    const stack = [binding.output]
    while (stack.length > 0) {
      const p = producer.get(stack.pop()!)
      if (p === undefined || needed.has(p) || !members.has(p)) continue
      needed.add(p)
      stack.push(...nodes[p]!.input)
    }
    const made = { input: binding.input, output: binding.output, nodes: [...members].filter(i => needed.has(i)) }
    this.bodies.set(module, made)
    return made
  }

  /** Applies `module` to `arg`; `invoke` is the single invoke the argument derives from, if any. */
  call (module: string, arg: string, invoke: number | null): string {
    const body = this.body(module)
    const renamed = new Map<string, string>([[body.input, arg]])
    for (const i of body.nodes) {
      const node = this.index.nodes[i]!
      const inputs = node.input.map(name => renamed.get(name) ?? this.external(module, name, invoke))
      const outputs = node.output.map(name => name === '' ? '' : this.emit.fresh(`${module}.${name}`))
      node.output.forEach((name, k) => renamed.set(name, outputs[k]!))
      this.emit.push(create(onnx.NodeProtoSchema, { ...node, name: this.emit.fresh(node.name), input: inputs, output: outputs }))
    }
    return renamed.get(body.output)!
  }

  /**
   * True when the module acts on each vector along its input's last axis independently, so that rows of several
   * arguments can go through one call: every node is elementwise (other operands: initializers of rank ≤ 1), a
   * MatMul by a 2-D weight, or a LayerNormalization / keepdims Reduce / Softmax over the last axis only, and
   * nothing row-dependent (masks, positions) is read. Other modules are called once per argument.
   */
  stackable (module: string): boolean {
    const known = this.stackables.get(module)
    if (known !== undefined) return known
    let ok: boolean
    try {
      ok = this.checkStackable(this.body(module))
    } catch {
      ok = false // an unusable module fails in `call`, at its own node
    }
    this.stackables.set(module, ok)
    return ok
  }

  /**
   * Applies a `stackable` module once to the rows of all `args` (each flattened to `[rows, width]` and
   * concatenated); `outputs[i]` (names chosen by the caller) receives the output rows of `args[i]`. With `withBase`
   * the forward's own application of the module joins the call: its input's rows go first and the module's output
   * value is produced here (its base nodes are listed in `replacedBase` for the caller to drop).
   */
  callRows (module: string, args: readonly string[], width: number, outputs: readonly string[], withBase = false): void {
    const body = this.body(module)
    const parts = withBase ? [body.input, ...args] : args
    const flat = parts.map(a => this.emit.op('Reshape', [a, this.emit.int64([-1, width])]))
    const out = this.call(module, flat.length === 1 ? flat[0]! : this.emit.op('Concat', flat, { axis: 0 }), null)
    const rows = flat.map(f => this.emit.slice(this.emit.op('Shape', [f]), [0], [1], [0]))
    const names = withBase ? [this.emit.fresh(`${module}.base_rows`), ...outputs] : [...outputs]
    this.emit.node('Split', [out, this.emit.op('Concat', rows, { axis: 0 })], { axis: 0 }, names)
    if (!withBase) return
    const leading = this.emit.slice(this.emit.op('Shape', [body.input]), [0], [-1], [0])
    this.emit.node('Reshape', [names[0]!, this.emit.op('Concat', [leading, this.emit.int64([-1])], { axis: 0 })], {}, [body.output])
    for (const i of body.nodes) this.replacedBase.add(i)
  }

  /** Whether `callRows(…, withBase)` may replace the module's base nodes: stackable, and no inner value used outside. */
  joinableWithBase (module: string): boolean {
    if (!this.stackable(module)) return false
    const body = this.body(module)
    const inside = new Set(body.nodes)
    const outputs = new Set(this.graph.model.graph!.output.map(o => o.name))
    for (const i of body.nodes) {
      for (const value of this.index.nodes[i]!.output) {
        if (value === '' || value === body.output) continue
        if (outputs.has(value) || (this.index.consumers.get(value) ?? []).some(c => !inside.has(c))) return false
      }
    }
    return true
  }

  /** One argument's result from its output rows: `[rows, out]` reshaped to the argument's leading dims + `[out]`. */
  unflatten (rows: string, arg: string): string {
    const leading = this.emit.slice(this.emit.op('Shape', [arg]), [0], [-1], [0])
    return this.emit.op('Reshape', [rows, this.emit.op('Concat', [leading, this.emit.int64([-1])], { axis: 0 })])
  }

  private checkStackable (body: ModuleBody): boolean {
    const { nodes, perRow } = this.index
    const inside = new Set([body.input])
    for (const i of body.nodes) for (const out of nodes[i]!.output) inside.add(out)
    const smallConstant = (name: string): boolean => this.initializerRank(name) !== null && this.initializerRank(name)! <= 1
    for (const i of body.nodes) {
      const node = nodes[i]!
      if (node.input.some(name => name !== '' && !inside.has(name) && perRow.has(name))) return false
      const outside = node.input.filter(name => name !== '' && !inside.has(name))
      const attr = (name: string): onnx.AttributeProto | undefined => node.attribute.find(a => a.name === name)
      const lastAxisOnly = (values: readonly number[] | undefined): boolean => values !== undefined && values.length === 1 && values[0] === -1
      // which ops may appear: the `rowwise` column of the ONNX op table (onnx-ops.ts)
      const row = onnxOp(node.opType)
      if (row === undefined || row.rowwise === false) return false
      if (row.rowwise === 'elementwise') {
        // adding a leading axis to the argument adds it to the result when other operands have rank ≤ 1
        if (!outside.every(smallConstant)) return false
      } else if (row.rowwise === 'weights') {
        if (!inside.has(node.input[0]!) || inside.has(node.input[1]!) || this.initializerRank(node.input[1]!) !== 2) return false
      } else if (node.opType === 'LayerNormalization') {
        if (!inside.has(node.input[0]!) || (attr('axis')?.i ?? -1n) !== -1n || !outside.every(smallConstant)) return false
      } else if (row.shape === 'reduce') {
        const axes = attr('axes')?.ints.map(Number) ?? (node.input[1] === undefined || node.input[1] === '' ? undefined : this.initializerInts(node.input[1]))
        if (!inside.has(node.input[0]!) || !lastAxisOnly(axes) || (attr('keepdims')?.i ?? 1n) !== 1n) return false
      } else if (node.opType === 'Softmax' || node.opType === 'LogSoftmax') {
        if ((attr('axis')?.i ?? (this.emit.opset >= 13 ? -1n : 1n)) !== -1n) return false
      } else {
        return false
      }
    }
    return true
  }

  private initializerRank (name: string): number | null {
    if (!this.index.initializers.has(name)) return null
    const tensor = this.graph.model.graph!.initializer.find(t => t.name === name)
    return tensor === undefined ? null : tensor.dims.length
  }

  private initializerInts (name: string): number[] | undefined {
    const tensor = this.graph.model.graph!.initializer.find(t => t.name === name)
    return tensor === undefined ? undefined : tensorInts(tensor)
  }

  /** A value the module reads from outside itself: shared if row-independent, else re-derived for the invoke. */
  private external (module: string, name: string, invoke: number | null): string {
    if (name === '' || !this.index.perRow.has(name)) return name
    if (invoke === null) {
      throw new WeftError('PROGRAM_INVALID',
        `module_call: '${module}' needs per-row inputs ('${name}', e.g. its attention mask or positions) and its argument does not come from exactly one invoke`,
        { module, value: name })
    }
    return this.derive(name, invoke)
  }

  /** Re-computes a per-row value for one invoke's row alone: graph inputs sliced to the row and its length. */
  private derive (name: string, invoke: number): string {
    const key = `${invoke}:${name}`
    const known = this.context.get(key)
    if (known !== undefined) return known
    let made: string
    if (this.index.graphInputs.has(name)) {
      const b = this.sites.invokeBounds(invoke)
      const starts = this.emit.op('Concat', [b.rowStart, this.emit.int64([0])], { axis: 0 })
      const ends = this.emit.op('Concat', [b.rowEnd, b.length], { axis: 0 })
      made = this.emit.op('Slice', [name, starts, ends, this.emit.int64([0, 1])])
    } else {
      const p = this.index.producer.get(name)!
      const node = this.index.nodes[p]!
      const inputs = node.input.map(input => input === '' || !this.index.perRow.has(input) ? input : this.derive(input, invoke))
      const outputs = node.output.map(out => out === '' ? '' : this.emit.fresh(`row${invoke}.${out}`))
      this.emit.push(create(onnx.NodeProtoSchema, { ...node, name: this.emit.fresh(node.name), input: inputs, output: outputs }))
      node.output.forEach((out, k) => { if (out !== '') this.context.set(`${invoke}:${out}`, outputs[k]!) })
      made = outputs[node.output.indexOf(name)]!
    }
    this.context.set(key, made)
    return made
  }
}
