/**
 * The exfiltration horizon as a lower bound: the least result bytes per weight parameter that some op sequence the
 * policy allows can reach, at a stated precision. See docs/decisions/2026-12-05-exfiltration-horizon.md.
 *
 * The bound is information-theoretic over the save dtypes a Program can produce: a dtype carries at most
 * `PAYLOAD_BITS` exactly (an int8 holds 8 bits, a float32 holds every integer below 2^24, a bool 1 bit but costs a
 * whole byte on the wire: `41([true, …])` in our CBOR). With elementwise arithmetic (`mul` and `add`) a Program can
 * quantize several parameters and pack them into one element (`q₁ + 256·q₂ + 65536·q₃` in a float32 is exact), so
 * an element carries ⌊payload ÷ precision⌋ parameters; without it, one.
 */
import { DTYPES, DTYPE_BYTES, type DType, type Manifest, type Program } from '@weft/core'

/** Bits of a value a dtype holds exactly: integer width, or the significand (plus hidden bit) for floats. */
export const PAYLOAD_BITS: Record<DType, number> = {
  float64: 53, float32: 24, float16: 11, bfloat16: 8, int64: 64, int32: 32, int8: 8, uint8: 8, bool: 1,
}

/** Casts that keep a float32 weight exactly (every other target quantizes it). */
export const FULL_PRECISION_DTYPES: readonly DType[] = ['float32', 'float64']

const COMPARISON_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const

/** What the horizon assumes; published in the policy summary as `exfiltrationHorizon`. */
export interface HorizonBasis {
  /** result bytes per weight parameter the horizon divides by */
  bytesPerParam: number
  /** precision (bits per parameter) an extractor is assumed to settle for */
  precisionBits: number
  /** the save dtype that reaches `bytesPerParam` */
  dtype: DType
  /** parameters packed into one saved element (1 without arithmetic or when the dtype holds just one) */
  paramsPerElement: number
  /** one sentence saying how an allowed Program reaches the bound */
  reason: string
}

export interface ReachOptions {
  /** ops the policy refuses outright */
  forbiddenOps: ReadonlySet<string>
  /** 'weight-derived' or 'all': casts of those values to anything but float32/float64 are refused */
  forbidLowPrecisionCasts: false | 'weight-derived' | 'all'
  /** bits per parameter an extractor needs (8 = int8 quantization, error ≈ scale/254; 4 = the usable floor of LLM quantization) */
  precisionBits: number
  /** dtypes the model's sites produce (a plain `read` saves these); default float32 */
  siteDtypes?: readonly DType[]
}

/** The save dtypes a weight-derived value can reach under the options, each with how. */
export function reachableSaveDtypes (options: ReachOptions): Map<DType, string> {
  const reach = new Map<DType, string>()
  const allowed = (op: string): boolean => !options.forbiddenOps.has(op)
  if (allowed('read')) for (const dtype of options.siteDtypes ?? ['float32']) reach.set(dtype, `a plain read of a ${dtype} site`)
  if (allowed('cast')) {
    const targets = options.forbidLowPrecisionCasts === false ? DTYPES : FULL_PRECISION_DTYPES
    for (const dtype of targets) if (!reach.has(dtype)) reach.set(dtype, `cast to ${dtype}`)
  }
  if (COMPARISON_OPS.some(allowed) && !reach.has('bool')) reach.set('bool', 'a comparison (gt, eq, …) against a threshold')
  if ((allowed('argmax') || allowed('topk')) && !reach.has('int64')) reach.set('int64', 'argmax/topk indices')
  return reach
}

/**
 * The least bytes per parameter over the reachable save dtypes. int64 indices of argmax/topk carry at most 32 bits
 * (an axis shorter than 2^32), not 64.
 */
