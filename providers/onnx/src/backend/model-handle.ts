/**
 * The onnx backend's ModelHandleV1: co-tenant batches (every job's invokes are rows of one forward pass),
 * compiled graphs cached by Program structure, per-job typed errors; a failed merged run is retried per job.
 */
import type * as ort from 'onnxruntime-node'
import { WeftError, type BatchJob, type JobResult, type Manifest, type ModelHandleV1, type Program, type RunOptions, type ScanEntry, type Tensor, type ValueType } from '@weft/core'
import type { LoadedModel } from '../load.js'
import { compile, type CompiledProgram } from '../compile/compile.js'
import { batchLayout, bindFeeds } from '../compile/layout.js'
import { structureKey } from '../compile/structure-key.js'
import { SessionCache, type SessionCacheLimits } from '../runtime/session-cache.js'
import { createSessionSized, fromOrt, toOrt, type SessionInit } from '../runtime/session.js'
import { ProgramPlans, type PreparedJob } from './prepare.js'
import { resolveProgram } from './resolve-job.js'
import { Generator } from '../generate/generator.js'
import { SessionRunner, isSessionProgram } from './session-runner.js'

export interface CompiledSession {
  compiled: CompiledProgram
  session: ort.InferenceSession
  /** the graph outputs to fetch (the saves' values, in `compiled.saves` order) */
  outputs: string[]
  /** estimated bytes the session holds (runtime/session-memory.ts) */
  bytes: number
  release (): Promise<void>
}

interface Pending { index: number; id: string; job: PreparedJob }

export class OnnxModelHandle implements ModelHandleV1 {
  readonly manifest: Manifest
  /** validated + typed Programs by fingerprint: a repeated Program shape is not validated again */
  readonly plans: ProgramPlans
  /** runs `mode: 'generate'` jobs (generate/generator.ts), one job at a time */
  readonly generator: Generator
  /** runs Programs with params, training or later traces (backend/session-runner.ts), one job at a time */
  readonly sessionRunner: SessionRunner

  /** `onDispose`: called once the handle is disposed (the backend forgets it, so a disposed model's graph is not kept alive) */
  constructor (readonly loaded: LoadedModel, readonly sessions: SessionCache<CompiledSession>, private readonly init: SessionInit,
    private readonly onDispose?: () => void, generatorLimits?: SessionCacheLimits) {
    this.manifest = loaded.graph.manifest
    this.plans = new ProgramPlans(this.manifest)
    this.generator = new Generator({
      manifest: this.manifest, buildKvGraph: loaded.buildKvGraph, tokenize: text => this.tokenize(text),
      decode: loaded.tokenizer === null ? undefined : ids => this.decode(ids),
    }, init, generatorLimits)
    this.sessionRunner = new SessionRunner({
      manifest: this.manifest,
      tokenize: text => this.tokenize(text),
      runTrace: program => this.runAlone(program),
      runGenerate: (program, options) => this.generator.run({ id: 'session', program }, options),
    })
  }

  /** One trace-mode Program as its own batch: its saves (throws the job's typed error). */
  private async runAlone (program: Program): Promise<{ saves: Record<string, Tensor>; cacheHit: boolean }> {
    const results: JobResult[] = [undefined as never]
    await this.execute([{ index: 0, id: 'session', job: this.plans.prepare(program, text => this.tokenize(text)) }], results, {})
    const result = results[0]!
    if (!result.ok) throw new WeftError(result.error.code, result.error.message, result.error.details ?? {})
    return { saves: result.saves, cacheHit: result.stats.cacheHit }
  }

  tokenize (text: string): number[] {
    if (this.loaded.tokenizer === null) throw new WeftError('BACKEND_CAPABILITY_MISSING', `model '${this.manifest.name}' has no tokenizer: send token ids`)
    return this.loaded.tokenizer.encode(text)
  }

  decode (ids: readonly number[]): string {
    if (this.loaded.tokenizer === null) throw new WeftError('BACKEND_CAPABILITY_MISSING', `model '${this.manifest.name}' has no tokenizer`)
    return this.loaded.tokenizer.decode(ids)
  }

  scan (program: Program, known?: readonly ValueType[]): ScanEntry[] {
    const { program: resolved, types } = program?.mode === 'generate' ? this.generator.prepare(program, known) : this.plans.prepare(program, text => this.tokenize(text), known)
    return resolved.nodes.flatMap(([op, attrs], i) => op === 'save'
      ? [{ name: attrs.name as string, shape: types[i]!.shape.map(Number), dtype: types[i]!.dtype }]
      : [])
  }

  /** Resolves text invokes (for callers that batch themselves). */
  resolve (program: Program): Program { return resolveProgram(program, this.manifest, text => this.tokenize(text)) }

  async run (jobs: BatchJob[], options: RunOptions = {}): Promise<JobResult[]> {
    const results: JobResult[] = new Array(jobs.length)
    const pending: Pending[] = []
    const generating: number[] = []
    const sessions: number[] = []
    jobs.forEach((job, index) => {
      if (job.program !== null && typeof job.program === 'object' && isSessionProgram(job.program)) { sessions.push(index); return }
      if (job.program?.mode === 'generate') { generating.push(index); return }
      try {
        pending.push({ index, id: job.id, job: this.plans.prepare(job.program, text => this.tokenize(text), job.types) })
      } catch (error) {
        results[index] = { id: job.id, ok: false, error: toWeftError(error).toWire() }
      }
    })
    for (const group of this.chunks(pending, results)) await this.runGroup(group, results, options)
    for (const index of generating) results[index] = await this.generator.run(jobs[index]!, options)
    for (const index of sessions) results[index] = await this.sessionRunner.run(jobs[index]!, options)
    return results
  }

