/**
 * Sessions and training (spec/program.md, Sessions and training) on the onnx engine: params resolved to tensors,
 * the training loop (one compiled forward+backward graph fed each step's params; the optimizer update in TypeScript
 * on float32, core's Optimizer), then trace 0 with the final params, then every later trace with `from` values bound
 * as constants (they never leave the engine). One job at a time; one JobResult with every trace's saves.
 */
import {
  Optimizer, TRAIN_CHECKPOINT_STAGE, TRAIN_LOSS_SAVE, WeftError, assertValidProgram, initParam, traceCount, traceProgram, trainBatch, trainSteps,
  type BatchJob, type Invoke, type JobResult, type Manifest, type ParamDecl, type Program, type ProgramNode, type RunOptions, type Tensor,
  type TrainingCheckpoint, type TrainingReport,
} from '@weft/core'

/** What the runner needs from the model handle. */
export interface SessionBackend {
  manifest: Manifest
  tokenize (text: string): number[]
  /** runs one trace-mode Program alone (no cancellation inside); its saves */
  runTrace (program: Program): Promise<{ saves: Record<string, Tensor>; cacheHit: boolean }>
  /** runs one generate-mode Program */
  runGenerate (program: Program, options: RunOptions): Promise<JobResult>
}

const LOSS = '\u0000loss'
const gradSave = (name: string): string => `\u0000grad.${name}`
const fromSave = (node: number): string => `\u0000from.${node}`

/** Does this Program need the session runner (params, training, keeping or later traces)? */
export function isSessionProgram (program: Program): boolean {
  return program !== null && typeof program === 'object' && (program.params !== undefined || program.train !== undefined || program.keep !== undefined || program.then !== undefined)
}

function resolveInvokes (invokes: Invoke[], tokenize: (text: string) => number[]): Invoke[] {
  return invokes.map(invoke => 'text' in invoke ? { ids: tokenize(invoke.text) } : invoke)
}

/** Text invokes of every trace and batch tokenized. */
function resolveTexts (program: Program, tokenize: (text: string) => number[]): Program {
  const out: Program = { ...program, invokes: resolveInvokes(program.invokes, tokenize) }
  if (program.train?.batches !== undefined) out.train = { ...program.train, batches: program.train.batches.map(b => resolveInvokes(b, tokenize)) }
  if (program.then !== undefined) out.then = program.then.map(t => ({ ...t, invokes: resolveInvokes(t.invokes, tokenize) }))
  return out
}

const aborted = (options: RunOptions): boolean => options.signal?.aborted === true

const asTensorDecl = (decl: ParamDecl, value: Tensor): ParamDecl => ({ shape: decl.shape, dtype: decl.dtype, init: { tensor: value } })

export class SessionRunner {
  constructor (private readonly backend: SessionBackend) {}

