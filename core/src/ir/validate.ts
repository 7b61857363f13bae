/** Static validation of a Program against a model manifest: reports every problem, and infers value types. */
import { WeftError } from '../errors/weft-error.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Program } from './program.js'
import type { InferContext, ValueType } from '../ops/types.js'
import { SYMBOLIC_DIM_ESTIMATE } from '../ops/types.js'
import { OPS, isOpName } from '../ops/table.js'
import { checkArity, checkAttrs } from '../ops/attrs.js'
import { programStructureProblems } from './structure.js'
import { checkCausality } from './causality.js'
import { checkGenerate } from './generate.js'
import { gradIssues } from '../ops/grad.js'
import { TRAIN_LOSS_SAVE, traceCount, traceProgram, trainSteps } from './session.js'

import type { ValidationIssue } from './issues.js'
export type { ValidationIssue } from './issues.js'

/** `types`: trace 0's node types; `traces`: every trace's (a session's later traces after the first). */
export interface ProgramAnalysis { issues: ValidationIssue[]; types: (ValueType | null)[]; traces?: (ValueType | null)[][] }

export function inferContext (program: Program, manifest: Manifest): InferContext {
  return {
    manifest,
    ...(program.params === undefined ? {} : { params: program.params }),
    seqLen (invoke: number): number | string {
      const entry = program.invokes[invoke]
      if (!Number.isInteger(invoke) || entry === undefined) {
        throw new WeftError('PROGRAM_INVALID', `invoke ${invoke} out of range (program has ${program.invokes.length} invoke${program.invokes.length === 1 ? '' : 's'})`)
      }
      return 'ids' in entry ? entry.ids.length : `seq@${invoke}`
    },
  }
}

function checkIds (program: Program, manifest: Manifest, issues: ValidationIssue[]): void {
  program.invokes.forEach((invoke, k) => {
    if (!('ids' in invoke)) return
    const bad = invoke.ids.find(id => id < 0 || id >= manifest.vocabSize)
    if (bad !== undefined) issues.push({ node: null, op: null, message: `invoke ${k}: token id ${bad} outside the vocabulary [0, ${manifest.vocabSize})` })
  })
  if (program.model.name !== manifest.name) {
    issues.push({ node: null, op: null, message: `program targets model '${program.model.name}' but the manifest is for '${manifest.name}'` })
  }
}

function inferNode (program: Program, i: number, types: (ValueType | null)[], ctx: InferContext, issues: ValidationIssue[]): ValueType | null {
  const [op, attrs, inputs] = program.nodes[i]!
  const add = (message: string): null => { issues.push({ node: i, op, message }); return null }
  if (!isOpName(op)) return add(`unknown op '${op}'`)
  const def = OPS[op]
  const problems = [checkArity(def, inputs.length), ...checkAttrs(def, attrs)].filter((p): p is string => p !== null)
  for (const input of inputs) {
    if (input < 0 || input >= i) problems.push(`${op}: input ${input} must refer to an earlier node (< ${i})`)
    else if (program.nodes[input]![0] === 'stop') problems.push(`${op}: input ${input} is a stop node, which has no value`)
  }
  if (problems.length > 0) return problems.forEach(add), null
  const inputTypes = inputs.map(n => types[n])
  if (inputTypes.some(t => t === null || t === undefined)) return null // an earlier issue already explains it
  try {
    return def.infer(attrs, inputTypes as ValueType[], ctx)
  } catch (error) {
    if (WeftError.is(error)) return add(error.message)
    throw error
  }
}

function checkSaves (program: Program, issues: ValidationIssue[], requireSave = true): void {
  const seen = new Map<string, number>()
  program.nodes.forEach(([op, attrs], i) => {
    if (op !== 'save' || typeof attrs.name !== 'string') return
    const first = seen.get(attrs.name)
    if (first !== undefined) issues.push({ node: i, op, message: `save: duplicate save name '${attrs.name}' (first saved at node ${first})` })
    else seen.set(attrs.name, i)
  })
  // a generate Program always returns its tokens (generated.<k>)
  if (requireSave && program.mode !== 'generate' && !program.nodes.some(([op]) => op === 'save')) issues.push({ node: null, op: null, message: 'program saves nothing: add at least one save node' })
}

