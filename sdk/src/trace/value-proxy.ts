/**
 * ValueProxy: a symbolic value inside a trace (one Program node). Methods record ops; nothing runs until the
 * trace ends. Every proxy knows its shape and dtype, so mistakes surface while recording.
 */
import { WeftError, type Attrs, type DType, type Tensor as CoreTensor, type Dim, type OpName } from '@weft/core'
import type { Recorder } from './recorder.js'
import { toIndexSpec, type IndexArg } from '../tensor/indexing.js'
import { callerLocation } from './location.js'
import { isParamRef, type ParamRef } from './param-ref.js'

/** What an arithmetic method accepts: another proxy, a number, nested arrays, or a tensor. */
export type Operand = ValueProxy | number | boolean | readonly unknown[] | CoreTensor | ParamRef

/** Optional reduce arguments. */
export interface ReduceOptions { keepdims?: boolean }

/** What `backward` takes: one value, an array or an object of values (site reads or parameters). */
export type GradTargets = ValueProxy | readonly ValueProxy[] | { readonly [key: string]: ValueProxy }
/** `backward`'s result: the gradients in the shape of what was asked. */
export type Gradients<T extends GradTargets> = T extends ValueProxy ? ValueProxy : { -readonly [K in keyof T]: ValueProxy }

export class ValueProxy {
  /** @internal */ readonly recorder: Recorder
  /** Index of this value's node in the Program. */
  readonly node: number
  /** @internal the save node made for this value, if any */
  saveNode: number | null = null
  /** @internal whether the save name was given explicitly */
  namedSave = false

  constructor (recorder: Recorder, node: number) {
    this.recorder = recorder
    this.node = node
  }

  get shape (): readonly Dim[] { return this.recorder.typeOf(this.node).shape }
  get dtype (): DType { return this.recorder.typeOf(this.node).dtype }
  get rank (): number { return this.shape.length }

  /** Marks this value as a result. Unnamed saves take their name from where the trace callback returns them. */
  save (name?: string): this {
    if (this.saveNode !== null) {
      if (name !== undefined) this.recorder.renameSave(this.saveNode, name)
      return this
    }
    const chosen = name ?? this.recorder.freshSaveName()
    this.saveNode = this.recorder.add('save', { name: chosen }, [this.node])
    this.recorder.claimSaveName(chosen, this.saveNode)
    this.namedSave = name !== undefined
    return this
  }

  protected op (op: string, attrs: Attrs, others: readonly Operand[] = []): ValueProxy {
    const inputs = [this.node, ...others.map((other) => this.lift(other))]
    return new ValueProxy(this.recorder, this.recorder.add(op, attrs, inputs))
  }

  /** @internal Turns an operand into a node of this trace (constants become `const` nodes). */
  lift (value: Operand): number { return liftInto(this.recorder, value) }

  add (other: Operand): ValueProxy { return this.op('add', {}, [other]) }
  /** The same value with no gradient (PyTorch's `detach`): `h.set(h.detach())` zeroes the gradient through a site. */
  detach (): ValueProxy { return this.op('detach', {}) }
  sub (other: Operand): ValueProxy { return this.op('sub', {}, [other]) }
  mul (other: Operand): ValueProxy { return this.op('mul', {}, [other]) }
  div (other: Operand): ValueProxy { return this.op('div', {}, [other]) }
  pow (other: Operand): ValueProxy { return this.op('pow', {}, [other]) }
  matmul (other: Operand): ValueProxy { return this.op('matmul', {}, [other]) }
  neg (): ValueProxy { return this.op('neg', {}) }
  exp (): ValueProxy { return this.op('exp', {}) }
  log (): ValueProxy { return this.op('log', {}) }
  sqrt (): ValueProxy { return this.op('sqrt', {}) }
  abs (): ValueProxy { return this.op('abs', {}) }
  tanh (): ValueProxy { return this.op('tanh', {}) }
  relu (): ValueProxy { return this.op('relu', {}) }
  sin (): ValueProxy { return this.op('sin', {}) }
  cos (): ValueProxy { return this.op('cos', {}) }
  sigmoid (): ValueProxy { return this.op('sigmoid', {}) }
  erf (): ValueProxy { return this.op('erf', {}) }
  /** GELU, exact (erf) by default; `{ approximate: 'tanh' }` is GPT-2's gelu_new. */
  gelu (options: { approximate?: 'none' | 'tanh' } = {}): ValueProxy { return this.op('gelu', { approximate: options.approximate ?? 'none' }) }
  /** SiLU (swish): x · sigmoid(x). */
  silu (): ValueProxy { return this.op('silu', {}) }
  /** PyTorch's `clamp(min, max)`: either bound may be null/undefined (not both). */
  clamp (min?: number | null, max?: number | null): ValueProxy {
    return this.op('clamp', { ...(min === null || min === undefined ? {} : { min }), ...(max === null || max === undefined ? {} : { max }) })
  }
  /** Running sum along `axis`; `exclusive` leaves each element out, `reverse` runs from the end. */
  cumsum (axis: number, options: { exclusive?: boolean; reverse?: boolean } = {}): ValueProxy {
    return this.op('cumsum', { axis, exclusive: options.exclusive ?? false, reverse: options.reverse ?? false })
  }

