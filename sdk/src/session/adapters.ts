/**
 * The common adapters, declaratively: LoRA on a Linear/Conv1D module (`y += (x @ A) @ B · scale`, x the module's
 * input), a steering vector added to a site at every position, and a linear probe (`x @ W + b` over a detached
 * site). Each is params plus an edit recorded before every trace's own nodes (for every invoke; in generate mode at
 * every step) and an attachment (`keep.attach`) describing it, so a kept adapter can be applied again by name
 * (`model.withAdapter(name)`) without re-declaring anything. spec/program.md, "Keeping".
 */
import { OPS, WeftError, type AdapterAttachment, type Manifest, type ParamDecl, type SitePort, type ValueType } from '@weft/core'
import type { Edit } from '../edit/edit.js'
import type { Envoy } from '../trace/envoy.js'
import { ParamRef } from '../trace/param-ref.js'
import type { SiteProxy } from '../trace/site-proxy.js'
import type { ValueProxy } from '../trace/value-proxy.js'
import { callerLocation } from '../trace/location.js'
import type { AdapterInfo } from '../executor.js'

/** The value type of `path`'s `port` on the model (the sequence length left symbolic). */
function siteType (manifest: Manifest, path: string, port: SitePort): ValueType {
  try {
    return OPS.read.infer({ site: path, port, invoke: 0 }, [], { manifest, seqLen: () => 'seq' })
  } catch (error) {
    if (!WeftError.is(error)) throw error
    throw new WeftError('PROGRAM_INVALID', `'${path}' (${port}) is not a site of ${manifest.name}: ${error.message}`, { site: path, port })
  }
}

/** The last dim of a site (its feature size); a symbolic one is refused. */
export function features (manifest: Manifest, path: string, port: SitePort): number {
  const last = siteType(manifest, path, port).shape.at(-1)
  if (typeof last !== 'number') throw new WeftError('PROGRAM_INVALID', `'${path}' (${port}) has no fixed feature size (last dim ${String(last)})`, { site: path, port })
  return last
}

/** The site proxy of `path`'s `port` under a root envoy (`transformer.h.3.mlp.c_fc` → m.transformer.h[3].mlp.c_fc). */
function siteOf (model: unknown, path: string, port: SitePort): SiteProxy {
  let envoy = model as Envoy
  for (const part of path.split('.')) envoy = envoy.child(part)
  return envoy[port]
}

/** The edit an attachment records for every invoke (none for a probe: it reads, it does not change the model). */
export function attachmentEdit<T> (attachment: AdapterAttachment, refs: (param: string) => ParamRef): Edit<T> | null {
  if ('lora' in attachment) {
    const { module, a, b, scale } = attachment.lora
    const [A, B] = [refs(a), refs(b)]
    return {
      inplace: false,
      location: null,
      fn: (m) => {
        const x = siteOf(m, module, 'input')
        const y = siteOf(m, module, 'output')
        y.set(y.add(x.matmul(A).matmul(B).mul(scale)))
      },
    }
  }
  if ('steer' in attachment) {
    const { site, port, param } = attachment.steer
    const v = refs(param)
    return {
      inplace: false,
      location: null,
      fn: (m) => {
        const h = siteOf(m, site, port)
        h.set(h.add(v))
      },
    }
  }
  return null
}

/** A linear probe `x @ W + b` over a site's activations (detached: training the probe never changes the model). */
export class Probe {
  constructor (readonly site: string, readonly port: SitePort, readonly W: ParamRef, readonly b: ParamRef | null) {}

  /** The probe's output on this invoke's site value (`m` is the invoke's model envoy): `[1, seq, outputs]`. */
  on (m: unknown): ValueProxy { return this.of(siteOf(m, this.site, this.port)) }

  /** The probe's output on any value whose last dim is the site's feature size (detached first). */
  of (x: ValueProxy): ValueProxy {
    const out = x.detach().matmul(this.W)
    return this.b === null ? out : out.add(this.b)
  }
}

/** A kept adapter applied to a model view (`model.withAdapter(name)`): its params under view-wide names, its probes. */
export class AppliedAdapter {
  /** the adapter's params by their kept name, usable as operands in any trace of the view */
  readonly params: Readonly<Record<string, ParamRef>>
  /** the probes it holds (attachments of kind `probe`), in order */
  readonly probes: readonly Probe[]
  /** @internal the Program params the view declares (`init: {adapter}`) */
  readonly decls: Readonly<Record<string, ParamDecl>>
  /** @internal edits the view records before every trace */
  readonly edits: readonly Edit<never>[]
  /** @internal the attachments under the view's param names (kept again when a session of the view keeps) */
  readonly attachments: readonly AdapterAttachment[]

