/**
 * Sessions and training (spec/program.md, "Sessions and training"): structural checks of `params`, `train`, `keep`
 * and `then`; the specified generator of `normal` initial values; the traces of a session as standalone Programs;
 * the training step count. A leaf of `ir/` besides plain.ts and generate.ts (structure.ts imports it).
 */
import { show } from '../errors/show.js'
import { WeftError } from '../errors/weft-error.js'
import type { Tensor } from '../tensor/tensor.js'
import { isTensor } from '../tensor/create.js'
import type { Invoke, ParamDecl, Program, Trace } from './program.js'
import { MAX_SEED } from './generate.js'
import { isObject, isUint } from './plain.js'

/** Reserved save name of the loss curve of a training run (float32 `[completedSteps]`). */
export const TRAIN_LOSS_SAVE = 'train.loss'

/** Largest number of optimizer steps one Program may ask for. */
export const MAX_TRAIN_STEPS = 100_000

/** Largest number of elements of one declared param (2^24 = 64 MiB of float32). */
export const MAX_PARAM_ELEMENTS = 1 << 24

/** Names of params and adapters: 1–64 characters of [A-Za-z0-9._-]. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

interface Problem { node: number | null; message: string }

const TRACE_KEYS = new Set(['mode', 'generate', 'invokes', 'nodes', 'locations'])
const OPTIMIZER_KEYS: Record<string, readonly string[]> = {
  sgd: ['kind', 'lr', 'momentum', 'dampening', 'nesterov', 'weightDecay', 'maximize'],
  adam: ['kind', 'lr', 'betas', 'eps', 'weightDecay', 'maximize'],
  adamw: ['kind', 'lr', 'betas', 'eps', 'weightDecay', 'maximize'],
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

function paramProblems (name: string, decl: unknown, add: (m: string) => void): void {
  const at = (m: string): void => add(`params.${name}: ${m}`)
  if (!NAME_PATTERN.test(name)) add(`param name ${show(name)} must be 1-64 characters of [A-Za-z0-9._-]`)
  if (!isObject(decl)) return at('must be a map {shape, dtype, init}')
  for (const key of Object.keys(decl)) if (!['shape', 'dtype', 'init'].includes(key)) at(`unknown field '${key}'`)
  const shape = decl.shape
  const shapeOk = Array.isArray(shape) && shape.every(d => isUint(d) && d >= 1) && shape.length <= 8
  if (!shapeOk) at(`shape must be a list of at most 8 positive integers, got ${show(shape)}`)
  else if (shape.reduce((a: number, b: number) => a * b, 1) > MAX_PARAM_ELEMENTS) at(`has more than ${MAX_PARAM_ELEMENTS} elements`)
  if (decl.dtype !== 'float32') at(`dtype must be 'float32', got ${show(decl.dtype)}`)
  const init = decl.init
  if (!isObject(init) || Object.keys(init).length !== 1) return at('init must be one of {zeros: true}, {tensor}, {normal: {mean, std, seed}}, {adapter: {name, param}}')
  const [kind] = Object.keys(init)
  if (kind === 'zeros') {
    if (init.zeros !== true) at('init.zeros must be true')
  } else if (kind === 'tensor') {
    const t = init.tensor
    if (!isTensor(t)) at('init.tensor must be a tensor')
    else {
      if (t.dtype !== 'float32') at(`init.tensor must be float32, got ${t.dtype}`)
      if (shapeOk && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) at(`init.tensor has shape [${t.shape.join(', ')}], the param [${(shape as number[]).join(', ')}]`)
      if (t.data.length !== t.shape.reduce((a, b) => a * b, 1)) at('init.tensor data does not fill its shape')
    }
  } else if (kind === 'normal') {
    const n = init.normal
    if (!isObject(n) || Object.keys(n).some(k => !['mean', 'std', 'seed'].includes(k))) return at('init.normal must be {mean, std, seed}')
    if (!finite(n.mean)) at(`init.normal.mean must be a finite number, got ${show(n.mean)}`)
    if (!finite(n.std) || n.std < 0) at(`init.normal.std must be a finite number >= 0, got ${show(n.std)}`)
    if (!isUint(n.seed) || n.seed > MAX_SEED) at(`init.normal.seed must be an integer in [0, 2^53), got ${show(n.seed)}`)
  } else if (kind === 'adapter') {
    const a = init.adapter
    if (!isObject(a) || Object.keys(a).length !== 2 || typeof a.name !== 'string' || typeof a.param !== 'string') return at('init.adapter must be {name, param}')
    if (!NAME_PATTERN.test(a.name)) at(`init.adapter.name ${show(a.name)} must be 1-64 characters of [A-Za-z0-9._-]`)
  } else {
    at(`unknown init '${kind!}' (zeros, tensor, normal or adapter)`)
  }
}

function optimizerProblems (o: unknown, add: (m: string) => void): void {
  if (!isObject(o) || typeof o.kind !== 'string' || !Object.hasOwn(OPTIMIZER_KEYS, o.kind)) return add(`train.optimizer must be {kind: 'sgd' | 'adam' | 'adamw', lr, …}, got ${show(o)}`)
  const at = (m: string): void => add(`train.optimizer (${o.kind as string}): ${m}`)
  for (const key of Object.keys(o)) if (!OPTIMIZER_KEYS[o.kind]!.includes(key)) at(`unknown field '${key}'`)
  if (!finite(o.lr) || o.lr < 0) at(`lr must be a finite number >= 0, got ${show(o.lr)}`)
  if (o.weightDecay !== undefined && (!finite(o.weightDecay) || o.weightDecay < 0)) at(`weightDecay must be a finite number >= 0, got ${show(o.weightDecay)}`)
  if (o.maximize !== undefined && typeof o.maximize !== 'boolean') at('maximize must be a boolean')
  if (o.kind === 'sgd') {
    if (o.momentum !== undefined && (!finite(o.momentum) || o.momentum < 0)) at(`momentum must be a finite number >= 0, got ${show(o.momentum)}`)
    if (o.dampening !== undefined && (!finite(o.dampening))) at(`dampening must be a finite number, got ${show(o.dampening)}`)
    if (o.nesterov !== undefined && typeof o.nesterov !== 'boolean') at('nesterov must be a boolean')
    if (o.nesterov === true && (!finite(o.momentum) || o.momentum <= 0 || (o.dampening ?? 0) !== 0)) at('nesterov needs momentum > 0 and dampening 0 (as in PyTorch)')
  } else {
    const b = o.betas
    if (b !== undefined && (!Array.isArray(b) || b.length !== 2 || !b.every(x => finite(x) && x >= 0 && x < 1))) at(`betas must be two numbers in [0, 1), got ${show(b)}`)
    if (o.eps !== undefined && (!finite(o.eps) || o.eps < 0)) at(`eps must be a finite number >= 0, got ${show(o.eps)}`)
  }
}

function invokeShaped (invoke: unknown): invoke is Invoke {
  if (!isObject(invoke)) return false
  const keys = Object.keys(invoke)
  if (keys.length !== 1) return false
  if (keys[0] === 'text') return typeof invoke.text === 'string' && invoke.text.length > 0
  if (keys[0] === 'ids') return Array.isArray(invoke.ids) && invoke.ids.length > 0 && invoke.ids.every(i => Number.isInteger(i))
  return false
}

/** Problems of `params`, `train`, `keep` (the `then` traces are checked by the caller, which knows a Program's structure). */
export function sessionFieldProblems (value: Record<string, unknown>): Problem[] {
  const problems: Problem[] = []
  const add = (message: string): void => { problems.push({ node: null, message }) }
  const params = value.params
  if (params !== undefined) {
    if (!isObject(params) || Object.keys(params).length === 0) add('params must be a non-empty map of name to {shape, dtype, init}')
    else for (const [name, decl] of Object.entries(params)) paramProblems(name, decl, add)
  }
  const declared = isObject(params) ? params : {}
  const train = value.train
  if (train !== undefined) {
    if (!isObject(train)) add('train must be a map {params, loss, optimizer, batches?, epochs?, steps?}')
    else {
      for (const key of Object.keys(train)) if (!['params', 'loss', 'optimizer', 'batches', 'epochs', 'steps'].includes(key)) add(`train: unknown field '${key}'`)
      if (value.mode !== 'trace') add(`train: only a trace-mode Program trains (mode is ${show(value.mode)})`)
      const names = train.params
      if (!Array.isArray(names) || names.length === 0 || !names.every(n => typeof n === 'string')) add('train.params must be a non-empty list of param names')
      else {
        if (new Set(names).size !== names.length) add('train.params lists a param twice')
        for (const n of names) if (!Object.hasOwn(declared, n)) add(`train.params: '${n as string}' is not a declared param`)
      }
      const nodes = Array.isArray(value.nodes) ? value.nodes.length : 0
      if (!isUint(train.loss) || train.loss >= nodes) add(`train.loss must be the index of a node of the Program (0..${nodes - 1}), got ${show(train.loss)}`)
      optimizerProblems(train.optimizer, add)
      const invokes = Array.isArray(value.invokes) ? value.invokes.length : 0
      if (train.batches !== undefined) {
        if (!Array.isArray(train.batches) || train.batches.length === 0) add('train.batches must be a non-empty list of invoke lists')
        else {
          train.batches.forEach((batch, b) => {
            if (!Array.isArray(batch) || batch.length !== invokes) add(`train.batches[${b}] must list exactly ${invokes} invoke(s), like the Program's invokes`)
            else batch.forEach((invoke, k) => { if (!invokeShaped(invoke)) add(`train.batches[${b}][${k}] must be {ids: non-empty integer list} or {text: non-empty string}`) })
          })
        }
      }
      if (train.epochs !== undefined && (!isUint(train.epochs) || train.epochs < 1)) add(`train.epochs must be a positive integer, got ${show(train.epochs)}`)
      if (train.steps !== undefined && (!isUint(train.steps) || train.steps < 1)) add(`train.steps must be a positive integer, got ${show(train.steps)}`)
      if (train.steps !== undefined && train.epochs !== undefined) add('train: give steps or epochs, not both')
      const steps = trainSteps(value as unknown as Program)
      if (steps > MAX_TRAIN_STEPS) add(`train: ${steps} steps exceed the limit of ${MAX_TRAIN_STEPS}`)
    }
  }
  const keep = value.keep
  if (keep !== undefined) {
    const keys = isObject(keep) ? Object.keys(keep) : []
    if (!isObject(keep) || !keys.includes('adapter') || keys.some(k => k !== 'adapter' && k !== 'attach') || typeof keep.adapter !== 'string' || !NAME_PATTERN.test(keep.adapter)) add('keep must be {adapter: name of 1-64 characters of [A-Za-z0-9._-], attach?: [attachment]}')
    if (params === undefined) add('keep: the Program declares no params to keep')
    if (isObject(keep) && keep.attach !== undefined) attachProblems(keep.attach, declared, add)
  }
  return problems
}