/** Validates and infers; never throws for bad programs. */
export function analyzeProgram (program: unknown, manifest: Manifest): ProgramAnalysis {
  const structure = programStructureProblems(program)
  if (structure.length > 0) return { issues: structure.map(p => ({ ...p, op: null })), types: [] }
  const p = program as Program
  const analysis = p.then === undefined && p.train === undefined ? analyzeTrace(p, manifest, undefined, true) : analyzeSession(p, manifest)
  if (p.keep?.attach !== undefined) analysis.issues.push(...attachIssues(p, manifest))
  return analysis
}

/**
 * `keep.attach` against the model: a LoRA's module has an input and an output whose last dims match `a [in, r]` and
 * `b [r, out]`; a steering param broadcasts onto its site; a probe's `w [d, k]` reads a site whose last dim is d, its
 * `b` is `[k]`.
 */
function attachIssues (p: Program, manifest: Manifest): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  const ctx = inferContext(p, manifest)
  const shapeOf = (name: string): number[] => p.params![name]!.shape
  const site = (path: string, port: 'input' | 'output'): ValueType['shape'] | null => {
    try { return OPS.read.infer({ site: path, port, invoke: 0 }, [], ctx).shape } catch (error) {
      if (!WeftError.is(error)) throw error
      return null
    }
  }
  const last = (shape: ValueType['shape']): number | string => shape[shape.length - 1]!
  p.keep!.attach!.forEach((entry, k) => {
    const add = (message: string): void => { issues.push({ node: null, op: null, message: `keep.attach[${k}]: ${message}` }) }
    if ('lora' in entry) {
      const { module, a, b } = entry.lora
      const [x, y] = [site(module, 'input'), site(module, 'output')]
      if (x === null || y === null) return add(`lora: '${module}' is not a module of ${manifest.name} with an input and an output`)
      const [sa, sb] = [shapeOf(a), shapeOf(b)]
      if (sa.length !== 2 || sb.length !== 2 || sa[1] !== sb[0]) return add(`lora: a must be [in, rank] and b [rank, out], got a [${sa.join(', ')}], b [${sb.join(', ')}]`)
      if (last(x) !== sa[0]) add(`lora: a is [${sa.join(', ')}] but the input of '${module}' has ${last(x)} features`)
      if (last(y) !== sb[1]) add(`lora: b is [${sb.join(', ')}] but the output of '${module}' has ${last(y)} features`)
    } else if ('steer' in entry) {
      const { site: path, port, param } = entry.steer
      const shape = site(path, port)
      if (shape === null) return add(`steer: '${path}' (${port}) is not a site of ${manifest.name}`)
      const sp = shapeOf(param)
      const fits = sp.length <= shape.length && sp.every((d, i) => d === 1 || d === shape[shape.length - sp.length + i])
      if (!fits) add(`steer: param '${param}' [${sp.join(', ')}] does not broadcast onto '${path}' [${shape.join(', ')}]`)
    } else {
      const { site: path, port, w, b } = entry.probe
      const shape = site(path, port)
      if (shape === null) return add(`probe: '${path}' (${port}) is not a site of ${manifest.name}`)
      const sw = shapeOf(w)
      if (sw.length !== 2 || sw[0] !== last(shape)) return add(`probe: w must be [${last(shape)}, outputs] for '${path}', got [${sw.join(', ')}]`)
      if (b !== undefined && (shapeOf(b).length !== 1 || shapeOf(b)[0] !== sw[1])) add(`probe: b must be [${sw[1]}], got [${shapeOf(b).join(', ')}]`)
    }
  })
  return issues
}

