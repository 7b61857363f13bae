/**
 * Sessions (NNsight's `model.session()`): several traces recorded before anything is sent, run as ONE Program
 * (`then` traces) so a later trace uses an earlier trace's values on the host without them leaving it; trainable
 * params (`s.param`), a declarative training loop (`s.train`) and keeping the trained params as an adapter
 * (`s.keep`). Nothing runs while the callback records. spec/program.md, "Sessions and training".
 */
import { TRAIN_LOSS_SAVE, WeftError, type Manifest, type OptimizerSpec, type ParamDecl, type ParamInit, type Program, type Tensor as CoreTensor, type ValueType } from '@weft/core'
import { Recorder } from '../trace/recorder.js'
import { moduleTree } from '../trace/module-tree.js'
import { Tracer, toInvoke, type TraceInput } from '../trace/tracer.js'
import { ValueProxy } from '../trace/value-proxy.js'
import { ParamRef } from '../trace/param-ref.js'
import type { Envoy } from '../trace/envoy.js'

export { ParamRef }

/** How a param starts: zeros, a tensor (data of the declared shape), a seeded normal, or a kept adapter's param. */
export type ParamInitOption = 'zeros' | CoreTensor | Float32Array | { normal: { mean?: number; std: number; seed: number } } | { adapter: string; param?: string }

export interface ParamOptions { shape: number[]; init?: ParamInitOption }

export interface TrainOptions {
  /** params to update (default: every param declared so far) */
  params?: ParamRef[]
  optimizer: OptimizerSpec
  steps?: number
  epochs?: number
  /** each step's inputs, one per invoke of the training trace (default: the trace's own inputs every step) */
  batches?: TraceInput[][]
}

export type SessionSingleFn<T, R> = (model: T, tracer: Tracer<T>) => R
export type SessionMultiFn<T, R> = (tracer: Tracer<T>) => R

/** The recording handle a session callback gets. */
export class SessionBuilder<T = Envoy> {
  /** @internal */ readonly recorders: Recorder[] = []
  /** @internal */ readonly params: Record<string, ParamDecl> = {}
  /** @internal */ training: { loss: ValueProxy; options: TrainOptions } | null = null
  /** @internal */ keepAs: string | null = null
  /** @internal */ modes: ('trace' | 'generate')[] = []

  constructor (private readonly manifest: Manifest, private readonly tokenize: ((text: string) => number[]) | null) {}

  /** Declares a trainable float32 tensor; use it as an operand in any trace (`h.add(v)`), or take `t.grad` of it. */
  param (name: string, options: ParamOptions): ParamRef {
    if (Object.hasOwn(this.params, name)) throw new WeftError('PROGRAM_INVALID', `param '${name}' is already declared in this session`)
    const decl: ParamDecl = { shape: [...options.shape], dtype: 'float32', init: toInit(options.init ?? 'zeros', name) }
    this.params[name] = decl
    return new ParamRef(name, decl)
  }

  /** Records a trace of the session; returns what `fn` returns (values stay symbolic: pass them to later traces, or `.save()` them). */
  trace<R> (input: TraceInput, fn: SessionSingleFn<T, R>): R
  trace<R> (fn: SessionMultiFn<T, R>): R
  trace<R> (first: TraceInput | SessionMultiFn<T, R>, second?: SessionSingleFn<T, R>): R {
    return this.record(first, second)
  }

  /**
   * The training loop (must be the session's first trace): `fn` records the forward and returns the scalar loss;
   * the host runs `steps` optimizer steps (PyTorch's formulas) without a round trip. The loss curve comes back.
   */
  train (input: TraceInput, fn: SessionSingleFn<T, ValueProxy>, options: TrainOptions): ValueProxy
  train (fn: SessionMultiFn<T, ValueProxy>, options: TrainOptions): ValueProxy
  train (first: TraceInput | SessionMultiFn<T, ValueProxy>, second: SessionSingleFn<T, ValueProxy> | TrainOptions, third?: TrainOptions): ValueProxy {
    if (this.recorders.length > 0) throw new WeftError('PROGRAM_INVALID', 's.train must be the first trace of a session')
    const options = (typeof first === 'function' ? second : third) as TrainOptions
    const loss = typeof first === 'function' ? this.record(first) : this.record(first, second as SessionSingleFn<T, ValueProxy>)
    if (!(loss instanceof ValueProxy)) throw new WeftError('PROGRAM_INVALID', 's.train: the callback must return the loss (a scalar traced value)')
    this.recorders[0]!.pin(loss.node)
    this.training = { loss, options }
    return loss
  }