  async run (job: BatchJob, options: RunOptions = {}): Promise<JobResult> {
    const started = performance.now()
    let cacheHit = true
    const trace = async (program: Program): Promise<Record<string, Tensor>> => {
      const out = await this.backend.runTrace(program)
      cacheHit &&= out.cacheHit
      return out.saves
    }
    try {
      if (job.program === null || typeof job.program !== 'object') throw new WeftError('PROGRAM_INVALID', 'not a Program')
      const program = resolveTexts(job.program, text => this.backend.tokenize(text))
      assertValidProgram(program, this.backend.manifest)
      const decls = program.params ?? {}
      const values: Record<string, Tensor> = {}
      for (const [name, decl] of Object.entries(decls)) values[name] = initParam(name, decl)
      const withParams = (p: Program): Program => Object.keys(decls).length === 0 ? p
        : { ...p, params: Object.fromEntries(Object.entries(decls).map(([n, d]) => [n, asTensorDecl(d, values[n]!)])) }
      if (aborted(options)) throw new WeftError('JOB_CANCELLED', 'the session was cancelled before it ran')

      const saves: Record<string, Tensor> = {}
      let training: TrainingReport | undefined
      if (program.train !== undefined) {
        training = await this.train(job, program, values, withParams, trace, options)
        saves[TRAIN_LOSS_SAVE] = { dtype: 'float32', shape: [training.completed], data: Float32Array.from(training.losses) }
      }
      const cancelled = training !== undefined && training.cancelled
      // values of earlier traces that later traces use, by trace
      const wanted = new Map<number, Set<number>>()
      for (let t = 1; t < traceCount(program); t++) {
        for (const [op, attrs] of traceProgram(program, t).nodes) {
          if (op !== 'from') continue
          const set = wanted.get(attrs.trace as number) ?? new Set<number>()
          set.add(attrs.node as number)
          wanted.set(attrs.trace as number, set)
        }
      }
      const carried = new Map<string, Tensor>()
      for (let t = 0; t < traceCount(program) && !cancelled; t++) {
        if (t > 0 && aborted(options)) throw new WeftError('JOB_CANCELLED', `the session was cancelled before trace ${t}`)
        const source = traceProgram(program, t)
        const keep = wanted.get(t) ?? new Set<number>()
        const hasSaves = source.nodes.some(([op]) => op === 'save')
        if (source.mode === 'trace' && !hasSaves && keep.size === 0) continue
        const nodes: ProgramNode[] = source.nodes.map(([op, attrs, inputs]) => op === 'from'
          ? ['const', { value: carried.get(`${attrs.trace as number}:${attrs.node as number}`)! as never }, []]
          : [op, attrs, inputs])
        for (const node of keep) nodes.push(['save', { name: fromSave(node) }, [node]])
        const { locations, ...plain } = source
        const located = locations === undefined ? plain : { ...plain, locations: [...locations, ...nodes.slice(locations.length).map(() => null)] }
        if (source.mode === 'generate') {
          // the generator binds constants; params become constants of their final values
          const gen = nodes.map(([op, attrs, inputs]): ProgramNode => op === 'trainable' ? ['const', { value: values[attrs.name as string]! as never }, []] : [op, attrs, inputs])
          const { params: _p, ...rest } = located
          const result = await this.backend.runGenerate({ ...rest, nodes: gen }, { ...(options.signal === undefined ? {} : { signal: options.signal }) })
          if (!result.ok) return { ...result, id: job.id }
          Object.assign(saves, result.saves)
          continue
        }
        const out = await trace(withParams({ ...located, nodes }))
        for (const [name, tensor] of Object.entries(out)) {
          if (name.startsWith('\u0000from.')) carried.set(`${t}:${name.slice(6)}`, tensor)
          else saves[name] = tensor
        }
      }
      const saveBytes = Object.values(saves).reduce((n, s) => n + s.data.byteLength, 0)
      return {
        id: job.id, ok: true, saves, stats: { runMs: performance.now() - started, cacheHit, saveBytes },
        ...(Object.keys(decls).length === 0 ? {} : { params: values }),
        ...(training === undefined ? {} : { training }),
      }
    } catch (error) {
      const wrapped = WeftError.is(error) ? error : new WeftError('EXECUTION_FAILED', `session failed: ${error instanceof Error ? error.message : String(error)}`, {}, { cause: error })
      return { id: job.id, ok: false, error: wrapped.toWire() }
    }
  }