/** A session (several traces) or a training Program: every trace, `from` references, the loss, save names across traces. */
function analyzeSession (p: Program, manifest: Manifest): ProgramAnalysis {
  const issues: ValidationIssue[] = []
  const traces: (ValueType | null)[][] = []
  const count = traceCount(p)
  for (let t = 0; t < count; t++) {
    const program = traceProgram(p, t)
    const fromValue = t === 0 ? undefined : (trace: number, node: number): ValueType => {
      if (!Number.isInteger(trace) || trace < 0 || trace >= t) throw new WeftError('PROGRAM_INVALID', `from: trace ${trace} is not an earlier trace (0..${t - 1})`)
      const source = traceProgram(p, trace)
      if (source.mode !== 'trace') throw new WeftError('PROGRAM_INVALID', `from: trace ${trace} is a ${source.mode} trace; only values of trace-mode traces can be used`)
      const entry = source.nodes[node]
      if (!Number.isInteger(node) || entry === undefined) throw new WeftError('PROGRAM_INVALID', `from: trace ${trace} has no node ${node}`)
      if (entry[0] === 'stop') throw new WeftError('PROGRAM_INVALID', `from: node ${node} of trace ${trace} is a stop node, which has no value`)
      const type = traces[trace]![node]
      if (type === null || type === undefined) throw new WeftError('PROGRAM_INVALID', `from: node ${node} of trace ${trace} has no valid value (see its own issue)`)
      return type
    }
    const analysis = analyzeTrace(program, manifest, fromValue, false)
    traces.push(analysis.types)
    for (const issue of analysis.issues) issues.push(t === 0 ? issue : { ...issue, trace: t, message: `then[${t - 1}]: ${issue.message}` })
  }
  const train = p.train
  if (train !== undefined) {
    const type = traces[0]![train.loss]
    const op = p.nodes[train.loss]![0]
    if (type !== null && type !== undefined && (!['float32', 'float64', 'float16', 'bfloat16'].includes(type.dtype) || !type.shape.every(d => d === 1))) {
      issues.push({ node: train.loss, op, message: `train.loss: node ${train.loss} must be a scalar float (shape [] or all dims 1), got ${type.dtype} [${type.shape.join(', ')}]: reduce it first (mean, sum)` })
    }
    if (p.nodes.some(([o]) => o === 'stop')) issues.push({ node: null, op: null, message: 'train: a training Program may not stop early (the backward pass needs the whole forward)' })
  }
  const seen = new Map<string, number>()
  let saves = 0
  for (let t = 0; t < count; t++) {
    traceProgram(p, t).nodes.forEach(([op, attrs], i) => {
      if (op !== 'save' || typeof attrs.name !== 'string') return
      saves++
      if (attrs.name === TRAIN_LOSS_SAVE) issues.push({ node: i, op, message: `save: the name '${TRAIN_LOSS_SAVE}' is reserved for the loss curve`, ...(t === 0 ? {} : { trace: t }) })
      const first = seen.get(attrs.name)
      if (first !== undefined && first !== t) issues.push({ node: i, op, message: `save: save name '${attrs.name}' is also used by trace ${first}; names are unique across a session`, ...(t === 0 ? {} : { trace: t }) })
      else seen.set(attrs.name, t)
    })
  }
  const generates = [0, ...(p.then ?? []).map((_, k) => k + 1)].some(t => traceProgram(p, t).mode === 'generate')
  if (saves === 0 && train === undefined && !generates) issues.push({ node: null, op: null, message: 'session saves nothing: add at least one save node' })
  issues.sort((a, b) => ((a.trace ?? 0) - (b.trace ?? 0)) || ((a.node ?? -1) - (b.node ?? -1)))
  return { issues, types: traces[0]!, traces }
}

/** One trace (a plain Program): op types, saves, causality, generate rules, gradients. */
function analyzeTrace (p: Program, manifest: Manifest, fromValue: InferContext['fromValue'], requireSave: boolean): ProgramAnalysis {
  const issues: ValidationIssue[] = []
  checkIds(p, manifest, issues)
  const ctx = inferContext(p, manifest)
  if (fromValue !== undefined) ctx.fromValue = fromValue
  const types: (ValueType | null)[] = []
  p.nodes.forEach((_, i) => types.push(inferNode(p, i, types, ctx, issues)))
  checkSaves(p, issues, requireSave)
  if (p.mode !== 'generate') issues.push(...checkCausality(p, manifest))
  issues.push(...checkGenerate(p, manifest))
  issues.push(...gradIssues(p))
  for (const issue of issues) {
    const location = issue.node === null ? null : p.locations?.[issue.node]
    if (location !== null && location !== undefined) issue.location = location
  }
  issues.sort((a, b) => (a.node ?? -1) - (b.node ?? -1))
  return { issues, types }
}

