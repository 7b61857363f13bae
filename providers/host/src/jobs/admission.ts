/**
 * Admission of a submitted job: open the signed envelope (signature, key, audience, expiry), refuse replays,
 * check limits, validate against the manifest, scan for the egress estimate, run the policies, then queue it.
 * Every refusal is a typed WeftError; nothing the client sent is executed.
 */
import { randomBytes } from 'node:crypto'
import {
  DTYPE_BYTES, WeftError, analyzeValidProgram, openRequestEnvelope, programCost, trainSteps,
  type PolicyV1, type Program, type ProgramAnalysis, type ScanEntry, type ValueType,
} from '@weft/core'
import type { Adapters } from '../adapters/adapters.js'
import type { EngineSpeed } from './engine-speed.js'
import { runPolicies } from '../policy/run-policies.js'
import { digestOf, type ModelRegistry, type ServedModel } from '../models/model-registry.js'
import { applyEdits, editLabel } from '../models/edits.js'
import type { JobRow, Store } from '../store/store.js'
import type { HostLimits } from './limits.js'
import type { TokenizerThread } from '../engine/tokenizer-thread.js'

export interface AdmissionDeps {
  store: Store
  registry: ModelRegistry
  policies: readonly PolicyV1[]
  limits: HostLimits
  providerId: string
  now: () => number
  /** nonces of admissions in progress (between the check and the commit that records them) */
  pendingNonces: Set<string>
  /** one per host (`serialLock()`): admissions' checks of committed state and their commit, one at a time */
  serially: SerialLock
  /** kept adapters: `init: {adapter}` params are resolved (owner-checked) at admission */
  adapters?: Adapters
  /** engine speeds: a session or training Program that cannot finish within its time limit is refused */
  speed?: EngineSpeed
  /** the scheduler's fast path: start the job before its admission commits (then it is committed as running) */
  startNow?: (row: JobRow, program: AdmittedProgram) => boolean
  /** undo `startNow` when the admission commit fails */
  abandon?: (id: string) => void
  /** tokenizes text invokes off the HTTP thread (default: the backend's `tokenize`, on this thread) */
  tokenizer?: TokenizerThread
}

interface AdmittedJob {
  job: string
  state: 'queued'
  position: number
  model: string
  revision: string
  programDigest: string
  requestDigest: string
  estimatedEgressBytes: number
}

export type SerialLock = <T>(section: () => Promise<T>) => Promise<T>

/** Runs sections one after another (each starts when the previous one has settled). */
export function serialLock (): SerialLock {
  let tail: Promise<unknown> = Promise.resolve()
  return async section => {
    const run = tail.then(section)
    tail = run.catch(() => {})
    return await run
  }
}

function estimateBytes (saves: readonly ScanEntry[]): number {
  return saves.reduce((total, s) => total + s.shape.reduce((a, b) => a * b, 1) * ((DTYPE_BYTES as Readonly<Record<string, number>>)[s.dtype] ?? 8), 0)
}

/**
 * A Program as the engine runs it: the job's own (`program`) and, with the model's provider-wide edits applied
 * (`edits`, their labels), `edited`. `editedTypes`: the node types of `edited` when known (admission inferred them;
 * a job read back from the store after a restart has none and the engine infers them).
 */
export interface RunnableProgram {
  program: Program
  edited: Program
  edits: readonly string[]
  editedTypes?: readonly ValueType[]
  /** cost estimate (programCost), unknown after a restart */
  cost?: number
}

/**
 * The one analysed form of an admitted Program, made once by admission and handed to the scheduler and the engine
 * (nothing downstream validates, types, costs, scans or applies edits again). `program`: as signed, except that text
 * invokes are tokenized and `init: {adapter}` params are resolved into the owner's stored tensors; `analysis`: its
 * validation (no issues) and node types; `cost`: programCost from that analysis; `edited`/`editedTypes`: with the
 * model's edits (the same object as `program`/its types when the model has none); `saves`: the backend's scan.
 */
export interface AdmittedProgram extends RunnableProgram {
  analysis: ProgramAnalysis
  cost: number
  editedTypes: readonly ValueType[]
  saves: ScanEntry[]
}

/** What admission hands on: the committed row and its admitted (analysed) Program. */
export interface Admitted { admitted: AdmittedJob; row: JobRow; program: AdmittedProgram }

/** A Program that runs alone in its batch and is judged as a whole: it trains, declares params or has several traces. */
export function isSession (program: Program): boolean {
  return program.train !== undefined || program.params !== undefined || program.then !== undefined
}

