/**
 * `module_call`: clones a module's subgraph (nodes whose `weft.scope` is the module or below it) with fresh
 * value names, substituting the module's input with the argument. Weights stay shared initializers. Per-row
 * side inputs (attention mask, positions) are re-derived for the argument's invoke, or the call is refused.
 */
import { create } from '@bufbuild/protobuf'
import { WeftError } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import type { ModelGraph } from '../graph/model-graph.js'
import type { Emitter } from './emitter.js'
import { graphIndex, inScope, type GraphIndex } from './graph-index.js'
import type { SiteAccess } from './sites.js'

export class ModuleCaller {
  private readonly index: GraphIndex
  private readonly context = new Map<string, string>()

  constructor (private readonly emit: Emitter, private readonly graph: ModelGraph, private readonly sites: SiteAccess) {
    this.index = graphIndex(graph)
  }

  /** Applies `module` to `arg`; `invoke` is the single invoke the argument derives from, if any. */
  call (module: string, arg: string, invoke: number | null): string {
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
    const renamed = new Map<string, string>([[binding.input, arg]])
    for (const i of members) {
      if (!needed.has(i)) continue
      const node = nodes[i]!
      const inputs = node.input.map(name => renamed.get(name) ?? this.external(module, name, invoke))
      const outputs = node.output.map(name => name === '' ? '' : this.emit.fresh(`${module}.${name}`))
      node.output.forEach((name, k) => renamed.set(name, outputs[k]!))
      this.emit.push(create(onnx.NodeProtoSchema, { ...node, name: this.emit.fresh(node.name), input: inputs, output: outputs }))
    }
    return renamed.get(binding.output)!
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