  /** Logical ops (nonzero counts as true), bool results. */
  logicalAnd (other: Operand): ValueProxy { return this.op('logical_and', {}, [other]) }
  logicalOr (other: Operand): ValueProxy { return this.op('logical_or', {}, [other]) }
  logicalXor (other: Operand): ValueProxy { return this.op('logical_xor', {}, [other]) }
  logicalNot (): ValueProxy { return this.op('logical_not', {}) }

  /** PyTorch's `x.gather(axis, index)`: out[i][j] = x[index[i][j]][j] along axis 0 (index: int tensor of x's rank). */
  gather (axis: number, index: Operand): ValueProxy { return this.op('gather', { axis }, [asIndex(index)]) }
  /**
   * PyTorch's `scatter`: a copy of this value with the values written at the index positions along `axis`;
   * `{ reduction: 'add' }` adds them instead (`scatter_add`).
   */
  scatter (axis: number, index: Operand, values: Operand, options: { reduction?: 'none' | 'add' } = {}): ValueProxy {
    return this.op('scatter', { axis, reduction: options.reduction ?? 'none' }, [asIndex(index), values])
  }
  /** PyTorch's `scatter_add`: `scatter(axis, index, values, { reduction: 'add' })`. */
  scatterAdd (axis: number, index: Operand, values: Operand): ValueProxy { return this.scatter(axis, index, values, { reduction: 'add' }) }

  /** Einstein summation with this value as the first operand: `q.einsum('bhqd,bhkd->bhqk', k)` (subset: see spec/ops.md). */
  einsum (equation: string, ...others: Operand[]): ValueProxy { return this.op('einsum', { equation }, others) }

  eq (other: Operand): ValueProxy { return this.op('eq', {}, [other]) }
  ne (other: Operand): ValueProxy { return this.op('ne', {}, [other]) }
  lt (other: Operand): ValueProxy { return this.op('lt', {}, [other]) }
  le (other: Operand): ValueProxy { return this.op('le', {}, [other]) }
  gt (other: Operand): ValueProxy { return this.op('gt', {}, [other]) }
  ge (other: Operand): ValueProxy { return this.op('ge', {}, [other]) }
  /** `this` is the condition: picks `a` where true, `b` elsewhere. */
  where (a: Operand, b: Operand): ValueProxy { return this.op('where', {}, [a, b]) }
  cast (dtype: DType): ValueProxy { return this.op('cast', { dtype }) }

  sum (axes: number | number[] | null = null, options: ReduceOptions = {}): ValueProxy { return this.reduce('sum', axes, options) }
  mean (axes: number | number[] | null = null, options: ReduceOptions = {}): ValueProxy { return this.reduce('mean', axes, options) }
  max (axes: number | number[] | null = null, options: ReduceOptions = {}): ValueProxy { return this.reduce('max', axes, options) }
  min (axes: number | number[] | null = null, options: ReduceOptions = {}): ValueProxy { return this.reduce('min', axes, options) }
  norm (axes: number | number[] | null = null, options: ReduceOptions & { ord?: 1 | 2 } = {}): ValueProxy {
    return this.op('norm', { axes: toAxes(axes), keepdims: options.keepdims ?? false, ord: options.ord ?? 2 })
  }

