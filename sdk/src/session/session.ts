/**
 * Sessions (NNsight's `model.session()`): several traces recorded before anything is sent, run as ONE Program
 * (`then` traces) so a later trace uses an earlier trace's values on the host without them leaving it; trainable
 * params (`s.param`), a declarative training loop (`s.train`) and keeping the trained params as an adapter
 * (`s.keep`). Nothing runs while the callback records. spec/program.md, "Sessions and training".
 */
import { TRAIN_LOSS_SAVE, WeftError, type AdapterAttachment, type Manifest, type OptimizerSpec, type ParamDecl, type ParamInit, type Program, type SitePort, type Tensor as CoreTensor, type ValueType } from '@weft/core'
import { applyEdits, type Edit } from '../edit/edit.js'
import { Probe, attachmentEdit, features } from './adapters.js'
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

export interface LoraOptions {
  /** the rank r: A is [in, r], B is [r, out] */
  rank: number
  /** scale = alpha / rank (PEFT's lora_alpha); or give `scale` itself. Default: scale 1 */
  alpha?: number
  scale?: number
  /** initial A and B (default: A a seeded normal with std 1/rank, seed 0; B zeros — the LoRA starts as a no-op) */
  init?: { A?: ParamInitOption; B?: ParamInitOption }
  /** param name prefix (default: the module path): params `<name>.A`, `<name>.B` */
  name?: string
}

export interface SteerOptions {
  /** the site's port (default 'output') */
  port?: SitePort
  /** the vector's shape (default: [the site's feature size]); it broadcasts onto the site at every position */
  shape?: number[]
  /** default zeros */
  init?: ParamInitOption
  /** param name (default `<site>.steer`) */
  name?: string
}

export interface ProbeOptions {
  /** number of outputs k: W is [features, k] */
  outputs: number
  port?: SitePort
  /** with a bias b [k] (default true) */
  bias?: boolean
  /** initial W (default zeros) and b (default zeros) */
  init?: { W?: ParamInitOption; b?: ParamInitOption }
  /** param name prefix (default `<site>.probe`): params `<name>.W`, `<name>.b` */
  name?: string
}

/** The LoRA of `s.lora`: its two params. */
export interface Lora { A: ParamRef; B: ParamRef; scale: number }

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
  /** @internal how the declared adapters apply (kept with `keep` as `keep.attach`) */
  readonly attachments: AdapterAttachment[] = []
  /** @internal edits every trace of the session records first: the model's, then `s.lora`/`s.steer`'s */
  private readonly edits: Edit<T>[] = []

  /**
   * `inherited`: a model view's kept adapters — their params (declared with `{adapter}` inits), edits and
   * attachments — and the model's edits; every trace of the session applies them.
   */
  constructor (private readonly manifest: Manifest, private readonly tokenize: ((text: string) => number[]) | null,
    inherited: { params?: Record<string, ParamDecl>; edits?: readonly Edit<T>[]; attachments?: readonly AdapterAttachment[] } = {}) {
    Object.assign(this.params, inherited.params ?? {})
    this.edits.push(...(inherited.edits ?? []))
    this.attachments.push(...(inherited.attachments ?? []))
  }

  /**
   * LoRA on a Linear/Conv1D module (`transformer.h.3.mlp.c_fc`): declares A [in, rank] and B [rank, out] and adds
   * `(x @ A) @ B · scale` (x the module's input) to its output in every trace of the session, for every invoke.
   * Train them with `s.train`; `s.keep(name)` keeps them with this attachment, so `model.withAdapter(name)` applies it.
   */
  lora (module: string, options: LoraOptions): Lora {
    this.beforeTraces('s.lora')
    const rank = options.rank
    if (!Number.isInteger(rank) || rank < 1) throw new WeftError('PROGRAM_INVALID', `s.lora: rank must be a positive integer, got ${String(rank)}`)
    if (options.alpha !== undefined && options.scale !== undefined) throw new WeftError('PROGRAM_INVALID', 's.lora: give alpha or scale, not both')
    const scale = options.scale ?? (options.alpha === undefined ? 1 : options.alpha / rank)
    const [inDim, outDim] = [features(this.manifest, module, 'input'), features(this.manifest, module, 'output')]
    const prefix = options.name ?? module
    const A = this.param(`${prefix}.A`, { shape: [inDim, rank], init: options.init?.A ?? { normal: { std: 1 / rank, seed: 0 } } })
    const B = this.param(`${prefix}.B`, { shape: [rank, outDim], init: options.init?.B ?? 'zeros' })
    this.attach({ lora: { module, a: A.name, b: B.name, scale } })
    return { A, B, scale }
  }

  /** A steering vector added to `site` (default its output) at every position, in every trace of the session. */
  steer (site: string, options: SteerOptions = {}): ParamRef {
    this.beforeTraces('s.steer')
    const port = options.port ?? 'output'
    const shape = options.shape ?? [features(this.manifest, site, port)]
    const v = this.param(options.name ?? `${site}.steer`, { shape, init: options.init ?? 'zeros' })
    this.attach({ steer: { site, port, param: v.name } })
    return v
  }

  /**
   * A linear probe over `site`'s activations: W [features, outputs] (+ b [outputs]); `probe.on(m)` is `x @ W + b`
   * for the invoke's (detached) site value. Train it with `s.train` and a loss on its output (`crossEntropy`, `mse`);
   * it changes nothing in the model. Kept, `model.withAdapter(name)` gives it back as `adapters[i].probe(m)`.
   */
  probe (site: string, options: ProbeOptions): Probe {
    const port = options.port ?? 'output'
    if (!Number.isInteger(options.outputs) || options.outputs < 1) throw new WeftError('PROGRAM_INVALID', `s.probe: outputs must be a positive integer, got ${String(options.outputs)}`)
    const prefix = options.name ?? `${site}.probe`
    const W = this.param(`${prefix}.W`, { shape: [features(this.manifest, site, port), options.outputs], init: options.init?.W ?? 'zeros' })
    const b = options.bias === false ? null : this.param(`${prefix}.b`, { shape: [options.outputs], init: options.init?.b ?? 'zeros' })
    this.attachments.push({ probe: { site, port, w: W.name, ...(b === null ? {} : { b: b.name }) } })
    return new Probe(site, port, W, b)
  }

  private beforeTraces (what: string): void {
    if (this.recorders.length > 0) throw new WeftError('PROGRAM_INVALID', `${what} comes before the session's first trace (it applies to every trace of the session)`)
  }

  private attach (attachment: AdapterAttachment): void {
    this.attachments.push(attachment)
    const edit = attachmentEdit<T>(attachment, (name) => new ParamRef(name, this.params[name]!))
    if (edit !== null) this.edits.push(edit)
  }

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
    if (this.keepAs !== null) program.keep = { adapter: this.keepAs, ...(this.attachments.length === 0 ? {} : { attach: this.attachments }) }
    if (rest.length > 0) program.then = rest.map(({ mode, invokes, nodes, locations }) => ({ mode, invokes, nodes, ...(locations === undefined ? {} : { locations }) }))
    // the edits' nodes go before each trace's own: `from` nodes and the loss follow the shifted indices
    return applyEdits(program, this.manifest, this.edits)
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
