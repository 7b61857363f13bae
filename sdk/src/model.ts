/**
 * Model: one model behind an Executor. `trace` records a Program from a callback and runs it; `scan` reports
 * shapes without running; `cache` saves every module output; `edit` gives a model whose Programs apply an edit first.
 */
import { NAME_PATTERN, WeftError, cacheProgram, type Manifest, type ParamDecl, type Program, type ValueType } from '@weft/core'
import type { Executor, RunProgress, RunResult, SyncTokenizer } from './executor.js'
import type { RouteChoice } from './routing/choice.js'
import { Recorder } from './trace/recorder.js'
import { moduleTree } from './trace/module-tree.js'
import type { Envoy } from './trace/envoy.js'
import { Tracer, collectSaves, saveLookup, toInvoke, type Resolved, type Scanned, type TraceInput } from './trace/tracer.js'
import { Tensor } from './tensor/tensor.js'
import { applyEdits, editedHost, makeEdit, type Edit, type EditFn, type EditOptions } from './edit/edit.js'
import { generate, type GenerateBatchFn, type GenerateFn, type GenerateHost, type GenerateOptions, type Generated, type GeneratedBatch, type GeneratedToken } from './generate/generate.js'
import { SessionBuilder, lossCurve } from './session/session.js'
import { AppliedAdapter } from './session/adapters.js'

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
  /** kept adapters this view applies (see `withAdapter`) */
  private applied: readonly AppliedAdapter[] = []

  /** routing mode: which providers run this model's Programs (`weft.model(name, { require, prefer })`) */
  readonly route: RouteChoice | undefined

  constructor (executor: Executor, name: string, manifest: Manifest, tokenizer: SyncTokenizer | null, route?: RouteChoice) {
    this.executor = executor
    this.name = name
    this.manifest = manifest
    this.tokenizer = tokenizer
    this.route = route
  }

  /** Records a Program without running it (to inspect, sign, share or batch it yourself). */
  record<R> (input: TraceInput, fn: SingleFn<T, R>): Recorded<R>
  record<R> (fn: MultiFn<T, R>): Recorded<R>
  record<R> (first: TraceInput | MultiFn<T, R>, second?: SingleFn<T, R>): Recorded<R> {
    const recorder = this.recorder()
    const tracer = new Tracer<T>(recorder, moduleTree(this.manifest), this.tokenizeFn())
    const returned = typeof first === 'function'
      ? first(tracer)
      : tracer.invoke(first, (m) => second!(m, tracer))
    if (recorder.invokes.length === 0) throw recorder.error('a trace needs at least one invoke (call t.invoke(input, m => …))', null)
    const resolveWith = collectSaves(returned, recorder)
    const program = this.prepare(recorder.finish({ name: this.manifest.name, revision: this.manifest.revision }))
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
    const params = this.adapterParams()
    const host: GenerateHost = params === undefined ? this : { manifest: this.manifest, tokenizer: this.tokenizer, decode: async (ids) => this.decode(ids), run: async (program, options) => this.run(program, options), params }
    return generate<T>(editedHost(host, this.edits), first, second, third)
  }

  /**
   * Token streaming as an async iterator: `for await (const t of model.stream(prompt, { maxNewTokens: 8 })) …` yields
   * each new token as it is chosen; `.result` resolves to what `generate` returns (and rejects with its error).
   */
  stream<R = void> (input: TraceInput, options: GenerateOptions, fn?: GenerateFn<T, R>): AsyncIterable<GeneratedToken> & { result: Promise<Generated<R>> } {
    const queue: GeneratedToken[] = []
    let wake: (() => void) | null = null
    let finished = false
    const notify = (): void => { const w = wake; wake = null; w?.() }
    const result = this.generate<R>(input, {
      ...options, onToken: (token) => { options.onToken?.(token); queue.push(token); notify() },
    }, fn).finally(() => { finished = true; notify() })
    result.catch(() => {}) // the iterator rethrows it; `.result` keeps the rejection for whoever awaits it
    async function * tokens (): AsyncGenerator<GeneratedToken> {
      for (;;) {
        const next = queue.shift()
        if (next !== undefined) { yield next; continue }
        if (finished) { await result; return }
        await new Promise<void>((resolve) => { wake = resolve })
      }
    }
    return { [Symbol.asyncIterator]: tokens, result }
  }

  /**
   * NNsight's `model.edit()`: a model (same executor, manifest, tokenizer) whose every trace, generate, cache, scan, session
   * and record applies `fn` first, for every invoke (in generate mode at every step). `fn` reads and sets sites and
   * returns nothing. With `{ inplace: true }` this model itself is edited (undo with `clearEdits`). Edits compose.
   */
  edit (fn: EditFn<T>, options: EditOptions = {}): Model<T> {
    const edit = makeEdit(this.manifest, fn, options.inplace === true)
    if (edit.inplace) { this.edits = [...this.edits, edit]; return this }
    const edited = new Model<T>(this.executor, this.name, this.manifest, this.tokenizer, this.route)
    edited.edits = [...this.edits.map((e) => ({ ...e, inplace: false })), edit]
    edited.applied = this.applied
    return edited
  }

  /**
   * A view of this model with the caller's kept adapter `name` applied (embedded: kept by this LocalExecutor;
   * remote: kept on the provider for your key): every trace, generate, cache, scan and session of the view declares
   * the adapter's params (`init: {adapter}`, resolved where it is kept — the values never travel) and records its
   * LoRA and steering attachments before its own nodes, for every invoke (in generate mode at every step). Its
   * params are operands in `view.adapters[i].params`, its probes `view.adapters[i].probe(m)`. Views compose:
   * `(await model.withAdapter('a')).withAdapter('b')`. An adapter of another key is ADAPTER_NOT_FOUND, one trained
   * on another model or revision ADAPTER_MISMATCH.
   */
  async withAdapter (name: string): Promise<Model<T>> {
    if (this.executor.adapter === undefined) {
      throw new WeftError('BACKEND_CAPABILITY_MISSING', `this executor (${this.executor.kind}) keeps no adapters: use Weft.local or Weft.connect to one provider`, { adapter: name })
    }
    if (this.applied.some((a) => a.name === name)) throw new WeftError('PROGRAM_INVALID', `adapter '${name}' is already applied to this model view`, { adapter: name })
    const info = await this.executor.adapter(name)
    if (info.model !== this.manifest.name || info.revision !== this.manifest.revision) {
      throw new WeftError('ADAPTER_MISMATCH', `adapter '${name}' was trained on ${info.model} at revision ${info.revision}; this model is ${this.manifest.name} at revision ${this.manifest.revision}`,
        { adapter: name, adapterModel: info.model, adapterRevision: info.revision, model: this.manifest.name, revision: this.manifest.revision })
    }
    // the view's param names: `<adapter>.<param>` (or `adapter<k>.<param>` when that is not a valid name)
    const fits = Object.keys(info.params).every((p) => NAME_PATTERN.test(`${name}.${p}`))
    const adapter = new AppliedAdapter(info, fits ? `${name}.` : `adapter${this.applied.length}.`)
    const view = new Model<T>(this.executor, this.name, this.manifest, this.tokenizer, this.route)
    view.edits = [...this.edits.map((e) => ({ ...e, inplace: false })), ...adapter.edits as readonly Edit<T>[]]
    view.applied = [...this.applied, adapter]
    return view
  }

  /** The kept adapters this model view applies (`withAdapter`), in the order they were applied. */
  get adapters (): readonly AppliedAdapter[] { return this.applied }

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
    const builder = new SessionBuilder<T>(this.manifest, this.tokenizeFn(), {
      ...(this.adapterParams() === undefined ? {} : { params: this.adapterParams() }), edits: this.edits, attachments: this.applied.flatMap((a) => a.attachments),
    })
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
    const recorder = this.recorder()
    const invoke = recorder.invokes[recorder.addInvoke(toInvoke(input, this.tokenizeFn()))]! // token ids checked at the caller's line
    const program = this.prepare(cacheProgram(this.manifest, invoke, options))
    return (await this.run(program, options)).saves
  }

  /**
   * Runs a recorded Program as given (Programs from `record` already hold the edits); saves come back as SDK
   * Tensors, with the receipt and `provider` (the id of the provider that ran it, or 'local').
   */
  async run (program: Program, options?: TraceOptions): Promise<RunResult & { saves: Record<string, Tensor> }> {
    const result = await this.executor.run(program, this.route === undefined ? options : { ...options, route: this.route })
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

  /** The params of the applied adapters (undefined when none): every Program of the view declares them. */
  private adapterParams (): Record<string, ParamDecl> | undefined {
    if (this.applied.length === 0) return undefined
    return Object.assign({}, ...this.applied.map((a) => a.decls)) as Record<string, ParamDecl>
  }

  /** A recorder that knows the applied adapters' params (so `view.adapters[i].params.x` is an operand). */
  private recorder (): Recorder {
    const params = this.adapterParams()
    return new Recorder(this.manifest, params === undefined ? {} : { params })
  }

  /** A recorded trace as this model runs it: the adapters' params declared, then the edits (adapters' included) applied. */
  private prepare (program: Program): Program {
    const params = this.adapterParams()
    return applyEdits(params === undefined ? program : { ...program, params }, this.manifest, this.edits)
  }

  private tokenizeFn (): ((text: string) => number[]) | null {
    const tokenizer = this.tokenizer
    return tokenizer === null ? null : (text: string) => tokenizer.encode(text)
  }
}