/** Every trace of a session (the Program itself first); a plain Program is its one trace. */
const tracesOf = (program: Program): Pick<Program, 'mode' | 'invokes' | 'nodes' | 'generate'>[] =>
  [program, ...(Array.isArray(program.then) ? program.then : [])]

/** `generated.<k>` saves generate-mode traces add (one per invoke), which the scan does not list. */
const generatedSaves = (program: Program): number =>
  tracesOf(program).reduce((n, t) => n + (t.mode === 'generate' && Array.isArray(t.invokes) ? t.invokes.length : 0), 0)

/**
 * Bytes of tensor data the job's result will hold: its saves as scanned plus, in generate mode, the reserved
 * `generated.<k>` save of every invoke (int64 `[1, n]`, n ≤ maxNewTokens), which the scan does not list.
 */
function estimateResultBytes (program: Program, saves: readonly ScanEntry[]): number {
  const generated = tracesOf(program).reduce((n, t) => t.mode === 'generate' && Array.isArray(t.invokes)
    ? n + t.invokes.length * ((t.generate ?? program.generate)?.maxNewTokens ?? 0) * DTYPE_BYTES.int64
    : n, 0)
  return estimateBytes(saves) + generated
}

/** Saves the result will have: the scanned ones plus generate mode's one per invoke. */
function saveCount (program: Program, saves: readonly ScanEntry[]): number {
  return saves.length + generatedSaves(program)
}

export async function admitJob (deps: AdmissionDeps, bytes: Uint8Array): Promise<Admitted> {
  const { store, limits } = deps
  const now = deps.now()
  const opened = openRequestEnvelope(bytes, {
    audience: deps.providerId,
    now: Math.floor(now / 1000),
    skewSeconds: limits.skewSeconds,
    maxLifetimeSeconds: limits.maxEnvelopeLifetimeSeconds,
    resolveKey: (kid: string) => {
      const key = store.getKey(kid)
      if (key === undefined) throw new WeftError('KEY_UNKNOWN', `key ${kid} is not registered with this provider; register it (POST /v1/keys) first`, { kid })
      if (key.revokedAt !== null) throw new WeftError('KEY_REVOKED', `key ${kid} was revoked by the operator${key.revokedReason ? `: ${key.revokedReason}` : ''}`, { kid })
      return new Uint8Array(key.publicKey)
    },
  })
  const { kid, program } = opened
  // replay protection: the check and the in-progress mark happen synchronously (before any await), so two copies
  // cannot both pass; the nonce is recorded with the job (one commit), or on its own when admission refuses
  const nonce = opened.nonce
  const pending = `${kid}\n${nonce}`
  // remembered while the envelope is still accepted: expiry is judged in whole seconds, so through second exp + skew
  const nonceExpiry = (opened.exp + limits.skewSeconds + 1) * 1000
  if (deps.pendingNonces.has(pending) || store.nonceUsed(kid, nonce, now)) {
    throw new WeftError('NONCE_REPLAYED', `nonce ${nonce} was already used by key ${kid}: sign a fresh request`, { kid, nonce })
  }
  deps.pendingNonces.add(pending)
  try {
    return await admitVerified(deps, bytes, { kid, program, programBytes: opened.programBytes, programDigest: opened.programDigest, nonce, nonceExpiry, now })
  } catch (error) {
    store.recordNonce(kid, nonce, nonceExpiry)
    throw error
  } finally {
    deps.pendingNonces.delete(pending)
  }
}

interface Verified { kid: string; program: Program; programBytes: Uint8Array; programDigest: string; nonce: string; nonceExpiry: number; now: number }