export function validateProgram (program: unknown, manifest: Manifest): ValidationIssue[] {
  return analyzeProgram(program, manifest).issues
}

function formatIssue (issue: ValidationIssue): string {
  const where = issue.location?.file !== undefined ? ` at ${issue.location.file}:${issue.location.line ?? '?'}` : ''
  return issue.node === null ? issue.message : `node ${issue.node}${where}: ${issue.message}`
}

function throwIssues (issues: ValidationIssue[]): never {
  const head = issues.slice(0, 3).map(formatIssue).join('; ')
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : ''
  throw new WeftError('PROGRAM_INVALID', `invalid program: ${head}${more}`, { issues })
}

export function assertValidProgram (program: unknown, manifest: Manifest): asserts program is Program {
  const issues = validateProgram(program, manifest)
  if (issues.length > 0) throwIssues(issues)
}

/**
 * Validates and infers once, for callers that go on to cost, scan or run the Program: its analysis (node types of
 * every trace), to hand to `programCost` and the engine instead of analysing again. Throws PROGRAM_INVALID (with
 * `details.issues`) for an invalid program, like assertValidProgram.
 */
export function analyzeValidProgram (program: unknown, manifest: Manifest): ProgramAnalysis {
  const analysis = analyzeProgram(program, manifest)
  if (analysis.issues.length > 0) throwIssues(analysis.issues)
  return analysis
}

/** The value type of every node; throws PROGRAM_INVALID (with `details.issues`) for an invalid program. */
export function inferProgramTypes (program: Program, manifest: Manifest): ValueType[] {
  const { issues, types } = analyzeProgram(program, manifest)
  if (issues.length > 0) throwIssues(issues)
  return types as ValueType[]
}

/**
 * Sum of the op cost estimates of a valid program (for host-side cost limits). A session sums its traces; a
 * training Program adds `trainingCost` (steps × (forward + backward)). `analysis`: the Program's own, from
 * analyzeValidProgram (not analysed again); without it the Program is analysed here.
 */
export function programCost (program: Program, manifest: Manifest, analysis: ProgramAnalysis = analyzeValidProgram(program, manifest)): number {
  if (analysis.issues.length > 0) throwIssues(analysis.issues)
  const traces = analysis.traces ?? [analysis.types]
  let total = 0
  traces.forEach((types, t) => {
    const trace = traceProgram(program, t)
    const ctx = inferContext(trace, manifest)
    total += trace.nodes.reduce((sum, [op, attrs, inputs]) => sum + OPS[op as keyof typeof OPS].cost(attrs, inputs.map(n => types[n]!), ctx), 0)
  })
  return total + trainingCost(program, manifest, analysis.types as ValueType[])
}

/**
 * Estimated float ops of a training loop: per step, the forward of the model over the step's tokens (2 × parameters
 * × tokens), its backward (2× the forward) and the first trace's own ops; 0 without `train`. Text invokes count as
 * SYMBOLIC_DIM_ESTIMATE tokens. `types`: the first trace's node types when already inferred.
 */
export function trainingCost (program: Program, manifest: Manifest, types?: readonly ValueType[]): number {
  const steps = trainSteps(program)
  if (steps === 0) return 0
  const tokens = (invokes: Program['invokes']): number => invokes.reduce((n, inv) => n + ('ids' in inv ? inv.ids.length : SYMBOLIC_DIM_ESTIMATE), 0)
  const batches = program.train!.batches ?? [program.invokes]
  const perEpoch = batches.reduce((n, b) => n + tokens(b), 0) / batches.length
  const nodeTypes = types ?? inferProgramTypes(program, manifest)
  const ctx = inferContext(program, manifest)
  const ops = program.nodes.reduce((sum, [op, attrs, inputs]) => sum + OPS[op as keyof typeof OPS].cost(attrs, inputs.map(n => nodeTypes[n]!), ctx), 0)
  return Math.ceil(steps * (3 * 2 * manifest.parameters * perEpoch + 2 * ops))
}