  argmax (axis = -1, options: ReduceOptions = {}): ValueProxy { return this.op('argmax', { axis, keepdims: options.keepdims ?? false }) }
  /** The k largest values and their indices along `axis` (default last), largest first. */
  topk (k: number, axis = -1): { values: ValueProxy; indices: ValueProxy } {
    return { values: this.op('topk', { k, axis, output: 'values' }), indices: this.op('topk', { k, axis, output: 'indices' }) }
  }

  softmax (axis = -1): ValueProxy { return this.op('softmax', { axis }) }
  logSoftmax (axis = -1): ValueProxy { return this.op('log_softmax', { axis }) }

  reshape (...shape: number[]): ValueProxy { return this.op('reshape', { shape }) }
  /** Permutes dims; with no arguments swaps the last two. */
  transpose (...perm: number[]): ValueProxy {
    const order = perm.length > 0 ? perm : [...Array(Math.max(0, this.rank - 2)).keys(), this.rank - 1, this.rank - 2]
    return this.op('transpose', { perm: order })
  }

  /** numpy basic indexing: `at(':', -1)`, `at(0, '2:5')`, `at(null, [0, 3, 1])`. */
  at (...index: IndexArg[]): ValueProxy {
    let spec
    try { spec = toIndexSpec(index) } catch (error) { throw this.withLocation(error) }
    return this.op('index', { index: spec })
  }

  concat (others: readonly Operand[], axis = 0): ValueProxy { return this.op('concat', { axis }, others) }
  stack (others: readonly Operand[], axis = 0): ValueProxy { return this.op('stack', { axis }, others) }

  /**
   * d(of)/d(this) for a scalar `of` (shape [] or all 1s): the gradient at this forward pass with every `set` in
   * force, shaped like this value. `this` must be a site read (`.output`, `.input`) or a parameter (`t.param`).
   */
  grad (of: ValueProxy): ValueProxy {
    const op = this.recorder.opOf(this.node)
    if (op !== 'read' && op !== 'param' && op !== 'trainable') {
      throw this.recorder.error(`grad: gradients are taken w.r.t. a site (.output/.input) or a parameter, not a computed value (${op}); ` +
        'take the site\'s gradient and index that instead: h.grad(loss).at(…)', callerLocation(), { op: 'grad' })
    }
    return new ValueProxy(this.recorder, this.recorder.add('grad', {}, [this.lift(of), this.node]))
  }

  /** NNsight's `loss.backward()`: the gradients of this scalar w.r.t. each given site read or parameter (one backward pass). */
  backward<T extends GradTargets> (wrt: T): Gradients<T> {
    if (wrt instanceof ValueProxy) return wrt.grad(this) as Gradients<T>
    if (Array.isArray(wrt)) return wrt.map((x: ValueProxy) => x.grad(this)) as Gradients<T>
    return Object.fromEntries(Object.entries(wrt).map(([key, x]) => [key, x.grad(this)])) as Gradients<T>
  }

  toString (): string { return `ValueProxy(#${this.node} ${this.dtype} [${this.shape.join(', ')}])` }

  /** Values inside a trace are symbolic: `proxy > 0`, `+proxy`, `if (proxy.gt(0))` cannot be decided while recording. */
  [Symbol.toPrimitive] (hint: string): string {
    if (hint === 'string') return this.toString()
    throw symbolic(this.recorder, 'compared or converted to a number',
      'record the comparison as an op (`x.gt(0)`, `x.where(a, b)`) or save the value and branch on the Tensor after the trace')
  }

  valueOf (): never {
    throw symbolic(this.recorder, 'converted to a number',
      'record the arithmetic as ops (`x.add(1)`, `x.gt(0)`) or save the value and read the Tensor after the trace')
  }

  /** NNsight's `.item()`: there is no number while recording. */
  item (): never {
    throw symbolic(this.recorder, 'read as a number with .item()',
      'save it (`x.save()` or return it from the callback) and call `.item()` on the resulting Tensor after the trace')
  }

  protected withLocation (error: unknown): unknown {
    return WeftError.is(error) ? this.recorder.error(error.message, callerLocation(), error.details) : error
  }

  private reduce (op: string, axes: number | number[] | null, options: ReduceOptions): ValueProxy {
    return this.op(op, { axes: toAxes(axes), keepdims: options.keepdims ?? false })
  }
}

/** The error for a symbolic value used as if it were a number, at the researcher's line. */
function symbolic (recorder: Recorder, what: string, instead: string): WeftError {
  return recorder.error(`a traced value has no value while recording and cannot be ${what}; ${instead}`, callerLocation(), { mistake: what })
}