async function admitVerified (deps: AdmissionDeps, bytes: Uint8Array, verified: Verified): Promise<Admitted> {
  const { store, limits } = deps
  const { kid, now } = verified
  const model = deps.registry.get(verified.program.model.name)
  checkShape(verified.program, model, limits)
  // from here on the Program with text invokes tokenized (the stored, signed bytes keep the text)
  const tokenizedProgram = await tokenized(verified.program, model, deps.tokenizer)
  const admittedProgram = analyse(deps, kid, tokenizedProgram, model)
  const { program, cost, saves } = admittedProgram
  const estimatedEgressBytes = estimateResultBytes(program, saves)
  checkResultSize(program, saves, estimatedEgressBytes, limits)
  // the checks below count committed jobs and egress (active jobs, the ledger's reservations, quotas) and the commit
  // adds this job to them: from the first check to the commit, one admission at a time, or admissions that arrive
  // together each pass without counting the others
  return await deps.serially(async () => {
    // another provider node sharing the store may have admitted the same envelope since the check above
    if (store.shared && store.nonceUsed(kid, verified.nonce, now)) throw new WeftError('NONCE_REPLAYED', `nonce ${verified.nonce} was already used by key ${kid}: sign a fresh request`, { kid, nonce: verified.nonce })
    if (store.activeJobs(kid) >= limits.maxConcurrentJobsPerKey) {
      throw new WeftError('RATE_LIMITED', `key ${kid} already has ${limits.maxConcurrentJobsPerKey} queued or running jobs; wait for one to end`, { kid, maxConcurrentJobsPerKey: limits.maxConcurrentJobsPerKey })
    }
    const inFlight = store.reservedEgress(kid)
    if (inFlight + estimatedEgressBytes > limits.maxResultBytesInFlightPerKey) {
      throw new WeftError('RATE_LIMITED', `key ${kid} has queued or running jobs whose results total ${inFlight} bytes; with this job's ${estimatedEgressBytes} that exceeds the limit of ${limits.maxResultBytesInFlightPerKey} bytes in flight per key (maxResultBytesInFlightPerKey): wait for some to end`,
        { kid, limit: 'maxResultBytesInFlightPerKey', limitBytes: limits.maxResultBytesInFlightPerKey, inFlightBytes: inFlight, estimatedBytes: estimatedEgressBytes })
    }
    const admission = await runPolicies(deps.policies, { keyId: kid, program, manifest: model.manifest, estimatedEgressBytes, now, saves }, limits.policyTimeoutMs)
    if (isSession(program)) checkFits(deps, model, program, cost, Math.min(limits.jobTimeoutMs, admission.timeoutMs ?? Infinity))
    const row = queueJob(deps, { kid, program: admittedProgram, programBytes: verified.programBytes, programDigest: verified.programDigest, model, bytes, estimatedEgressBytes, admission, now, nonce: verified })
    return {
      row,
      program: admittedProgram,
      admitted: {
        job: row.id, state: 'queued' as const, position: store.queuePosition(row), model: model.name, revision: model.manifest.revision,
        programDigest: row.programDigest, requestDigest: row.requestDigest, estimatedEgressBytes,
      },
    }
  })
}

/**
 * The one analysis of an admitted Program (see AdmittedProgram): validated and typed once, its capabilities, step
 * count and cost checked from that analysis, adapter inits resolved, the model's edits applied once (the edited
 * Program typed once: it is a different Program) and scanned with those types.
 */
function analyse (deps: AdmissionDeps, kid: string, tokenizedProgram: Program, model: ServedModel): AdmittedProgram {
  const { limits } = deps
  const analysis = analyzeValidProgram(tokenizedProgram, model.manifest)
  checkCapabilities(tokenizedProgram, deps.registry, model)
  const steps = trainSteps(tokenizedProgram)
  if (steps > limits.maxTrainSteps) throw new WeftError('PAYLOAD_TOO_LARGE', `the training loop asks for ${steps} steps; this provider runs at most ${limits.maxTrainSteps} per job`, { limit: 'maxTrainSteps', steps, maxTrainSteps: limits.maxTrainSteps })
  const cost = programCost(tokenizedProgram, model.manifest, analysis)
  if (cost > limits.maxProgramCost) throw new WeftError('PAYLOAD_TOO_LARGE', `program cost ${cost.toExponential(2)} exceeds this provider's limit ${limits.maxProgramCost.toExponential(2)}; split it into smaller jobs`, { limit: 'maxProgramCost', cost, maxProgramCost: limits.maxProgramCost })
  // adapters named by params are the caller's own (another key's are "not found"), of this model revision; resolving
  // fills in init values of the declared shapes, so the analysis holds for the resolved Program
  const program = deps.adapters?.resolve(kid, tokenizedProgram, { name: model.name, revision: model.manifest.revision }) ?? tokenizedProgram
  const fragments = deps.registry.edits(model.name)
  const edited = applyEdits(program, fragments)
  const editedTypes = (edited === program ? analysis : analyzeValidProgram(edited, model.manifest)).types as ValueType[]
  const saves = model.handle.scan(edited, editedTypes)
  return { program, analysis, cost, edited, edits: fragments.map(editLabel), editedTypes, saves }
}

