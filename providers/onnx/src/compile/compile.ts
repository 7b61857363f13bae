/**
 * The intervention compiler: splices the Programs of a batch into the model graph (reads slice rows, writes
 * rewire consumers, tensor ops become nodes, constants become inputs, module calls clone subgraphs) and
 * prunes the result to what the saves need. Output: an ONNX model plus the feeds and saves to bind it.
 */
import { create } from '@bufbuild/protobuf'
import { WeftError, inferProgramTypes } from '@weft/core'
import type { DType, IndexItem, Program, SitePort, Tensor } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import type { ModelGraph } from '../graph/model-graph.js'
import { Emitter, valueInfo } from './emitter.js'
import { graphIndex, inScope } from './graph-index.js'
import { rowOf, type BatchLayout, type FeedSpec } from './layout.js'
import { ModuleCaller } from './module-call.js'
import { GradientPlan } from './grad/plan.js'
import { prune } from './prune.js'
import { planSharedCalls } from './shared-calls.js'
import { SiteAccess } from './sites.js'
import { structureKey } from './structure-key.js'
import { TENSOR_LOWERINGS, type Lowered, type LoweredOpName, type ValueTypeLike } from './tensor-ops.js'

export interface CompileJob { program: Program; types?: ValueTypeLike[] }
interface SaveSpec { output: string; job: number; name: string; node: number; dtype: DType }
export interface CompiledProgram {
  key: string
  model: onnx.ModelProto
  feeds: FeedSpec[]
  saves: SaveSpec[]
  /** true when some save exposes a weight (`param`); policies may forbid it */
  readsWeights: boolean
  /** ONNX node name → `job:node` of the Program node it lowers */
  origins: Map<string, string>
}

interface JobState { values: string[]; invokes: (Set<number> | null)[] }

/** Compiles the jobs' Programs (rows per `layout`) into one graph; throws a WeftError naming the node on failure. */
export interface CompileOptions {
  /**
   * The graph's 'seq' axes are exactly the layout's padded length (true of the built and imported forward graphs,
   * not of KV-cache graphs): then a one-row batch needs no row slicing or scattering, its row is the whole tensor.
   */
  rowsAreWhole?: boolean
}

