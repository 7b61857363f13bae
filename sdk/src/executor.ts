/**
 * Executor: where a recorded Program runs. Embedded (in-process ONNX engine) and remote (a provider over HTTP)
 * implement the same interface, so tracing code changes only in the connect call.
 */
import type { AdapterAttachment, Manifest, Program, Tensor } from '@weft/core'
import type { RouteChoice } from './routing/choice.js'

/**
 * Where a run is. `train-step`: one optimizer step of a training loop completed; `detail` is
 * `{ engineStage: 'train-step', step, steps, epoch, loss }` (step counts completed steps from 1; loss is that
 * step's, before its update), the same embedded and remote. `token`: generate mode streamed a token
 * (`detail`: `{ job, invoke, step, id, text? }`).
 */
export interface RunProgress { stage: 'received' | 'queued' | 'running' | 'train-step' | 'token' | 'completed' | 'error'; position?: number; detail?: Record<string, unknown> }

/** How a training loop ended (Programs with `train`). */
export interface TrainingOutcome {
  steps: number
  completed: number
  /** stopped early (cancelled, or at the time limit) after `completed` steps */
  cancelled: boolean
  finalLoss: number | null
  stopped?: 'cancelled' | 'time-limit'
  /** the provider ran it again after an interruption (restart, lost node) from a checkpoint taken after this many steps */
  resumedFrom?: number
}

/** An adapter a run kept on the provider (Programs with `keep`): its values stayed there. */
export interface KeptAdapter { name: string; id: string; digest: string; bytes: number; replaced: boolean }

/** A kept adapter as its executor describes it (core's protocol type); its values stay there unless downloaded. */
import type { AdapterInfo } from '@weft/core'
export type { AdapterInfo }

export interface RunResult {
  saves: Record<string, Tensor>
  /**
   * who ran the Program: the provider id (`ed25519:…`, the key that signed the receipt) for remote and routed
   * runs, 'local' for embedded mode
   */
  provider: string
  /** the provider's HTTP base URL (remote and routed runs) */
  endpoint?: string
  /** present for remote runs: the provider-signed receipt, already verified */
  receipt?: { bytes: Uint8Array; fields: Record<string, unknown> }
  /** present when the provider enforces an egress budget */
  egress?: { bytes: number; remainingToday?: number | null }
  stats?: { runMs?: number; cacheHit?: boolean; saveBytes?: number }
  /** Programs with `train`: how the loop ended (the loss curve is the save `train.loss`) */
  training?: TrainingOutcome
  /** Programs with `keep`: the adapter the executor kept */
  adapter?: KeptAdapter
  /** `<name>@<digest>` of the kept adapters whose params initialised this run (remote: bound by the receipt) */
  adaptersUsed?: string[]
}

export interface RunOptions {
  signal?: AbortSignal
  onProgress?: (event: RunProgress) => void
  /** routing mode: which providers may run this Program (`require`) and which to try first (`prefer`) */
  route?: RouteChoice
}

export interface ModelInfo { name: string; revision: string; family: string }

/** A tokenizer usable synchronously while a trace records, so text invokes become exact token ids client-side. */
export interface SyncTokenizer {
  encode (text: string): number[]
  decode (ids: readonly number[]): string
}

export interface Executor {
  readonly kind: 'local' | 'remote' | 'simulate'
  listModels (): Promise<ModelInfo[]>
  manifest (model: string): Promise<Manifest>
  tokenize (model: string, text: string): Promise<number[]>
  decode (model: string, ids: readonly number[]): Promise<string>
  run (program: Program, options?: RunOptions): Promise<RunResult>
  close (): Promise<void>
  /** optional: a client-side tokenizer for `model` (null when unavailable); without it text invokes are sent as text */
  tokenizer? (model: string): Promise<SyncTokenizer | null>
  /** optional: one of the caller's kept adapters (ADAPTER_NOT_FOUND when it keeps none of that name) */
  adapter? (name: string): Promise<AdapterInfo>
}
