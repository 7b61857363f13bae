/**
 * Per-step slices of a generate Program: step s compiles a plain trace Program holding the nodes of step s, the
 * step-'all' templates and the constants they use; values of earlier steps enter as `const` nodes (carried from the
 * step that computed them), and hidden reads return the logits and the new KV cache to the loop.
 */
import { nodeSteps, type NodeStep, type Program, type ProgramNode, type Tensor, type ValueType } from '@weft/core'
import type { KvSpec } from '../graph/model-graph.js'
import { LOGITS_SITE, presentSite } from './gen-graph.js'

/** Internal save names start with NUL, which no recorded save name uses. */
const INTERNAL = '\u0000'
export const LOGITS_SAVE = `${INTERNAL}logits`
export const presentSave = (layer: number, part: 'key' | 'value'): string => `${INTERNAL}${part}.${layer}`
export const carrySave = (node: number): string => `${INTERNAL}carry.${node}`

/**
 * A step's Program and value types. User saves are renamed by their order in the slice (`saveNames` maps back), so
 * decode steps that differ only in save names and step attrs share one compiled graph.
 */
export interface StepSlice { program: Program; types: ValueType[]; saveNames: Map<string, string> }

export class GenerationPlan {
  readonly steps: NodeStep[]
  /** the last step that has nodes of its own (not counting 'all'); -1 when none */
  readonly lastStep: number
  /** nodes of step t whose values later steps use (saved at t, fed as constants after) */
  private readonly carried = new Set<number>()

  constructor (readonly program: Program, readonly types: readonly ValueType[], private readonly kv: KvSpec, private readonly vocab: number) {
    this.steps = nodeSteps(program).steps
    let last = -1
    for (const s of this.steps) if (typeof s === 'number' && s > last) last = s
    this.lastStep = last
    program.nodes.forEach(([, , inputs], i) => {
      const own = this.steps[i]!
      for (const n of inputs) {
        const from = this.steps[n]!
        if (typeof from === 'number' && (own === 'all' || (typeof own === 'number' && own > from))) this.carried.add(n)
      }
    })
  }

  /** The trace Program (and its value types) that step `step` compiles; `carry` gives earlier steps' carried values. */
  slice (step: number, carry: ReadonlyMap<number, Tensor>): StepSlice {
    const { program } = this
    const include = new Array<boolean>(program.nodes.length).fill(false)
    for (let i = program.nodes.length - 1; i >= 0; i--) {
      const s = this.steps[i]!
      // constants saved as they are (no step) belong to step 0
      if (s === step || s === 'all' || (s === null && step === 0 && program.nodes[i]![0] === 'save')) include[i] = true
      if (!include[i]) continue
      for (const n of program.nodes[i]![2]) if (this.steps[n] === null || this.steps[n] === step || this.steps[n] === 'all') include[n] = true
    }
    const nodes: ProgramNode[] = []
    const types: ValueType[] = []
    const index = new Map<number, number>()
    const constants = new Map<number, number>()
    const ref = (n: number): number => {
      const own = index.get(n)
      if (own !== undefined) return own
      let made = constants.get(n)
      if (made === undefined) {
        const value = carry.get(n)
        if (value === undefined) throw new Error(`internal: step ${step} needs node ${n} of step ${String(this.steps[n])}, which was not carried`)
        made = push(['const', { value: value as never }, []], { shape: [...value.shape], dtype: value.dtype })
        constants.set(n, made)
      }
      return made
    }
    const push = (node: ProgramNode, type: ValueType): number => { nodes.push(node); types.push(type); return nodes.length - 1 }
    const saveNames = new Map<string, string>()
    program.nodes.forEach(([op, attrs, inputs], i) => {
      if (!include[i]) return
      let own = attrs
      if (op === 'read' || op === 'write') { const { step: _step, ...rest } = attrs; own = rest }
      if (op === 'save') {
        const name = `${INTERNAL}save.${saveNames.size}`
        saveNames.set(name, attrs.name as string)
        own = { name }
      }
      index.set(i, push([op, own, inputs.map(ref)], this.types[i]!))
    })
    const hidden = (site: string, name: string, shape: (number | string)[]): void => {
      const read = push(['read', { site, port: 'output', invoke: 0 }, []], { shape, dtype: 'float32' })
      push(['save', { name }, [read]], { shape, dtype: 'float32' })
    }
    hidden(LOGITS_SITE, LOGITS_SAVE, ['rows', 'new', this.vocab])
    this.kv.layers.forEach((_, layer) => {
      for (const part of ['key', 'value'] as const) hidden(presentSite(layer, part), presentSave(layer, part), ['rows', this.kv.kvHeads, 'ctx', this.kv.headDim])
    })
    for (const n of this.carried) {
      if (this.steps[n] !== step) continue
      push(['save', { name: carrySave(n) }, [index.get(n)!]], this.types[n]!)
    }
    return { program: { version: program.version, model: program.model, mode: 'trace', invokes: program.invokes, nodes }, types, saveNames }
  }

  /** Nodes of step `step` whose values later steps use. */
  carriedAt (step: number): number[] { return [...this.carried].filter(n => this.steps[n] === step) }

  /** Whether the loop must run step `step` even when every row has stopped (it has nodes of its own, or later steps do). */
  needsStep (step: number): boolean { return step <= this.lastStep }
}