const ATTACH_FIELDS: Record<string, { required: readonly string[]; optional: readonly string[]; params: readonly string[] }> = {
  lora: { required: ['module', 'a', 'b', 'scale'], optional: [], params: ['a', 'b'] },
  steer: { required: ['site', 'port', 'param'], optional: [], params: ['param'] },
  probe: { required: ['site', 'port', 'w'], optional: ['b'], params: ['w', 'b'] },
}

/** Structure of `keep.attach` (the manifest checks — modules, sites, shapes — are `attachIssues` in validate.ts). */
function attachProblems (attach: unknown, declared: Record<string, unknown>, add: (m: string) => void): void {
  if (!Array.isArray(attach) || attach.length === 0) return add('keep.attach must be a non-empty list of {lora} / {steer} / {probe}')
  attach.forEach((entry, k) => {
    const at = (m: string): void => add(`keep.attach[${k}]: ${m}`)
    const kind = isObject(entry) && Object.keys(entry).length === 1 ? Object.keys(entry)[0]! : ''
    const spec = ATTACH_FIELDS[kind]
    const body = spec === undefined ? undefined : (entry as Record<string, unknown>)[kind]
    if (spec === undefined || !isObject(body)) return at('must be one of {lora: {module, a, b, scale}}, {steer: {site, port, param}}, {probe: {site, port, w, b?}}')
    for (const key of Object.keys(body)) if (!spec.required.includes(key) && !spec.optional.includes(key)) at(`${kind}: unknown field '${key}'`)
    for (const key of spec.required) if (body[key] === undefined) at(`${kind}: missing '${key}'`)
    for (const key of ['module', 'site']) if (body[key] !== undefined && (typeof body[key] !== 'string' || body[key] === '')) at(`${kind}.${key} must be a module path, got ${show(body[key])}`)
    if (body.port !== undefined && body.port !== 'output' && body.port !== 'input') at(`${kind}.port must be 'output' or 'input', got ${show(body.port)}`)
    if (body.scale !== undefined && !finite(body.scale)) at(`${kind}.scale must be a finite number, got ${show(body.scale)}`)
    for (const key of spec.params) {
      const name = body[key]
      if (name === undefined) continue
      if (typeof name !== 'string' || !Object.hasOwn(declared, name)) at(typeof name === 'string' ? `${kind}.${key}: '${name}' is not a declared param` : `${kind}.${key} must be a param name, got ${show(name)}`)
    }
  })
}