export function leastBytesPerParameter (options: ReachOptions): HorizonBasis {
  if (!Number.isInteger(options.precisionBits) || options.precisionBits < 1 || options.precisionBits > 32) {
    throw new RangeError(`horizon precision must be an integer number of bits in 1…32, got ${options.precisionBits}`)
  }
  const packing = !options.forbiddenOps.has('mul') && !options.forbiddenOps.has('add')
  const p = options.precisionBits
  let best: HorizonBasis | null = null
  for (const [dtype, how] of reachableSaveDtypes(options)) {
    const payload = how.startsWith('argmax') ? 32 : PAYLOAD_BITS[dtype]
    const wire = DTYPE_BYTES[dtype]!
    // a comparison yields 1 bit per element whatever the input; a read or cast keeps min(payload, 32) bits of a weight
    let paramsPerElement = 1
    let elementsPerParam = 1
    if (payload >= p) paramsPerElement = packing ? Math.floor(payload / p) : 1
    else elementsPerParam = Math.ceil(p / payload)
    const bytesPerParam = wire * elementsPerParam / paramsPerElement
    // ties go to the simpler sequence (fewer parameters packed per element)
    if (best === null || bytesPerParam < best.bytesPerParam || (bytesPerParam === best.bytesPerParam && paramsPerElement < best.paramsPerElement)) {
      const packed = paramsPerElement > 1 ? `, ${paramsPerElement} ${p}-bit parameters packed per element with mul/add` : ''
      const split = elementsPerParam > 1 ? `, ${elementsPerParam} elements per ${p}-bit parameter` : ''
      best = { bytesPerParam, precisionBits: p, dtype, paramsPerElement, reason: `${how} → ${dtype} (${wire} byte${wire === 1 ? '' : 's'} per element${packed}${split})` }
    }
  }
  if (best === null) {
    // nothing weight-derived can be saved: only results that do not depend on weights leave, so no horizon applies
    return { bytesPerParam: Infinity, precisionBits: p, dtype: 'float32', paramsPerElement: 1, reason: 'no weight-derived value can be saved' }
  }
  return best
}

/** Days needed to extract every parameter at `bytesPerParameter` through the aggregate egress (null: unbounded). */
export function exfiltrationHorizonDays (manifest: Manifest, egressPerDay: number | null, bytesPerParameter: number): number | null {
  if (egressPerDay === null || egressPerDay <= 0) return egressPerDay === 0 ? Infinity : null
  return (manifest.parameters * bytesPerParameter) / egressPerDay
}

/**
 * Sites whose `read` returns embedding rows exactly (or their sum with position rows): the output of every Embedding
 * module and of the weightless modules before the first module that owns weights (dropout), and the input of that
 * first weighted module and of its ancestors that do not contain an embedding (GPT-2: `transformer.h.0.ln_1` and
 * `transformer.h.0`).
 */
export function embeddingExactSites (manifest: Manifest): { outputs: Set<string>; inputs: Set<string> } {
  const outputs = new Set<string>()
  const inputs = new Set<string>()
  const embeddings = manifest.modules.filter(m => m.kind === 'module' && /embedding/i.test(m.type)).map(m => m.path)
  for (const entry of embeddings) outputs.add(entry)
  if (embeddings.length === 0) return { outputs, inputs }
  for (const entry of manifest.modules) {
    if (embeddings.includes(entry.path)) continue
    if (entry.parameters === 0) { outputs.add(entry.path); continue }
    inputs.add(entry.path)
    for (const parent of manifest.modules) {
      if (entry.path.startsWith(`${parent.path}.`) && !embeddings.some(e => e.startsWith(`${parent.path}.`))) inputs.add(parent.path)
    }
    break
  }
  return { outputs, inputs }
}

/** Nodes whose value depends on the weights: site reads, module calls, params, grads, and anything computed from them. */
export function weightDerivedNodes (program: Pick<Program, 'nodes'>): boolean[] {
  const derived: boolean[] = []
  for (const [op, , inputs] of program.nodes) {
    // `from` (a value of an earlier trace of a session) and `trainable` (a param trained on gradients through the
    // weights) are counted as weight-derived: the earlier trace or the training may have computed them from weights
    derived.push(op === 'read' || op === 'module_call' || op === 'param' || op === 'grad' || op === 'from' || op === 'trainable' ||
      inputs.some(i => derived[i] === true))
  }
  return derived
}