/**
 * NNsight's habit `output[0]` (HF modules return tuples): Weft's `.output` is already the primary output, so a
 * numeric index on a traced value throws instead of quietly giving undefined. Use `.at(i)` to index the tensor.
 */
for (let i = 0; i < 8; i++) {
  Object.defineProperty(ValueProxy.prototype, String(i), {
    configurable: true,
    enumerable: false,
    get (this: ValueProxy) {
      throw this.recorder.error(`a traced value cannot be indexed with [${i}]: \`.output\` is already the module's primary output ` +
        `(the first element of HF's tuple), so write \`.output\` instead of \`.output[${i}]\`; to index the tensor, write \`.at(${i})\``,
      callerLocation(), { mistake: 'tuple-index' })
    },
  })
}

/** Turns an operand into a node of `recorder`'s Program (constants become `const` nodes). */
export function liftInto (recorder: Recorder, value: Operand): number {
  if (isParamRef(value)) return recorder.add('trainable', { name: value.name }, [])
  if (value instanceof ValueProxy) {
    const carried = value.recorder === recorder ? undefined : recorder.carry?.(value)
    if (carried !== undefined) return carried
    if (value.recorder !== recorder) throw recorder.error('a value from another trace cannot be used here; save it and pass the Tensor instead', callerLocation())
    return value.node
  }
  let tensor
  try { tensor = toConstTensor(value) } catch (error) {
    throw WeftError.is(error) ? recorder.error(error.message, callerLocation()) : error
  }
  return recorder.add('const', { value: tensor }, [])
}

function toAxes (axes: number | number[] | null): number[] | null {
  return axes === null ? null : Array.isArray(axes) ? axes : [axes]
}

/** Numbers, nested arrays and tensors → a plain core tensor for a `const` node (numbers become float32). */
function toConstTensor (value: Exclude<Operand, ValueProxy>): CoreTensor {
  if (typeof value === 'number') return { dtype: 'float32', shape: [], data: Float32Array.of(value) }
  if (typeof value === 'boolean') return { dtype: 'bool', shape: [], data: Uint8Array.of(value ? 1 : 0) }
  if (Array.isArray(value)) {
    const shape: number[] = []
    const flat: number[] = []
    const walk = (item: unknown, depth: number): void => {
      if (Array.isArray(item)) {
        if (shape.length <= depth) shape.push(item.length)
        else if (shape[depth] !== item.length) throw new WeftError('PROGRAM_INVALID', `ragged array constant at depth ${depth}`)
        for (const inner of item) walk(inner, depth + 1)
      } else if (typeof item === 'number') flat.push(item)
      else throw new WeftError('PROGRAM_INVALID', `array constants hold numbers only, got ${typeof item}`)
    }
    walk(value, 0)
    return { dtype: 'float32', shape, data: Float32Array.from(flat) }
  }
  const tensor = value as CoreTensor
  if (tensor.shape === undefined || tensor.data === undefined) throw new WeftError('PROGRAM_INVALID', 'operand is not a number, array, Tensor or traced value')
  return { dtype: tensor.dtype, shape: [...tensor.shape], data: tensor.data }
}

/** Concatenates values along `axis` (all from the same trace, or constants after the first). */
export function concat (values: readonly [ValueProxy, ...Operand[]], axis = 0): ValueProxy {
  return values[0].concat(values.slice(1), axis)
}

/** Stacks values along a new `axis`. */
export function stack (values: readonly [ValueProxy, ...Operand[]], axis = 0): ValueProxy {
  return values[0].stack(values.slice(1), axis)
}

/** `cond ? a : b` elementwise. */
export function where (cond: ValueProxy, a: Operand, b: Operand): ValueProxy { return cond.where(a, b) }

/** `einsum('bij,bjk->bik', a, b)`: Einstein summation over traced values (the first must be traced). */
export function einsum (equation: string, first: ValueProxy, ...others: Operand[]): ValueProxy { return first.einsum(equation, ...others) }