/** The keys a later trace may have. */
export function traceKeyProblems (trace: unknown, t: number): Problem[] {
  if (!isObject(trace)) return [{ node: null, message: `then[${t}] must be a map {mode, generate?, invokes, nodes, locations?}` }]
  return Object.keys(trace).filter(k => !TRACE_KEYS.has(k)).map(k => ({ node: null, message: `then[${t}]: unknown field '${k}'` }))
}

/** Number of optimizer steps of a Program's training loop (0 without `train`). */
export function trainSteps (program: Program): number {
  const train = program.train
  if (train === undefined) return 0
  if (typeof train.steps === 'number') return train.steps
  const batches = Array.isArray(train.batches) ? train.batches.length : 1
  return (typeof train.epochs === 'number' ? train.epochs : 1) * batches
}

/** The invokes of optimizer step `step` (0-based): batches cycle in order, epoch after epoch. */
export function trainBatch (program: Program, step: number): Invoke[] {
  const batches = program.train?.batches
  if (batches === undefined) return program.invokes
  return batches[step % batches.length]!
}

/** Number of traces of a session (1 for a plain Program). */
export function traceCount (program: Program): number {
  return 1 + (program.then?.length ?? 0)
}

/**
 * Trace `t` of a session as a standalone Program (trace 0 is the Program without `train`, `keep`, `then`); every
 * trace carries the session's `params` so `trainable` nodes type-check.
 */