  /** Splits jobs into batches the graph accepts (imported graphs may be specialised to `maxBatch` rows). */
  private chunks (pending: Pending[], results: JobResult[]): Pending[][] {
    const max = this.loaded.graph.maxBatch
    if (max === undefined) return pending.length > 0 ? [pending] : []
    const groups: Pending[][] = []
    let current: Pending[] = []
    let rows = 0
    for (const one of pending) {
      const need = one.job.program.invokes.length
      if (need > max) {
        const error = new WeftError('BACKEND_CAPABILITY_MISSING', `this model graph runs at most ${max} row(s) per pass; the program has ${need} invokes`, { invokes: need, maxBatch: max })
        results[one.index] = { id: one.id, ok: false, error: error.toWire() }
        continue
      }
      if (rows + need > max && current.length > 0) { groups.push(current); current = []; rows = 0 }
      current.push(one)
      rows += need
    }
    if (current.length > 0) groups.push(current)
    return groups
  }

  /** Runs the group as one batch; if that fails and the group has several jobs, each runs alone. */
  private async runGroup (group: Pending[], results: JobResult[], options: RunOptions): Promise<void> {
    try {
      await this.execute(group, results, options)
    } catch (caught) {
      const error = withJobId(caught, group)
      if (group.length === 1) {
        results[group[0]!.index] = { id: group[0]!.id, ok: false, error: toWeftError(error).toWire() }
        return
      }
      for (const one of group) await this.runGroup([one], results, options)
    }
  }

  private async execute (group: Pending[], results: JobResult[], options: RunOptions): Promise<void> {
    if (options.signal?.aborted === true) throw new WeftError('JOB_CANCELLED', 'the batch was cancelled before it ran')
    const started = performance.now()
    const jobs = group.map(p => p.job)
    const layout = batchLayout(jobs, (j, k) => (jobs[j]!.program.invokes[k] as { ids: number[] }).ids)
    const graph = this.loaded.graph
    options.onProgress?.({ stage: 'compile', detail: { jobs: group.length, rows: layout.rows.length } })
    const make = async (): Promise<CompiledSession> => {
      const compiled = compile(graph, jobs, layout, { rowsAreWhole: true })
      const { session, bytes } = await createSessionSized(graph, compiled.model, this.init)
      return { compiled, session, bytes, outputs: compiled.saves.map(s => s.output), release: () => session.release() }
    }
    await this.sessions.use(batchKey(jobs), make, async (value, hit) => {
      const feeds: Record<string, ort.Tensor> = {}
      const bound = bindFeeds(graph, value.compiled.feeds, jobs, layout)
      for (const name in bound) {
        const feed = bound[name]!
        feeds[name] = toOrt({ dtype: feed.type as Tensor['dtype'], shape: feed.dims, data: feed.data })
      }
      options.onProgress?.({ stage: 'run', detail: { cacheHit: hit } })
      let out: ort.InferenceSession.ReturnType
      try {
        out = await value.session.run(feeds, value.outputs)
      } catch (error) {
        throw runError(error, value.compiled, group)
      }
      const runMs = performance.now() - started
      const saves: Record<string, Tensor>[] = group.map(() => ({}))
      const saveBytes = group.map(() => 0)
      for (const save of value.compiled.saves) {
        const tensor = fromOrt(out[save.output] as ort.Tensor)
        saves[save.job]![save.name] = tensor
        saveBytes[save.job]! += tensor.data.byteLength
      }
      group.forEach((pending, j) => {
        results[pending.index] = { id: pending.id, ok: true, saves: saves[j]!, stats: { runMs, cacheHit: hit, saveBytes: saveBytes[j]! } }
      })
    })
  }

  async dispose (): Promise<void> {
    await this.sessions.clear()
    await this.generator.dispose()
    await this.loaded.dispose()
    this.onDispose?.()
  }
}

/** Session-cache key of a batch: the jobs' structure fingerprints in order (a digest for jobs without one). */
function batchKey (jobs: readonly PreparedJob[]): string {
  if (jobs.every(j => j.structure !== null)) return jobs.map(j => j.structure).join('\u0001')
  return 'sha256:' + structureKey(jobs)
}

/** Compile and feed errors name the job by its batch position; callers know it by id. */
function withJobId (error: unknown, group: Pending[]): unknown {
  if (!WeftError.is(error) || typeof error.details.job !== 'number') return error
  const pending = group[error.details.job]
  return pending === undefined ? error : new WeftError(error.code, error.message, { ...error.details, job: pending.id }, { cause: error })
}

function toWeftError (error: unknown): WeftError {
  if (WeftError.is(error)) return error
  return new WeftError('INTERNAL', error instanceof Error ? error.message : String(error), {}, { cause: error })
}

/** A run-time failure, attributed to the Program node whose lowering the failing ONNX node belongs to. */
function runError (error: unknown, compiled: CompiledProgram, group: Pending[]): WeftError {
  const message = error instanceof Error ? error.message : String(error)
  for (const [name, origin] of compiled.origins) {
    if (!message.includes(name)) continue
    const [job, node] = origin.split(':').map(Number) as [number, number]
    const program = group[job]!.job.program
    const op = program.nodes[node]![0]
    const location = program.locations?.[node] ?? null
    return new WeftError('EXECUTION_FAILED', `node ${node} (${op}) failed at run time: ${message}`,
      { job: group[job]!.id, node, op, ...(location === null ? {} : { location }) }, { cause: error })
  }
  return new WeftError('EXECUTION_FAILED', `the forward pass failed: ${message}`, {}, { cause: error })
}
