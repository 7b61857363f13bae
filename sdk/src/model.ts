/**
 * Model: one model behind an Executor. `trace` records a Program from a callback and runs it; `scan` reports
 * shapes without running; `cache` saves every module output; `edit` gives a model whose Programs apply an edit first.
 */
import { WeftError, type Manifest, type Program, type ValueType } from '@weft/core'
import type { Executor, RunProgress, RunResult, SyncTokenizer } from './executor.js'
import { Recorder } from './trace/recorder.js'
import { moduleTree } from './trace/module-tree.js'
import { rootEnvoy, type Envoy } from './trace/envoy.js'
import { Tracer, collectSaves, saveLookup, toInvoke, type Resolved, type Scanned, type TraceInput } from './trace/tracer.js'
import { Tensor } from './tensor/tensor.js'
import { applyEdits, editedHost, makeEdit, type Edit, type EditFn, type EditOptions } from './edit/edit.js'
import { SessionBuilder, lossCurve } from './session/session.js'
import { generate, type GenerateBatchFn, type GenerateFn, type GenerateOptions, type Generated, type GeneratedBatch } from './generate/generate.js'

export interface TraceOptions {
  signal?: AbortSignal
  onProgress?: (event: RunProgress) => void
}

/** `trace` resolves to the callback's structure with Tensors; a callback returning nothing gives every save by name. */
export type TraceResult<R> = [R] extends [void | undefined] ? Record<string, Tensor> : Resolved<R>

/** A recorded but not yet run trace. */
export interface Recorded<R> {
  program: Program
  /** maps a run's saves onto the callback's returned structure */
  resolve: (saves: Record<string, Tensor>) => TraceResult<R>
  /** each save's shape and dtype as inferred while recording */
  types: Record<string, ValueType>
}

export type SingleFn<T, R> = (model: T, tracer: Tracer<T>) => R
export type MultiFn<T, R> = (tracer: Tracer<T>) => R

/** What a session returns: every trace's saves (one map), the loss curve of its training run, the run's receipt and stats. */
export interface SessionResult extends Omit<RunResult, 'saves'> {
  saves: Record<string, Tensor>
  /** the loss of every completed training step (empty without `s.train`) */
  losses: number[]
  /** the Program that ran (one signed request remotely) */
  program: Program
}

export interface TopToken { id: number; token: string; logit: number; prob: number }

export class Model<T = Envoy> {
  readonly name: string
  readonly manifest: Manifest
  /** the client-side tokenizer, or null (then text is tokenized by whoever runs the Program) */
  readonly tokenizer: SyncTokenizer | null
  private readonly executor: Executor
  /** edits every Program of this model applies before its own nodes (see `edit`) */
  private edits: readonly Edit<T>[] = []

  constructor (executor: Executor, name: string, manifest: Manifest, tokenizer: SyncTokenizer | null) {
    this.executor = executor
    this.name = name
    this.manifest = manifest
    this.tokenizer = tokenizer
  }

  /** Records a Program without running it (to inspect, sign, share or batch it yourself). */
  record<R> (input: TraceInput, fn: SingleFn<T, R>): Recorded<R>
  record<R> (fn: MultiFn<T, R>): Recorded<R>
  record<R> (first: TraceInput | MultiFn<T, R>, second?: SingleFn<T, R>): Recorded<R> {
    const recorder = new Recorder(this.manifest)
    const tracer = new Tracer<T>(recorder, moduleTree(this.manifest), this.tokenizeFn())
    const returned = typeof first === 'function'
      ? first(tracer)
      : tracer.invoke(first, (m) => second!(m, tracer))
    if (recorder.invokes.length === 0) throw recorder.error('a trace needs at least one invoke (call t.invoke(input, m => …))', null)
    const resolveWith = collectSaves(returned, recorder)
    const program = applyEdits(recorder.finish({ name: this.manifest.name, revision: this.manifest.revision }), this.manifest, this.edits)
    const types = recorder.savedTypes()
    const empty = returned === undefined
    const resolve = (saves: Record<string, Tensor>): TraceResult<R> => (empty
      ? saves
      : resolveWith(saveLookup(saves))) as TraceResult<R>
    return { program, resolve, types }
  }

  /** Records `fn` against the model and runs it; nothing runs while the callback executes. */
  async trace<R> (input: TraceInput, fn: SingleFn<T, R>, options?: TraceOptions): Promise<TraceResult<R>>
  async trace<R> (fn: MultiFn<T, R>, options?: TraceOptions): Promise<TraceResult<R>>
  async trace<R> (first: TraceInput | MultiFn<T, R>, second?: SingleFn<T, R> | TraceOptions, third?: TraceOptions): Promise<TraceResult<R>> {
    const recorded = typeof first === 'function'
      ? this.record(first)
      : this.record(first, second as SingleFn<T, R>)
    const options = (typeof first === 'function' ? second : third) as TraceOptions | undefined
    const result = await this.run(recorded.program, options)
    return recorded.resolve(result.saves)
  }

  /**
   * Generates `maxNewTokens` tokens after the prompt, recording per-step interventions: outside `steps.step(k, …)`
   * reads and writes happen at step 0 (the prompt pass); `steps.all(…)` applies at every step. See docs/sdk.md.
   */
  async generate<R = void> (input: TraceInput, options: GenerateOptions, fn?: GenerateFn<T, R>): Promise<Generated<R>>
  async generate<R> (options: GenerateOptions, fn: GenerateBatchFn<T, R>): Promise<GeneratedBatch<R>>
  async generate (first: TraceInput | GenerateOptions, second: GenerateOptions | GenerateBatchFn<T, unknown>, third?: GenerateFn<T, unknown>): Promise<unknown> {
    return generate<T>(editedHost(this, this.edits), first, second, third)
  }