export function traceProgram (program: Program, t: number): Program {
  const base = { version: program.version, model: program.model, ...(program.params === undefined ? {} : { params: program.params }) }
  if (t === 0) {
    const { train: _t, keep: _k, then: _n, ...rest } = program
    return rest
  }
  const trace = program.then?.[t - 1]
  if (trace === undefined) throw new WeftError('PROGRAM_INVALID', `trace ${t} out of range (the session has ${traceCount(program)})`)
  return { ...base, ...(trace as Trace) }
}

// ---- the specified generator of `normal` initial values -------------------------------------------------------

const MASK = (1n << 64n) - 1n

/** SplitMix64's output function for state `x` (Steele, Lea & Flood 2014): the 64-bit hash all seeded draws use. */
export function splitmix64 (x: bigint): bigint {
  let z = (x + 0x9E3779B97F4A7C15n) & MASK
  z = ((z ^ (z >> 30n)) * 0xBF58476D1CE4E5B9n) & MASK
  z = ((z ^ (z >> 27n)) * 0x94D049BB133111EBn) & MASK
  return z ^ (z >> 31n)
}

/**
 * Element `i` (row-major) of a `normal` param: with `s = h(seed)`, `a = h(s ⊕ 2i) >> 11`, `b = h(s ⊕ (2i+1)) >> 11`
 * (53-bit integers), `u1 = (a + 1) / 2^53` in (0, 1], `u2 = b / 2^53` in [0, 1),
 * `z = sqrt(−2 ln u1) · cos(2π u2)` in float64 (Box–Muller), value = float32(mean + std · z).
 */
export function normalInit (shape: readonly number[], mean: number, std: number, seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1)
  const out = new Float32Array(n)
  const s = splitmix64(BigInt(seed))
  for (let i = 0; i < n; i++) {
    const a = Number(splitmix64(s ^ BigInt(2 * i)) >> 11n)
    const b = Number(splitmix64(s ^ BigInt(2 * i + 1)) >> 11n)
    const u1 = (a + 1) / 2 ** 53
    const u2 = b / 2 ** 53
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
  }
  return out
}

/** The initial value of a declared param; an `adapter` init must have been resolved by the host (typed error otherwise). */
export function initParam (name: string, decl: ParamDecl): Tensor {
  const init = decl.init
  const shape = [...decl.shape]
  if ('zeros' in init) return { dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }
  if ('tensor' in init) return { dtype: 'float32', shape, data: Float32Array.from(init.tensor.data as Float32Array) }
  if ('normal' in init) return { dtype: 'float32', shape, data: normalInit(shape, init.normal.mean, init.normal.std, init.normal.seed) }
  throw new WeftError('BACKEND_CAPABILITY_MISSING',
    `param '${name}': init.adapter ('${init.adapter.name}'.'${init.adapter.param}') must be resolved into a tensor by the host before the engine runs the Program`,
    { param: name, adapter: init.adapter.name })
}