/**
 * Text invokes (of every trace) become token ids in the tokenizer thread (the model's tokenizer.json, as served), so
 * a large text never holds the event loop; their size was checked first (`checkShape`). A model without
 * tokenizer.json is left to its backend (which refuses text it cannot tokenize).
 */
async function tokenized (program: Program, model: ServedModel, tokenizer: TokenizerThread | undefined): Promise<Program> {
  const traces = tracesOf(program)
  const texts = traces.flatMap(t => Array.isArray(t.invokes) ? t.invokes.flatMap(invoke => 'text' in invoke ? [invoke.text] : []) : [])
  if (texts.length === 0 || tokenizer === undefined || model.tokenizerJson === null) return program
  const key = model.manifest.tokenizer?.digest ?? `${model.name}@${model.manifest.revision}`
  const ids = await tokenizer.tokenize(key, { json: model.tokenizerJson, config: model.tokenizerConfig }, texts)
  let next = 0
  const withIds = <T extends Pick<Program, 'invokes'>>(trace: T): T => ({ ...trace, invokes: trace.invokes.map(invoke => 'text' in invoke ? { ids: ids[next++]! } : invoke) })
  const first = withIds(program)
  return Array.isArray(program.then) ? { ...first, then: program.then.map(withIds) } : first
}

/** A session or training Program whose estimated engine time exceeds its time limit is refused before it runs. */
function checkFits (deps: AdmissionDeps, model: ServedModel, program: Program, cost: number, timeoutMs: number): void {
  const kind = program.train === undefined ? 'plain' : 'train'
  const estimatedMs = deps.speed?.estimateMs(model.name, kind, cost) ?? null
  if (estimatedMs === null || estimatedMs <= timeoutMs) return
  const steps = trainSteps(program)
  throw new WeftError('PAYLOAD_TOO_LARGE',
    `this ${steps > 0 ? `${steps}-step training run` : 'session'} needs at least ~${Math.ceil(estimatedMs)} ms of engine time (cost ${cost.toExponential(2)} at ${deps.speed!.rate(model.name, kind)!.toExponential(2)} per ms) but its time limit is ${timeoutMs} ms; ask for fewer steps or traces`,
    { limit: 'jobTimeoutMs', timeoutMs, estimatedMs: Math.ceil(estimatedMs), cost, steps })
}

function checkShape (program: Program, model: ServedModel, limits: HostLimits): void {
  const traces = tracesOf(program)
  // text is tokenized later: its size is bounded first, in bytes (the token count is checked against the model after)
  const textBytes = traces.reduce((n, t) => n + (Array.isArray(t.invokes) ? t.invokes.reduce((m, invoke) => 'text' in invoke && typeof invoke.text === 'string' ? m + Buffer.byteLength(invoke.text, 'utf8') : m, 0) : 0), 0)
  if (textBytes > limits.maxTextBytes) throw new WeftError('PAYLOAD_TOO_LARGE', `the program's text invokes hold ${textBytes} bytes; this provider tokenizes at most ${limits.maxTextBytes} bytes per job (maxTextBytes): send shorter text or token ids`, { limit: 'maxTextBytes', textBytes, maxTextBytes: limits.maxTextBytes })
  // a session's limits are the whole session's: every trace's nodes; the largest batch of rows any trace runs
  const nodes = traces.reduce((n, t) => n + (Array.isArray(t.nodes) ? t.nodes.length : 0), 0)
  const invokes = Math.max(...traces.map(t => Array.isArray(t.invokes) ? t.invokes.length : 0))
  if (nodes > limits.maxProgramNodes) throw new WeftError('PAYLOAD_TOO_LARGE', `program has ${nodes} nodes${traces.length > 1 ? ` in ${traces.length} traces` : ''}; this provider accepts at most ${limits.maxProgramNodes}`, { limit: 'maxProgramNodes', nodes, maxProgramNodes: limits.maxProgramNodes })
  if (invokes > limits.maxInvokes) throw new WeftError('PAYLOAD_TOO_LARGE', `program has ${invokes} invokes; this provider accepts at most ${limits.maxInvokes}`, { limit: 'maxInvokes', invokes, maxInvokes: limits.maxInvokes })
  // before the scan: the save nodes of every trace (edits hold none) plus generate mode's one per invoke
  const saveNodes = traces.reduce((n, t) => n + (Array.isArray(t.nodes) ? t.nodes.reduce((m, node) => Array.isArray(node) && node[0] === 'save' ? m + 1 : m, 0) : 0), 0)
  checkSaveCount(saveNodes + generatedSaves(program), limits)
  const revision = program.model.revision
  if (revision !== null && revision !== model.manifest.revision) {
    throw new WeftError('MODEL_NOT_FOUND', `model '${model.name}' is served at revision ${model.manifest.revision}, not ${revision}`, { model: model.name, requested: revision, served: model.manifest.revision })
  }
}

