/**
 * The generation loop for `mode: 'generate'` jobs: step 0 runs every invoke's prompt as one right-padded batch on
 * the KV-cache graph, each later step feeds every row's previous token; each step compiles its slice of the Program
 * (compiled graphs cached by structure, so decode steps with equal interventions compile once) and picks tokens.
 */
import type * as ort from 'onnxruntime-node'
import { WeftError, generatedSaveName, inferProgramTypes, type BatchJob, type JobResult, type Program, type RunOptions, type Tensor, type ValueType } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import { compile, type CompiledProgram } from '../compile/compile.js'
import type { BatchLayout } from '../compile/layout.js'
import { programFingerprint, structureKey } from '../compile/structure-key.js'
import { SessionCache, type SessionCacheLimits } from '../runtime/session-cache.js'
import { createSessionSized, fromOrt, type SessionInit } from '../runtime/session.js'
import { generationGraph, type GenerationGraph } from './gen-graph.js'
import { carrySave, GenerationPlan, LOGITS_SAVE, presentSave } from './plan.js'
import { resolveProgram } from '../backend/resolve-job.js'
import { emptyCache, stepFeeds, type StepState } from './feeds.js'
import { chooseToken } from './sampling.js'

/** Largest KV cache one generate job may allocate (keys + values, every layer); larger jobs are refused. */
const MAX_CACHE_BYTES = 2 ** 31

interface StepSession { compiled: CompiledProgram; session: ort.InferenceSession; inputs: Set<string>; bytes: number; release (): Promise<void> }

export interface GeneratorSource {
  manifest: ModelGraph['manifest']
  /** builds the KV-cache variant of the model graph (null: this model cannot generate) */
  buildKvGraph: (() => ModelGraph) | null
  tokenize (text: string): number[]
  /** decodes token ids to text for streamed token events (absent: events carry ids only) */
  decode?: (ids: readonly number[]) => string
}

export class Generator {
  readonly sessions: SessionCache<StepSession>
  private graph: GenerationGraph | null = null

  constructor (private readonly source: GeneratorSource, private readonly init: SessionInit, limits: number | SessionCacheLimits = 16) {
    this.sessions = new SessionCache<StepSession>(limits)
  }

  /**
   * Tokenizes text invokes, checks the mode and validates (every problem becomes PROGRAM_INVALID). `types`: the
   * host's, from admitting this very Program (BatchJob.types): used instead of inferring again.
   */
  prepare (program: Program, types?: readonly ValueType[]): { program: Program; types: readonly ValueType[] } {
    const resolved = resolveProgram(program, this.source.manifest, text => this.source.tokenize(text), 'generate')
    return { program: resolved, types: types ?? inferProgramTypes(resolved, this.source.manifest) }
  }

  private generation (): GenerationGraph {
    if (this.graph !== null) return this.graph
    if (this.source.buildKvGraph === null) {
      throw new WeftError('BACKEND_CAPABILITY_MISSING', `model '${this.source.manifest.name}' cannot generate: only graphs built from a checkpoint have a KV-cache variant`)
    }
    this.graph = generationGraph(this.source.buildKvGraph())
    return this.graph
  }

  async run (job: BatchJob, options: RunOptions = {}): Promise<JobResult> {
    try {
      return { id: job.id, ok: true, ...await this.generate(job.program, options, job.id, job.types) }
    } catch (error) {
      const wrapped = WeftError.is(error) ? error : new WeftError('EXECUTION_FAILED', `generation failed: ${error instanceof Error ? error.message : String(error)}`, {}, { cause: error })
      return { id: job.id, ok: false, error: wrapped.toWire() }
    }
  }