  constructor (readonly info: AdapterInfo, prefix: string) {
    const decls: Record<string, ParamDecl> = {}
    const params: Record<string, ParamRef> = {}
    for (const [param, { shape, dtype }] of Object.entries(info.params)) {
      if (dtype !== 'float32') throw new WeftError('ADAPTER_MISMATCH', `adapter '${info.name}' param '${param}' is ${dtype}; params are float32`, { adapter: info.name, param })
      const decl: ParamDecl = { shape: [...shape], dtype: 'float32', init: { adapter: { name: info.name, param } } }
      decls[`${prefix}${param}`] = decl
      params[param] = new ParamRef(`${prefix}${param}`, decl)
    }
    const refs = (param: string): ParamRef => {
      const ref = params[param]
      if (ref === undefined) throw new WeftError('ADAPTER_MISMATCH', `adapter '${info.name}' attaches param '${param}', which it does not hold`, { adapter: info.name, param })
      return ref
    }
    const attach = info.attach ?? []
    const as = (param: string): string => refs(param).name
    this.attachments = attach.map((a): AdapterAttachment => 'lora' in a
      ? { lora: { ...a.lora, a: as(a.lora.a), b: as(a.lora.b) } }
      : 'steer' in a
        ? { steer: { ...a.steer, param: as(a.steer.param) } }
        : { probe: { ...a.probe, w: as(a.probe.w), ...(a.probe.b === undefined ? {} : { b: as(a.probe.b) }) } })
    this.params = params
    this.decls = decls
    this.edits = attach.map(a => attachmentEdit<never>(a, refs)).filter((e): e is Edit<never> => e !== null)
    this.probes = attach.flatMap(a => 'probe' in a ? [new Probe(a.probe.site, a.probe.port, refs(a.probe.w), a.probe.b === undefined ? null : refs(a.probe.b))] : [])
  }

  get name (): string { return this.info.name }

  /** The adapter's (first) probe on this invoke's site: `tuned.adapters[0].probe(m)`. */
  probe (m: unknown, index = 0): ValueProxy {
    const probe = this.probes[index]
    if (probe === undefined) throw new WeftError('PROGRAM_INVALID', `adapter '${this.info.name}' holds ${this.probes.length} probe(s); there is no probe ${index}`, { adapter: this.info.name })
    return probe.on(m)
  }
}

/**
 * Mean cross-entropy of `logits` (`[classes]` or `[n, classes]`, any leading 1-dims squeezed by the caller) against
 * integer `labels` (one per row): `mean_i(−log_softmax(logits_i)[label_i])`, PyTorch's `F.cross_entropy`.
 */
export function crossEntropy (logits: ValueProxy, labels: number | readonly number[]): ValueProxy {
  const shape = logits.shape
  const classes = shape.at(-1)
  if (typeof classes !== 'number' || (shape.length !== 1 && shape.length !== 2)) {
    throw logits.recorder.error(`crossEntropy: logits must be [classes] or [n, classes], got [${shape.join(', ')}]`, callerLocation())
  }
  const rows = shape.length === 1 ? 1 : shape[0]
  const list = typeof labels === 'number' ? [labels] : [...labels]
  if (typeof rows !== 'number' || list.length !== rows) throw logits.recorder.error(`crossEntropy: ${list.length} label(s) for ${String(rows)} row(s) of logits`, callerLocation())
  const bad = list.find(l => !Number.isInteger(l) || l < 0 || l >= classes)
  if (bad !== undefined) throw logits.recorder.error(`crossEntropy: label ${bad} is not a class in [0, ${classes})`, callerLocation())
  const onehot = new Float32Array(rows * classes)
  list.forEach((label, i) => { onehot[i * classes + label] = 1 })
  const picked = logits.logSoftmax(-1).mul({ dtype: 'float32', shape: shape.length === 1 ? [classes] : [rows, classes], data: onehot }).sum(-1)
  return picked.neg().mean()
}

/** Mean squared error `mean((pred − target)²)`, PyTorch's `F.mse_loss` (target: numbers of pred's shape, or a value). */
export function mse (pred: ValueProxy, target: ValueProxy | number | readonly number[] | Float32Array): ValueProxy {
  const t = target instanceof Float32Array || Array.isArray(target)
    ? { dtype: 'float32' as const, shape: pred.shape.map(d => typeof d === 'number' ? d : 1), data: Float32Array.from(target as ArrayLike<number>) }
    : target as ValueProxy | number
  const d = pred.sub(t)
  return d.mul(d).mean()
}