export function compile (graph: ModelGraph, jobs: readonly CompileJob[], layout: BatchLayout, options: CompileOptions = {}): CompiledProgram {
  const opset = Number(graph.model.opsetImport.find(o => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 17n)
  const emit = new Emitter('weft.', opset)
  const sites = new SiteAccess(emit, graph, options.rowsAreWhole === true && layout.rows.length === 1)
  const caller = new ModuleCaller(emit, graph, sites)
  const grads = new GradientPlan(emit, graph, sites)
  const feeds: FeedSpec[] = []
  const saves: SaveSpec[] = []
  let readsWeights = false
  const paramInputs = new Map<string, string>()
  const allTypes = jobs.map(job => job.types ?? inferProgramTypes(job.program, graph.manifest))
  const shared = planSharedCalls(jobs.map(job => job.program), allTypes, caller, graph.manifest)
  jobs.forEach((job, j) => {
    const types = allTypes[j]!
    const state: JobState = { values: [], invokes: [] }
    job.program.nodes.forEach((node, i) => {
      emit.origin = `${j}:${i}`
      try {
        const [op, attrs, inputs] = node
        const invoke = (attrs.invoke as number | undefined) ?? 0
        const row = op === 'read' || op === 'write' ? rowOf(layout, j, invoke) : -1
        state.invokes.push(row >= 0 ? new Set([row]) : mergeInvokes(inputs.map(n => state.invokes[n] ?? null)))
        const input = (n: number): Lowered => ({ name: state.values[n]!, type: types[n]! })
        const site = attrs.site as string
        const port = (attrs.port ?? 'output') as SitePort
        let value: string
        if (op === 'read') {
          value = sites.read(site, port, row)
          grads.noteRead(j, job.program, i, site, port, row)
        } else if (op === 'write') {
          const x = input(inputs[0]!)
          const target = sites.info(site, port)
          value = sites.write(site, port, row,
            emit.cast(x.name, x.type.dtype, target.dtype), x.type.shape.length, attrs.index as IndexItem[] | undefined)
        } else if (op === 'module_call') {
          const set = state.invokes[i]
          const slot = shared.slots.get(`${j}:${i}`)
          if (slot === undefined) value = caller.call(attrs.module as string, state.values[inputs[0]!]!, set !== null && set.size === 1 ? [...set][0]! : null)
          else {
            slot.call.args[slot.index] = state.values[inputs[0]!]!
            value = caller.unflatten(slot.call.outputs[slot.index]!, state.values[inputs[0]!]!)
          }
        } else if (op === 'param') {
          const entry = graph.params.get(attrs.name as string)
          if (entry === undefined) throw new WeftError('PROGRAM_INVALID', `param: unknown parameter '${String(attrs.name)}'`)
          value = entry.transpose === undefined ? emit.op('Identity', [entry.initializer]) : emit.op('Transpose', [entry.initializer], { perm: entry.transpose })
          readsWeights = true
        } else if (op === 'const') {
          const tensor = attrs.value as unknown as Tensor
          value = emit.input(`job${j}.const${i}`, tensor.dtype, tensor.shape.map((_, d) => `weft.job${j}.const${i}.d${d}`))
          feeds.push({ kind: 'const', name: value, job: j, node: i })
        } else if (op === 'trainable') {
          const decl = job.program.params?.[attrs.name as string]
          if (decl === undefined) throw new WeftError('PROGRAM_INVALID', `trainable: '${String(attrs.name)}' is not a declared param`)
          // every use of one param is the same graph input (so a gradient sums over all of them)
          const key = `${j}:${attrs.name as string}`
          const known = paramInputs.get(key)
          if (known !== undefined) value = known
          else {
            value = emit.input(`job${j}.param.${attrs.name as string}`, decl.dtype, [...decl.shape])
            paramInputs.set(key, value)
            feeds.push({ kind: 'trainable', name: value, job: j, param: attrs.name as string })
          }
        } else if (op === 'from') {
          throw new WeftError('INTERNAL', 'from: session values are bound by the session runner before compiling')
        } else if (op === 'grad') value = grads.request(j, i, job.program, state.values, types[i]!.dtype)
        else if (op === 'stop') value = ''
        else if (op === 'save') {
          value = emit.op('Identity', [state.values[inputs[0]!]!])
          saves.push({ output: value, job: j, name: attrs.name as string, node: i, dtype: types[i]!.dtype })
        } else {
          const lowering = TENSOR_LOWERINGS[op as LoweredOpName]
          if (lowering === undefined) throw new WeftError('BACKEND_CAPABILITY_MISSING', `op '${op}' has no ONNX lowering`)
          value = lowering(emit, attrs, inputs.map(input), types[i]!)
        }
        state.values.push(value)
      } catch (error) {
        throw nodeError(error, job.program, j, i)
      }
    })
  })
  for (const call of shared.calls) {
    emit.origin = `${call.job}:${call.nodes[0]!}`
    try {
      caller.callRows(call.module, call.args, call.width, call.outputs, call.withBase)
    } catch (error) {
      throw nodeError(error, jobs[call.job]!.program, call.job, call.nodes[0]!)
    }
  }
  emit.origin = ''
  for (const [row, name] of sites.boundsInputs) feeds.push({ kind: 'bounds', name, row })
  const model = assemble(graph, emit, sites, saves, caller.replacedBase, grads)
  const used = new Set(model.graph!.input.map(v => v.name))
  const modelInputs: FeedSpec[] = [
    { kind: 'input_ids', name: graph.inputs.inputIds },
    { kind: 'attention_mask', name: graph.inputs.attentionMask },
    ...(graph.inputs.positionIds === undefined ? [] : [{ kind: 'position_ids' as const, name: graph.inputs.positionIds }]),
  ]
  return {
    key: structureKey(jobs),
    model,
    feeds: [...modelInputs, ...feeds].filter(f => used.has(f.name)),
    saves,
    readsWeights,
    origins: emit.origins,
  }
}

function mergeInvokes (sets: (Set<number> | null)[]): Set<number> | null {
  const out = new Set<number>()
  for (const set of sets) { if (set === null) return null; for (const v of set) out.add(v) }
  return out
}

/** Wraps a lowering failure as a typed error naming the job, node, op and source location. */
function nodeError (error: unknown, program: Program, job: number, node: number): WeftError {
  const op = program.nodes[node]![0]
  const location = program.locations?.[node] ?? null
  const details = { job, node, op, ...(location === null ? {} : { location }) }
  if (WeftError.is(error)) return new WeftError(error.code, `node ${node} (${op}): ${error.message}`, { ...error.details, ...details })
  return new WeftError('INTERNAL', `node ${node} (${op}): ${error instanceof Error ? error.message : String(error)}`, details, { cause: error })
}

/** Rewires the base graph's consumers to written values (dropping base nodes a shared call took over), appends the edit nodes, sets the saves as outputs, prunes. */
function assemble (graph: ModelGraph, emit: Emitter, sites: SiteAccess, saves: SaveSpec[], replaced: ReadonlySet<number>, grads: GradientPlan): onnx.ModelProto {
  const base = graph.model.graph!
  const index = graphIndex(graph)
  const rewired = base.node.flatMap((node, i) => {
    if (replaced.has(i)) return []
    let changed = false
    const inputs = node.input.map(name => {
      for (const [module, override] of sites.inputOverrides) {
        if (name === override.base && inScope(index.scope[i]!, module)) { changed = true; return override.current }
      }
      const next = sites.valueOverrides.get(name)
      if (next !== undefined) { changed = true; return next }
      return name
    })
    return [changed ? create(onnx.NodeProtoSchema, { ...node, input: inputs }) : node]
  })
  // gradients differentiate the final, rewired graph (every write in force)
  if (grads.pending) grads.emitBackward([...rewired, ...emit.nodes], [...base.input, ...emit.inputs], [...base.initializer, ...emit.initializers])
  const outputs = saves.map(save => valueInfo(save.output, save.dtype, null))
  const graphProto = create(onnx.GraphProtoSchema, {
    ...base,
    node: [...rewired, ...emit.nodes],
    input: [...base.input, ...emit.inputs],
    initializer: [...base.initializer, ...emit.initializers],
    output: outputs,
  })
  return create(onnx.ModelProtoSchema, { ...graph.model, graph: prune(graphProto) })
}