  /**
   * NNsight's `model.edit()`: a model (same executor, manifest, tokenizer) whose every trace, generate, cache, scan
   * and record applies `fn` first, for every invoke (in generate mode at every step). `fn` reads and sets sites and
   * returns nothing. With `{ inplace: true }` this model itself is edited (undo with `clearEdits`). Edits compose.
   */
  edit (fn: EditFn<T>, options: EditOptions = {}): Model<T> {
    const edit = makeEdit(this.manifest, fn, options.inplace === true)
    if (edit.inplace) { this.edits = [...this.edits, edit]; return this }
    const edited = new Model<T>(this.executor, this.name, this.manifest, this.tokenizer)
    edited.edits = [...this.edits.map((e) => ({ ...e, inplace: false })), edit]
    return edited
  }

  /** Removes the edits made in place (`edit(fn, { inplace: true })`); those an edited copy was made with stay. */
  clearEdits (): this {
    this.edits = this.edits.filter((e) => !e.inplace)
    return this
  }

  /**
   * NNsight's `model.session()`: records several traces (and a training loop) in `fn`, then runs them as ONE
   * Program: values passed from one trace to a later one stay on the executor; only saves come back, with one receipt.
   */
  async session (fn: (s: SessionBuilder<T>) => void, options?: TraceOptions): Promise<SessionResult> {
    const builder = new SessionBuilder<T>(this.manifest, this.tokenizeFn())
    const returned = fn(builder) as unknown
    if (returned instanceof Promise) throw new WeftError('PROGRAM_INVALID', 'the session callback records synchronously: do not await inside it (nothing runs until it returns)')
    const program = builder.build()
    const result = await this.run(program, options)
    return { ...result, losses: lossCurve(result.saves), program }
  }

  /** Shapes and dtypes of what the callback returns, inferred from the manifest without running anything. */
  scan<R> (input: TraceInput, fn: SingleFn<T, R>): Scanned<R>
  scan<R> (fn: MultiFn<T, R>): Scanned<R>
  scan<R> (first: TraceInput | MultiFn<T, R>, second?: SingleFn<T, R>): Scanned<R> {
    const recorded = typeof first === 'function' ? this.record(first) : this.record(first, second!)
    const shapes = Object.fromEntries(Object.entries(recorded.types).map(([name, type]) => [name, type as unknown as Tensor]))
    return recorded.resolve(shapes) as unknown as Scanned<R>
  }

  /** Every module output (or the listed modules' outputs) for one input, keyed by module path, in one forward. */
  async cache (input: TraceInput, options: { modules?: readonly string[]; port?: 'output' | 'input' } & TraceOptions = {}): Promise<Record<string, Tensor>> {
    const port = options.port ?? 'output'
    const paths = options.modules ?? this.manifest.modules.filter((m) => m.kind === 'module' && m[port] !== undefined).map((m) => m.path)
    const recorder = new Recorder(this.manifest)
    const index = recorder.addInvoke(toInvoke(input, this.tokenizeFn()))
    const root = rootEnvoy(recorder, moduleTree(this.manifest), index)
    for (const path of paths) {
      let envoy = root
      for (const part of path.split('.')) envoy = envoy.child(part)
      envoy[port].save(path)
    }
    const program = applyEdits(recorder.finish({ name: this.manifest.name, revision: this.manifest.revision }), this.manifest, this.edits)
    return (await this.run(program, options)).saves
  }

  /** Runs a recorded Program as given (Programs from `record` already hold the edits); saves come back as SDK Tensors. */
  async run (program: Program, options?: TraceOptions): Promise<RunResult & { saves: Record<string, Tensor> }> {
    const result = await this.executor.run(program, options)
    const saves = Object.fromEntries(Object.entries(result.saves).map(([name, tensor]) => [name, Tensor.from(tensor)]))
    return { ...result, saves }
  }

  /** Token ids of `text` (client-side when the tokenizer is known, else asked of the executor). */
  async tokenize (text: string): Promise<number[]> {
    return this.tokenizer !== null ? this.tokenizer.encode(text) : this.executor.tokenize(this.name, text)
  }

  async decode (ids: readonly number[] | Tensor): Promise<string> {
    const list = ids instanceof Tensor ? ids.toFlat() : [...ids]
    return this.tokenizer !== null ? this.tokenizer.decode(list) : this.executor.decode(this.name, list)
  }

  /** Decodes one token id synchronously (needs the client-side tokenizer). */
  token (id: number): string {
    if (this.tokenizer === null) throw new WeftError('BACKEND_CAPABILITY_MISSING', `no client-side tokenizer for '${this.name}'; use await model.decode(ids)`)
    return this.tokenizer.decode([id])
  }

  /** The k most likely tokens of one logits row (any tensor whose last dim is the vocabulary; leading dims must be 1). */
  topTokens (logits: Tensor, k = 5): TopToken[] {
    const row = Tensor.from(logits)
    const vocab = row.shape.at(-1) ?? 0
    if (row.size !== vocab) throw new WeftError('PROGRAM_INVALID', `topTokens needs one row of logits, got shape [${row.shape.join(', ')}]`)
    const flat = row.reshape(vocab)
    const probs = flat.softmax().toFlat()
    const { values, indices } = flat.topk(k)
    const ids = indices.toFlat()
    return values.toFlat().map((logit, i) => ({ id: ids[i]!, token: this.tokenizer === null ? `#${ids[i]}` : this.token(ids[i]!), logit, prob: probs[ids[i]!]! }))
  }

  private tokenizeFn (): ((text: string) => number[]) | null {
    const tokenizer = this.tokenizer
    return tokenizer === null ? null : (text: string) => tokenizer.encode(text)
  }
}
