/**
 * `model.generate`: records a `mode: 'generate'` Program from a callback (per-step reads and writes through `Steps`),
 * checks its steps while recording, runs it, and returns the new tokens, their text and the saves.
 */
import { WeftError, checkGenerate, generatedSaveName, type GenerateStrategy, type Manifest, type ParamDecl, type Program } from '@weft/core'
import { moduleTree } from '../trace/module-tree.js'
import { collectSaves, saveLookup, type Resolved, type TraceInput } from '../trace/tracer.js'
import { ValueProxy } from '../trace/value-proxy.js'
import { formatLocation } from '../trace/location.js'
import type { Envoy } from '../trace/envoy.js'
import type { RunProgress, RunResult } from '../executor.js'
import { Tensor } from '../tensor/tensor.js'
import { GenerateRecorder, GenerateTracer, noInvokes, Steps } from './steps.js'

export interface GenerateOptions {
  /** new tokens per prompt (steps 0 … maxNewTokens − 1) */
  maxNewTokens: number
  /** 'greedy' (default) or seeded sampling `{ temperature, topK?, seed }` */
  strategy?: GenerateStrategy
  /** a prompt stops after producing one of these (kept in its tokens) */
  stopTokenIds?: number[]
  signal?: AbortSignal
  onProgress?: (event: RunProgress) => void
  /**
   * Token streaming: called with each new token as soon as the engine chooses it (embedded and remote, over the
   * provider's `job-token` SSE events), before the run ends. Tokens after a prompt's stop token are not reported.
   */
  onToken?: (token: GeneratedToken) => void
}

/** One streamed token: the invoke (prompt) it belongs to, its step, id and decoded text (null without a tokenizer). */
export interface GeneratedToken { invoke: number; step: number; id: number; text: string | null }

/** What a generate callback's return value becomes: objects spread into the result, anything else under `result`. */
type Spread<R> = [R] extends [void | undefined] ? unknown
  : R extends ValueProxy | readonly unknown[] ? { result: Resolved<R> }
    : R extends object ? Resolved<R> : { result: R }

/** One prompt: its new tokens and their text, every save by name, plus what the callback returned (as Tensors). */
export type Generated<R> = { tokens: number[]; text: string; saves: Record<string, Tensor> } & Spread<R>
/** Several prompts: tokens and text per invoke. */
export type GeneratedBatch<R> = { tokens: number[][]; text: string[]; saves: Record<string, Tensor> } & Spread<R>

export type GenerateFn<T, R> = (model: T, steps: Steps<T>) => R
export type GenerateBatchFn<T, R> = (tracer: GenerateTracer<T>) => R

/** What `generate` needs of a Model. */
export interface GenerateHost {
  readonly manifest: Manifest
  readonly tokenizer: { encode (text: string): number[]; decode? (ids: readonly number[]): string } | null
  run (program: Program, options?: { signal?: AbortSignal; onProgress?: (event: RunProgress) => void }): Promise<RunResult & { saves: Record<string, Tensor> }>
  decode (ids: readonly number[]): Promise<string>
  /** params the Programs declare (a model view's kept adapters): usable as operands while recording */
  readonly params?: Record<string, ParamDecl>
}

const RESERVED_KEYS = ['tokens', 'text', 'saves']

interface RecordedGeneration { program: Program; resolve: (saves: Record<string, Tensor>) => Record<string, unknown> }