  private async generate (input: Program, options: RunOptions, jobId: string, known?: readonly ValueType[]): Promise<Omit<Extract<JobResult, { ok: true }>, 'id' | 'ok'>> {
    const started = performance.now()
    const { program, types } = this.prepare(input, known)
    const gen = this.generation()
    const options_ = program.generate!
    const plan = new GenerationPlan(program, types, gen.kv, gen.vocab)
    const prompts = program.invokes.map(i => (i as { ids: number[] }).ids)
    const stops = new Set(options_.stopTokenIds ?? [])
    const chosen: number[][] = prompts.map(() => [])
    const generated: number[][] = prompts.map(() => [])
    const done = prompts.map(() => false)
    const carry = new Map<number, Tensor>()
    const saves: Record<string, Tensor> = {}
    const promptWidth = Math.max(...prompts.map(p => p.length))
    const capacity = promptWidth + options_.maxNewTokens - 1
    const cacheBytes = 2 * gen.kv.layers.length * prompts.length * gen.kv.kvHeads * capacity * gen.kv.headDim * 4
    if (cacheBytes > MAX_CACHE_BYTES) {
      throw new WeftError('PAYLOAD_TOO_LARGE', `generating ${options_.maxNewTokens} tokens for ${prompts.length} prompt(s) needs a ${(cacheBytes / 2 ** 30).toFixed(1)} GiB KV cache; the limit is ${MAX_CACHE_BYTES / 2 ** 30} GiB`,
        { cacheBytes, limit: MAX_CACHE_BYTES })
    }
    let cache = emptyCache(gen.kv, prompts.length, capacity)
    let allHits = true
    const layout: BatchLayout = { rows: prompts.map((ids, k) => ({ job: 0, invoke: k, ids })), maxLength: promptWidth }
    for (let step = 0; step < options_.maxNewTokens; step++) {
      if (options.signal?.aborted === true) throw new WeftError('JOB_CANCELLED', `generation was cancelled before step ${step}`)
      if (step > 0 && done.every(Boolean) && !plan.needsStep(step)) break
      const slice = plan.slice(step, carry)
      const state: StepState = { step, prompts, chosen, capacity, promptWidth }
      const key = programFingerprint(slice.program)?.structure ?? structureKey([slice])
      const make = async (): Promise<StepSession> => {
        const compiled = compile(gen.graph, [slice], layout)
        const { session, bytes } = await createSessionSized(gen.graph, compiled.model, this.init)
        return { compiled, session, bytes, inputs: new Set(compiled.model.graph!.input.map(v => v.name)), release: () => session.release() }
      }
      options.onProgress?.({ stage: 'run', detail: { step } })
      const out = await this.sessions.use(key, make, async (value, hit) => {
        allHits &&= hit
        const feeds = stepFeeds(gen.graph, gen.kv, value.compiled.feeds, value.inputs, slice.program, state, cache)
        const result = await value.session.run(feeds, value.compiled.saves.map(s => s.output))
        return new Map(value.compiled.saves.map(s => [s.name, result[s.output] as ort.Tensor]))
      })
      for (const [internal, user] of slice.saveNames) saves[user] = fromOrt(out.get(internal)!)
      plan.carriedAt(step).forEach(n => carry.set(n, fromOrt(out.get(carrySave(n))!)))
      cache = gen.kv.layers.flatMap((_, i) => [out.get(presentSave(i, 'key'))!, out.get(presentSave(i, 'value'))!])
      const logits = out.get(LOGITS_SAVE)!
      const [rows, width, vocab] = logits.dims as [number, number, number]
      const data = logits.data as Float32Array
      for (let r = 0; r < rows; r++) {
        const position = step === 0 ? prompts[r]!.length - 1 : 0
        const row = data.subarray((r * width + position) * vocab, (r * width + position + 1) * vocab)
        const token = chooseToken(options_.strategy, row, r, step)
        chosen[r]!.push(token)
        if (done[r]) continue
        generated[r]!.push(token)
        if (stops.has(token)) done[r] = true
        // token streaming: each new token as soon as it is chosen, for the job that owns the row
        if (options.onProgress !== undefined) {
          options.onProgress({ stage: 'token', detail: { job: jobId, invoke: r, step, id: token, ...this.tokenText(token) } })
        }
      }
    }
    generated.forEach((tokens, k) => {
      saves[generatedSaveName(k)] = { dtype: 'int64', shape: [1, tokens.length], data: BigInt64Array.from(tokens.map(BigInt)) }
    })
    const saveBytes = Object.values(saves).reduce((n, t) => n + t.data.byteLength, 0)
    return { saves, stats: { runMs: performance.now() - started, cacheHit: allHits, saveBytes } }
  }

  private tokenText (token: number): { text?: string } {
    if (this.source.decode === undefined) return {}
    try { return { text: this.source.decode([token]) } } catch { return {} }
  }

  async dispose (): Promise<void> { await this.sessions.clear() }
}