  /**
   * The loop: per step, loss and gradients from one run of trace 0 + backward, then the optimizer update. With
   * `job.resume` it starts after the checkpoint's step from its params and optimizer state; with `job.checkpoint` it
   * reports checkpoints (copies of that state) at that cadence.
   */
  private async train (job: BatchJob, program: Program, values: Record<string, Tensor>, withParams: (p: Program) => Program,
    trace: (p: Program) => Promise<Record<string, Tensor>>, options: RunOptions): Promise<TrainingReport> {
    const train = program.train!
    const steps = trainSteps(program)
    const perEpoch = train.batches?.length ?? 1
    const base = traceProgram(program, 0)
    // user saves are not outputs of the step graph: an empty index is the identity
    const nodes: ProgramNode[] = base.nodes.map(([op, attrs, inputs]) => op === 'save' ? ['index', { index: [] }, inputs] : [op, attrs, inputs])
    const { locations, ...rest } = base
    const stepBase: Program = locations === undefined ? rest : { ...rest, locations: [...locations] }
    for (const name of train.params) {
      nodes.push(['trainable', { name }, []])
      nodes.push(['grad', {}, [train.loss, nodes.length - 1]])
      nodes.push(['save', { name: gradSave(name) }, [nodes.length - 1]])
    }
    nodes.push(['save', { name: LOSS }, [train.loss]])
    if (stepBase.locations !== undefined) while (stepBase.locations.length < nodes.length) stepBase.locations.push(null)
    const optimizer = new Optimizer(train.optimizer)
    const losses: number[] = []
    let first = 0
    if (job.resume !== undefined) {
      checkResume(job.resume, program, values, steps)
      for (const name of train.params) (values[name]!.data as Float32Array).set(job.resume.params[name]!.data as Float32Array)
      optimizer.load(job.resume.optimizer)
      losses.push(...job.resume.losses)
      first = job.resume.step
    }
    const cadence = job.checkpoint
    let lastStep = first
    let lastAt = performance.now()
    let cancelled = false
    for (let step = first; step < steps; step++) {
      if (aborted(options)) { cancelled = true; break }
      const out = await trace(withParams({ ...stepBase, invokes: trainBatch(program, step), nodes }))
      const loss = Number(out[LOSS]!.data[0])
      const params: Record<string, Float32Array> = {}
      const grads: Record<string, ArrayLike<number>> = {}
      for (const name of train.params) {
        params[name] = values[name]!.data as Float32Array
        grads[name] = out[gradSave(name)]!.data as Float32Array
      }
      optimizer.update(params, grads)
      losses.push(loss)
      options.onProgress?.({ stage: 'train-step', detail: { step: step + 1, steps, epoch: Math.floor(step / perEpoch) + 1, loss } })
      if (cadence !== undefined && cadence.everySteps > 0 && step + 1 < steps && step + 1 - lastStep >= cadence.everySteps && performance.now() - lastAt >= cadence.everyMs) {
        lastStep = step + 1
        lastAt = performance.now()
        const checkpoint: TrainingCheckpoint = {
          step: step + 1, steps, losses: [...losses], optimizer: optimizer.state(),
          params: Object.fromEntries(train.params.map(name => [name, { ...values[name]!, data: (values[name]!.data as Float32Array).slice() }])),
        }
        options.onProgress?.({ stage: TRAIN_CHECKPOINT_STAGE, detail: { job: job.id, checkpoint } })
      }
      // let the event loop run between steps: onnxruntime's run holds it while it computes, and a stop request (the
      // host's cancel, an engine worker's 'stop' message) or an HTTP request can only be seen in between
      await new Promise<void>(resolve => setImmediate(resolve))
    }
    if (losses.length === 0 && cancelled) throw new WeftError('JOB_CANCELLED', 'the training run was cancelled before its first step completed')
    return { steps, completed: losses.length, losses, cancelled, ...(job.resume === undefined ? {} : { resumedFrom: job.resume.step }) }
  }
}

/** A checkpoint fits this run: its step within the run, a loss per step, every trained param of the declared size. */
function checkResume (resume: TrainingCheckpoint, program: Program, values: Record<string, Tensor>, steps: number): void {
  const bad = (why: string): never => { throw new WeftError('INTERNAL', `the training checkpoint does not fit this run: ${why}`, { step: resume.step }) }
  if (!Number.isInteger(resume.step) || resume.step < 0 || resume.step > steps) bad(`step ${String(resume.step)} of ${steps}`)
  if (resume.steps !== steps) bad(`it was taken from a run of ${resume.steps} steps, not ${steps}`)
  if (resume.losses.length !== resume.step || resume.optimizer.step !== resume.step) bad('its loss curve or optimizer step count disagrees with its step')
  for (const name of program.train!.params) {
    const saved = resume.params[name]
    if (saved === undefined || saved.data.length !== values[name]!.data.length) bad(`param '${name}' is missing or of another size`)
  }
}
