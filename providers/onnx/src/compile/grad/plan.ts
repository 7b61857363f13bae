/**
 * The compiler's gradient hook: `grad` nodes lower to placeholder values; once the spliced graph is assembled
 * (every write rewired), one backward pass per distinct `of` produces them. Reads map to their row of the batch
 * tensor; parameters to every initializer copy of the weight (tied and transposed copies included).
 */
import { WeftError, type DType, type Program, type SitePort, type SourceLocation } from '@weft/core'
import type { onnx } from '../../graph/onnx.js'
import type { ModelGraph } from '../../graph/model-graph.js'
import type { Emitter } from '../emitter.js'
import type { SiteAccess } from '../sites.js'
import { topoOrder } from '../graph-index.js'
import { GradBuilder } from './builder.js'
import { ShapeTable } from './shapes.js'
import { backward } from './backward.js'

interface ReadSource { tensor: string; site: string; port: SitePort; row: number }
interface Copy { tensor: string; perm?: number[] }
type Target = { kind: 'read'; read: ReadSource } | { kind: 'param'; name: string } | { kind: 'input'; tensor: string }

interface Request {
  job: number
  node: number
  of: string
  target: Target
  /** the lowered value of the `wrt` node (shape source for a zero gradient) */
  wrtValue: string
  dtype: DType
  output: string
  location: SourceLocation | null
}

/** Initializers holding parameter `name`: its binding plus the `<name>` / `<name>:T` copies built graphs keep. */
function paramCopies (graph: ModelGraph, name: string, initializers: ReadonlySet<string>): Copy[] {
  const binding = graph.params.get(name)
  if (binding === undefined) throw new WeftError('PROGRAM_INVALID', `grad: unknown parameter '${name}'`)
  const copies: Copy[] = [{ tensor: binding.initializer, ...(binding.transpose === undefined ? {} : { perm: binding.transpose }) }]
  const source = binding.initializer.endsWith(':T') ? binding.initializer.slice(0, -2) : binding.initializer
  for (const extra of [{ tensor: source }, { tensor: `${source}:T`, perm: [1, 0] }]) {
    if (initializers.has(extra.tensor) && !copies.some(c => c.tensor === extra.tensor)) copies.push(extra)
  }
  return copies
}

export class GradientPlan {
  private readonly reads = new Map<string, ReadSource>()
  private readonly requests: Request[] = []
  private readonly wrtReads = new WeakMap<Program, Set<number>>()

  constructor (private readonly emit: Emitter, private readonly graph: ModelGraph, private readonly sites: SiteAccess) {}

  get pending (): boolean { return this.requests.length > 0 }

  private wrtOf (program: Program): Set<number> {
    let set = this.wrtReads.get(program)
    if (set === undefined) {
      set = new Set(program.nodes.flatMap(([op, , inputs]) => op === 'grad' && inputs[1] !== undefined ? [inputs[1]] : []))
      this.wrtReads.set(program, set)
    }
    return set
  }

  /** Called after each `read` is lowered: remembers which batch tensor it sliced, if a `grad` needs it. */
  noteRead (job: number, program: Program, node: number, site: string, port: SitePort, row: number): void {
    if (!this.wrtOf(program).has(node)) return
    this.reads.set(`${job}:${node}`, { tensor: this.sites.current(site, port), site, port, row })
  }

  /** Lowers a `grad` node to a placeholder the backward pass will produce. */
  request (job: number, node: number, program: Program, values: readonly string[], dtype: DType): string {
    const [, , [of, wrt]] = program.nodes[node]!
    const [op, attrs] = program.nodes[wrt!]!
    let target: Target
    if (op === 'read') {
      const read = this.reads.get(`${job}:${wrt}`)
      if (read === undefined) throw new WeftError('INTERNAL', `grad: read node ${wrt} was not recorded`)
      target = { kind: 'read', read }
    } else if (op === 'param') {
      target = { kind: 'param', name: attrs.name as string }
    } else if (op === 'trainable') {
      target = { kind: 'input', tensor: values[wrt!]! }
    } else {
      throw new WeftError('PROGRAM_INVALID', `grad: wrt must be a read, param or trainable node, got ${op}`)
    }
    const output = this.emit.fresh('grad')
    this.requests.push({ job, node, of: values[of!]!, target, wrtValue: values[wrt!]!, dtype, output, location: program.locations?.[node] ?? null })
    return output
  }

  /** Appends the backward nodes for every request to the emitter. `forward` is the assembled, rewired graph. */
  emitBackward (forward: readonly onnx.NodeProto[], inputs: readonly onnx.ValueInfoProto[], initializers: readonly onnx.TensorProto[]): void {
    const shapes = new ShapeTable(inputs, initializers, topoOrder(forward))
    const b = new GradBuilder(this.emit, shapes)
    const names = new Set(initializers.map(t => t.name))
    const groups = new Map<string, Request[]>()
    for (const r of this.requests) groups.set(r.of, [...(groups.get(r.of) ?? []), r])
    for (const [of, group] of groups) {
      const first = group[0]!
      this.emit.origin = `${first.job}:${first.node}`
      try {
        const copies = group.map(r => r.target.kind === 'read' ? [{ tensor: r.target.read.tensor }] as Copy[]
          : r.target.kind === 'input' ? [{ tensor: r.target.tensor }] : paramCopies(this.graph, r.target.name, names))
        const grads = backward({ nodes: forward, b, of, wrt: [...new Set(copies.flat().map(c => c.tensor))] })
        group.forEach((r, k) => {
          const parts = copies[k]!.flatMap(c => {
            const g = grads.get(c.tensor) ?? null
            return g === null ? [] : [c.perm === undefined ? g : b.op('Transpose', [g], { perm: c.perm })]
          })
          let value = parts.length === 0 ? b.zerosLike(r.wrtValue, r.dtype) : b.sum(parts)
          if (parts.length > 0 && r.target.kind === 'read') {
            const { site, port, row } = r.target.read
            value = this.sites.view(value, this.sites.info(site, port), row)
          }
          this.emit.node('Identity', [value], {}, [r.output])
        })
      } catch (error) {
        throw wrap(error, first)
      } finally {
        this.emit.origin = ''
      }
    }
  }
}

function wrap (error: unknown, r: Request): WeftError {
  const details = { job: r.job, node: r.node, op: 'grad', ...(r.location === null ? {} : { location: r.location }) }
  if (WeftError.is(error)) return new WeftError(error.code, `node ${r.node} (grad): ${error.message}`, { ...error.details, ...details })
  return new WeftError('INTERNAL', `node ${r.node} (grad): ${error instanceof Error ? error.message : String(error)}`, details, { cause: error })
}
