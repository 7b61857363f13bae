/**
 * Step scoping for `model.generate`: a recorder whose reads and writes carry the current generation step, the
 * per-invoke `Steps` handle (`g.step(k, m => …)`, `g.all(m => …)`, `g.iter(steps, (m, k) => …)`) and the
 * multi-invoke `GenerateTracer`. Step 0 is the prompt pass; step k ≥ 1 is the forward that feeds new token k.
 */
import { WeftError, type Attrs, type Manifest, type ParamDecl, type Step } from '@weft/core'
import { Recorder } from '../trace/recorder.js'
import { rootEnvoy, type Envoy } from '../trace/envoy.js'
import type { TreeNode } from '../trace/module-tree.js'
import { toInvoke, type TraceInput } from '../trace/tracer.js'
import { callerLocation } from '../trace/location.js'

/** Records reads and writes at `step` (attrs get `step` unless it is 0, the default). */
export class GenerateRecorder extends Recorder {
  step: Step = 0

  /** `params`: the Program's declared params (a model view's kept adapters), so `trainable` nodes type-check */
  constructor (manifest: Manifest, readonly maxNewTokens: number, params?: Record<string, ParamDecl>) { super(manifest, params === undefined ? {} : { params }) }

  override add (op: string, attrs: Attrs, inputs: number[]): number {
    const scoped = (op === 'read' || op === 'write') && this.step !== 0 && attrs.step === undefined ? { ...attrs, step: this.step } : attrs
    return super.add(op, scoped, inputs)
  }

  /** Runs `fn` with reads and writes recorded at `step`. */
  at<R> (step: Step, fn: () => R): R {
    if (step !== 'all' && (!Number.isInteger(step) || step < 0 || step >= this.maxNewTokens)) {
      throw this.error(`step ${String(step)} does not exist: steps are 0 (the prompt) … ${this.maxNewTokens - 1} (maxNewTokens − 1)`, callerLocation(), { step })
    }
    const previous = this.step
    if (previous !== 0 && previous !== step) throw this.error(`steps do not nest: already recording step ${String(previous)}`, callerLocation())
    this.step = step
    try { return fn() } finally { this.step = previous }
  }

  /** 0 … maxNewTokens − 1, or the half-open range [from, to). */
  range (from = 0, to = this.maxNewTokens): number[] {
    return Array.from({ length: Math.max(0, Math.min(to, this.maxNewTokens) - from) }, (_, i) => from + i)
  }
}

/** Generation steps of one invoke. Outside any of these, reads and writes happen at step 0 (the prompt pass). */
export class Steps<T = Envoy> {
  constructor (private readonly recorder: GenerateRecorder, private readonly model: T) {}

  /** number of new tokens: steps are 0 … maxNewTokens − 1 */
  get maxNewTokens (): number { return this.recorder.maxNewTokens }

  /** Records `fn` at step `k`: every `seq` dim is 1 there (one new position, earlier ones are cached). */
  step<R> (k: number, fn: (model: T) => R): R { return this.recorder.at(k, () => fn(this.model)) }

  /** Records `fn` once as a template applied at every step (steering); its values cannot be saved. */
  all<R> (fn: (model: T) => R): R { return this.recorder.at('all', () => fn(this.model)) }

  /** Records `fn` at each of `steps` (default: every step); returns the results in order (save them, stack them…). */
  iter<R> (fn: (model: T, step: number) => R): R[]
  iter<R> (steps: Iterable<number>, fn: (model: T, step: number) => R): R[]
  iter<R> (first: Iterable<number> | ((model: T, step: number) => R), second?: (model: T, step: number) => R): R[] {
    const [steps, fn] = typeof first === 'function' ? [this.range(), first] : [first, second!]
    return [...steps].map(k => this.step(k, m => fn(m, k)))
  }

  /** 0 … maxNewTokens − 1, or the half-open range [from, to). */
  range (from?: number, to?: number): number[] { return this.recorder.range(from, to) }
}

/** The handle of a multi-invoke generate callback: `g.invoke(prompt, (m, steps) => …)`; `g.step(k, () => …)` spans invokes. */
export class GenerateTracer<T = Envoy> {
  constructor (private readonly recorder: GenerateRecorder, private readonly tree: TreeNode, private readonly tokenize: ((text: string) => number[]) | null) {}

  /** Adds a prompt (a batch row) and records `fn` against it; outside `steps.step(…)` reads and writes are at step 0. */
  invoke<R> (input: TraceInput, fn: (model: T, steps: Steps<T>) => R): R {
    if (this.recorder.step !== 0) throw this.recorder.error('invoke inside a step: add invokes first, then record steps', callerLocation())
    const index = this.recorder.addInvoke(toInvoke(input, this.tokenize))
    const model = rootEnvoy(this.recorder, this.tree, index) as T
    return fn(model, new Steps<T>(this.recorder, model))
  }

  /** Records `fn` at step `k` for envoys of any invoke (captured from their invoke callbacks). */
  step<R> (k: number, fn: () => R): R { return this.recorder.at(k, fn) }

  /** Records `fn` as a template applied at every step. */
  all<R> (fn: () => R): R { return this.recorder.at('all', fn) }

  /** Records `fn` at each of `steps` (default: every step). */
  iter<R> (fn: (step: number) => R): R[]
  iter<R> (steps: Iterable<number>, fn: (step: number) => R): R[]
  iter<R> (first: Iterable<number> | ((step: number) => R), second?: (step: number) => R): R[] {
    const [steps, fn] = typeof first === 'function' ? [this.recorder.range(), first] : [first, second!]
    return [...steps].map(k => this.step(k, () => fn(k)))
  }

  range (from?: number, to?: number): number[] { return this.recorder.range(from, to) }
  get maxNewTokens (): number { return this.recorder.maxNewTokens }
  get invokes (): number { return this.recorder.invokes.length }
}

export function noInvokes (recorder: Recorder): WeftError {
  return recorder.error('generate needs at least one prompt (call g.invoke(prompt, (m, steps) => …))', null)
}