/** Function forms of the unary ops, as in `torch.nn.functional`: `sigmoid(h)` is `h.sigmoid()`. */
export const exp = (x: ValueProxy): ValueProxy => x.exp()
export const log = (x: ValueProxy): ValueProxy => x.log()
export const sin = (x: ValueProxy): ValueProxy => x.sin()
export const cos = (x: ValueProxy): ValueProxy => x.cos()
export const tanh = (x: ValueProxy): ValueProxy => x.tanh()
export const sigmoid = (x: ValueProxy): ValueProxy => x.sigmoid()
export const erf = (x: ValueProxy): ValueProxy => x.erf()
export const gelu = (x: ValueProxy, options: { approximate?: 'none' | 'tanh' } = {}): ValueProxy => x.gelu(options)
export const silu = (x: ValueProxy): ValueProxy => x.silu()

/** Index operands: numbers and nested arrays become int64 constants (a traced value or a Tensor is used as is). */
function asIndex (index: Operand): Operand {
  if (typeof index !== 'number' && !Array.isArray(index)) return index
  const t = toConstTensor(index as number | readonly unknown[])
  return { dtype: 'int64', shape: t.shape, data: BigInt64Array.from(t.data as Float32Array, v => BigInt(Math.trunc(v))) }
}

/**
 * The classes (or interfaces) of the tracing API that record ops, by name. Each module that defines one adds its row
 * by declaration merging (`declare module './value-proxy.js'` in site-proxy.ts, envoy.ts, tracer.ts,
 * session/session.ts), so this module imports none of them (no import cycle) and OP_METHODS is still checked
 * against their members. Exported for that augmentation only (no module imports it by name; `@public` tells knip).
 * @public
 */
export interface OpRecorders { ValueProxy: ValueProxy }

/** Where an op is recorded in the tracing API: the class (or interface) and the member that adds its node. */
export type OpMethodRow = { [On in keyof OpRecorders]: { readonly on: On; readonly method: keyof OpRecorders[On] } }[keyof OpRecorders]

const value = <M extends keyof ValueProxy>(method: M) => ({ on: 'ValueProxy', method }) as const

/**
 * Every op of core's table and the SDK member that records it. `satisfies Record<OpName, …>`: an op added to the
 * table without a row here, or a row naming a member that does not exist, fails `tsc` (sdk/test/op-methods.test-d.ts).
 */
export const OP_METHODS = {
  read: { on: 'ModuleEnvoy', method: 'output' },
  write: { on: 'SiteProxy', method: 'set' },
  module_call: { on: 'ModuleEnvoy', method: 'call' },
  param: { on: 'Tracer', method: 'param' },
  const: value('lift'),
  stop: { on: 'Tracer', method: 'stop' },
  save: value('save'),
  index: value('at'),
  reshape: value('reshape'),
  transpose: value('transpose'),
  concat: value('concat'),
  stack: value('stack'),
  add: value('add'),
  sub: value('sub'),
  mul: value('mul'),
  div: value('div'),
  pow: value('pow'),
  neg: value('neg'),
  exp: value('exp'),
  log: value('log'),
  sqrt: value('sqrt'),
  abs: value('abs'),
  tanh: value('tanh'),
  relu: value('relu'),
  eq: value('eq'),
  ne: value('ne'),
  lt: value('lt'),
  le: value('le'),
  gt: value('gt'),
  ge: value('ge'),
  where: value('where'),
  cast: value('cast'),
  matmul: value('matmul'),
  sum: value('sum'),
  mean: value('mean'),
  max: value('max'),
  min: value('min'),
  argmax: value('argmax'),
  topk: value('topk'),
  norm: value('norm'),
  softmax: value('softmax'),
  log_softmax: value('logSoftmax'),
  grad: value('grad'),
  sin: value('sin'),
  cos: value('cos'),
  sigmoid: value('sigmoid'),
  erf: value('erf'),
  gelu: value('gelu'),
  silu: value('silu'),
  clamp: value('clamp'),
  logical_and: value('logicalAnd'),
  logical_or: value('logicalOr'),
  logical_xor: value('logicalXor'),
  logical_not: value('logicalNot'),
  cumsum: value('cumsum'),
  gather: value('gather'),
  scatter: value('scatter'),
  einsum: value('einsum'),
  // a `s.param(…)` handle used inside a session's trace records `trainable`
  trainable: { on: 'SessionBuilder', method: 'param' },
  // a value of an earlier trace of the session used in a later `s.trace(…)` records `from`
  from: { on: 'SessionBuilder', method: 'trace' },
  detach: value('detach'),
} as const satisfies Record<OpName, OpMethodRow>