/** Records the callback into a generate Program; step problems throw PROGRAM_INVALID naming the line. */
function recordGeneration<T> (host: GenerateHost, options: GenerateOptions, build: (tracer: GenerateTracer<T>) => unknown): RecordedGeneration {
  const n = options.maxNewTokens
  if (!Number.isInteger(n) || n < 1) throw new WeftError('PROGRAM_INVALID', `maxNewTokens must be a positive integer, got ${String(n)}`)
  const recorder = new GenerateRecorder(host.manifest, n, host.params)
  const tokenizer = host.tokenizer
  const tracer = new GenerateTracer<T>(recorder, moduleTree(host.manifest), tokenizer === null ? null : (text) => tokenizer.encode(text))
  const returned = build(tracer)
  if (recorder.invokes.length === 0) throw noInvokes(recorder)
  const spread = returned !== null && typeof returned === 'object' && !(returned instanceof ValueProxy) && !Array.isArray(returned)
  if (spread) {
    const clash = Object.keys(returned).find(k => RESERVED_KEYS.includes(k))
    if (clash !== undefined) throw recorder.error(`a generate callback cannot return the key '${clash}' (the result has tokens, text and saves)`, null)
  }
  const resolveWith = collectSaves(returned, recorder)
  const base = recorder.finish({ name: host.manifest.name, revision: host.manifest.revision })
  const program: Program = {
    ...base, mode: 'generate',
    generate: { maxNewTokens: n, strategy: options.strategy ?? 'greedy', ...(options.stopTokenIds === undefined ? {} : { stopTokenIds: [...options.stopTokenIds] }) },
    ...(host.params === undefined || Object.keys(host.params).length === 0 ? {} : { params: host.params }),
  }
  const issues = checkGenerate(program, host.manifest)
  if (issues.length > 0) {
    const first = issues[0]!
    const location = first.node === null ? null : locate(program, first.node)
    throw new WeftError('PROGRAM_INVALID', first.message + formatLocation(location), { issues })
  }
  const resolve = (saves: Record<string, Tensor>): Record<string, unknown> => {
    if (returned === undefined) return {}
    const value = resolveWith(saveLookup(saves))
    return spread ? value as Record<string, unknown> : { result: value }
  }
  return { program, resolve }
}

/** A node's source location, else the nearest recorded one among its inputs (auto-named saves have none). */
function locate (program: Program, node: number): NonNullable<Program['locations']>[number] {
  const own = program.locations?.[node] ?? null
  if (own !== null) return own
  for (const input of program.nodes[node]![2]) {
    const found = locate(program, input)
    if (found !== null) return found
  }
  return null
}

/** Runs a recorded generation; `tokens`/`text` per invoke. */
async function runGeneration (host: GenerateHost, recorded: RecordedGeneration, options: GenerateOptions): Promise<{ tokens: number[][]; text: string[]; saves: Record<string, Tensor>; rest: Record<string, unknown> }> {
  const { saves } = await host.run(recorded.program, { signal: options.signal, onProgress: streaming(host, options) })
  const tokens = recorded.program.invokes.map((_, k) => {
    const tensor = saves[generatedSaveName(k)]
    if (tensor === undefined) throw new WeftError('EXECUTION_FAILED', `the run returned no tokens for invoke ${k}`)
    return tensor.toFlat()
  })
  const text = await Promise.all(tokens.map(ids => host.decode(ids)))
  return { tokens, text, saves, rest: recorded.resolve(saves) }
}

/** The run's progress callback: token events go to `onToken` (decoded client-side when the engine sent no text). */
function streaming (host: GenerateHost, options: GenerateOptions): ((event: RunProgress) => void) | undefined {
  const { onToken, onProgress } = options
  if (onToken === undefined) return onProgress
  return (event) => {
    if (event.stage === 'token') {
      const detail = event.detail ?? {}
      const id = Number(detail.id)
      const text = typeof detail.text === 'string' ? detail.text : host.tokenizer?.decode?.([id]) ?? null
      onToken({ invoke: Number(detail.invoke), step: Number(detail.step), id, text })
    }
    onProgress?.(event)
  }
}

/** `model.generate(prompt, options, (m, steps) => …)` and `model.generate(options, g => { g.invoke(…) })`. */
export async function generate<T = Envoy> (host: GenerateHost, first: TraceInput | GenerateOptions, second: GenerateOptions | GenerateBatchFn<T, unknown> | undefined,
  third?: GenerateFn<T, unknown>): Promise<Record<string, unknown>> {
  const single = typeof first === 'string' || Array.isArray(first) || (typeof first === 'object' && first !== null && ('ids' in first || 'text' in first))
  if (single) {
    const options = second as GenerateOptions
    const fn = third ?? (() => undefined)
    const recorded = recordGeneration<T>(host, options, (g) => g.invoke(first as TraceInput, (m, steps) => fn(m, steps)))
    const out = await runGeneration(host, recorded, options)
    return { ...out.rest, tokens: out.tokens[0]!, text: out.text[0]!, saves: out.saves }
  }
  const options = first as GenerateOptions
  const recorded = recordGeneration<T>(host, options, second as GenerateBatchFn<T, unknown>)
  const out = await runGeneration(host, recorded, options)
  return { ...out.rest, tokens: out.tokens, text: out.text, saves: out.saves }
}