/** The amplification limits: a small request must not make the provider compute, hold and store a huge result. */
function checkResultSize (program: Program, saves: readonly ScanEntry[], estimatedBytes: number, limits: HostLimits): void {
  if (estimatedBytes > limits.maxResultBytesPerJob) {
    throw new WeftError('RESULT_TOO_LARGE', `this job's result would hold about ${estimatedBytes} bytes; this provider returns at most ${limits.maxResultBytesPerJob} bytes per job (maxResultBytesPerJob): save fewer, shorter or reduced values`,
      { limit: 'maxResultBytesPerJob', limitBytes: limits.maxResultBytesPerJob, estimatedBytes })
  }
  checkSaveCount(saveCount(program, saves), limits)
}

function checkSaveCount (count: number, limits: HostLimits): void {
  if (count > limits.maxSaves) {
    throw new WeftError('RESULT_TOO_LARGE', `this job has ${count} saves; this provider returns at most ${limits.maxSaves} per job (maxSaves)`,
      { limit: 'maxSaves', maxSaves: limits.maxSaves, saves: count })
  }
}

/** Checked at admission, not mid-run: the program's mode and ops must be in the backend's capabilities. */
function checkCapabilities (program: Program, registry: ModelRegistry, model: ServedModel): void {
  const capabilities = registry.backend(model).capabilities
  if (capabilities.size === 0) return
  const missing = new Set<string>()
  const traces = tracesOf(program)
  for (const mode of new Set(traces.map(t => t.mode))) if (!capabilities.has(mode)) missing.add(mode)
  if ([...capabilities].some(c => c.startsWith('op:'))) {
    for (const op of new Set(traces.flatMap(t => t.nodes.map(([name]) => name)))) if (!capabilities.has(`op:${op}`)) missing.add(`op:${op}`)
  }
  if (missing.size > 0) throw new WeftError('BACKEND_CAPABILITY_MISSING', `backend '${model.backend}' cannot run ${[...missing].join(', ')}`, { missing: [...missing], backend: model.backend })
}

interface QueueInput {
  kid: string; program: AdmittedProgram; programBytes: Uint8Array; programDigest: string; model: ServedModel; bytes: Uint8Array; estimatedEgressBytes: number
  admission: { maxEgressBytes: number | null; timeoutMs: number | null }; now: number
  nonce: { nonce: string; nonceExpiry: number }
}

function queueJob (deps: AdmissionDeps, input: QueueInput): JobRow {
  const { store, limits } = deps
  const row = {
    id: `job_${randomBytes(16).toString('hex')}`,
    kid: input.kid, model: input.model.name, revision: input.model.manifest.revision,
    // the program's deterministic CBOR and its digest come from opening the envelope; requestDigest = core's
    programDigest: input.programDigest, requestDigest: digestOf(input.bytes), program: Buffer.from(input.programBytes.buffer, input.programBytes.byteOffset, input.programBytes.byteLength),
    state: 'queued', attempts: 0, error: null, estimatedEgress: input.estimatedEgressBytes, maxEgress: input.admission.maxEgressBytes,
    timeoutMs: Math.min(limits.jobTimeoutMs, input.admission.timeoutMs ?? Infinity),
    submittedAt: input.now, startedAt: null, endedAt: null, node: null, leaseUntil: null,
  } satisfies JobRow as JobRow
  const started = deps.startNow?.(row, input.program) ?? false
  if (started) Object.assign(row, { state: 'running', attempts: 1, startedAt: input.now })
  try {
    store.transaction(() => {
      store.recordNonce(input.kid, input.nonce.nonce, input.nonce.nonceExpiry)
      store.insertJob(row)
      store.log({ at: input.now, actor: input.kid, action: 'job-accepted', jobId: row.id, programDigest: row.programDigest, model: row.model, revision: row.revision, edits: JSON.stringify(deps.registry.editLabels(row.model)), egressBytes: null })
    })
  } catch (error) {
    if (started) deps.abandon?.(row.id)
    throw error
  }
  return row
}