  /** Keeps the final params on the executor as adapter `name` (embedded: in memory; remote: the provider's store). */
  keep (name: string): void { this.keepAs = name }

  private record<R> (first: TraceInput | SessionMultiFn<T, R>, second?: SessionSingleFn<T, R>): R {
    const index = this.recorders.length
    const recorder = new Recorder(this.manifest, {
      params: this.params,
      fromValue: (trace, node) => {
        const source = this.recorders[trace]
        if (source === undefined || trace >= index) throw new WeftError('PROGRAM_INVALID', `from: trace ${trace} is not an earlier trace`)
        return source.typeOf(node)
      },
    })
    recorder.carry = (value) => {
      const trace = this.recorders.indexOf(value.recorder)
      if (trace < 0 || trace >= index) return undefined
      value.recorder.pin(value.node)
      return recorder.add('from', { trace, node: value.node }, [])
    }
    this.recorders.push(recorder)
    this.modes.push('trace')
    const tracer = new Tracer<T>(recorder, moduleTree(this.manifest), this.tokenize)
    const returned = typeof first === 'function' ? first(tracer) : tracer.invoke(first, (m) => second!(m, tracer))
    if (recorder.invokes.length === 0) throw recorder.error('a trace needs at least one invoke (call t.invoke(input, m => …))', null)
    return returned
  }

  /** @internal The session as one Program. */
  build (): Program {
    if (this.recorders.length === 0) throw new WeftError('PROGRAM_INVALID', 'a session needs at least one trace (s.trace or s.train)')
    const model = { name: this.manifest.name, revision: this.manifest.revision }
    const programs = this.recorders.map(r => r.finish(model))
    // `from` nodes name the earlier trace's node as recorded: renumber them now that every trace is finished
    programs.forEach((p, t) => {
      if (t === 0) return
      p.nodes = p.nodes.map(([op, attrs, inputs]) => {
        if (op !== 'from') return [op, attrs, inputs]
        const source = this.recorders[attrs.trace as number]!
        return [op, { trace: attrs.trace as number, node: source.renumbered.get(attrs.node as number)! }, inputs]
      })
    })
    const [first, ...rest] = programs
    const program: Program = { ...first! }
    if (Object.keys(this.params).length > 0) program.params = this.params
    if (this.training !== null) {
      const { loss, options } = this.training
      const names = (options.params ?? Object.keys(this.params).map(n => ({ name: n }))).map(p => p.name)
      program.train = {
        params: names,
        loss: this.recorders[0]!.renumbered.get(loss.node)!,
        optimizer: options.optimizer,
        ...(options.steps === undefined ? {} : { steps: options.steps }),
        ...(options.epochs === undefined ? {} : { epochs: options.epochs }),
        ...(options.batches === undefined ? {} : { batches: options.batches.map(b => b.map(input => toInvoke(input, this.tokenize))) }),
      }
    }
    if (this.keepAs !== null) program.keep = { adapter: this.keepAs }
    if (rest.length > 0) program.then = rest.map(({ mode, invokes, nodes, locations }) => ({ mode, invokes, nodes, ...(locations === undefined ? {} : { locations }) }))
    return program
  }

  /** @internal saved value types of every trace (what `scan` would report) */
  savedTypes (): Record<string, ValueType> {
    return Object.assign({}, ...this.recorders.map(r => r.savedTypes())) as Record<string, ValueType>
  }
}

function toInit (init: ParamInitOption, name: string): ParamInit {
  if (init === 'zeros') return { zeros: true }
  if (init instanceof Float32Array) return { tensor: { dtype: 'float32', shape: [init.length], data: init } }
  if ('normal' in init) return { normal: { mean: init.normal.mean ?? 0, std: init.normal.std, seed: init.normal.seed } }
  if ('adapter' in init && typeof init.adapter === 'string') return { adapter: { name: init.adapter, param: init.param ?? name } }
  return { tensor: init as CoreTensor }
}

/** The loss curve of a session's training run (`train.loss`), or [] without training. */
export function lossCurve (saves: Record<string, { toFlat (): number[] }>): number[] {
  return saves[TRAIN_LOSS_SAVE]?.toFlat() ?? []
}

declare module '../trace/value-proxy.js' {
  /** OP_METHODS rows may name SessionBuilder's members (value-proxy.ts) */
  interface OpRecorders { SessionBuilder: SessionBuilder }
}
