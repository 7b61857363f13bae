/** Messages between the host's main thread and an engine worker thread (structured-clone data only, no code). */
import type { BatchJob, JobResult, Manifest, ModelSource, WireError } from '@weft/core'

/** How a worker rebuilds the backend: an importable module, the factory it exports, and that factory's init data. */
export interface BackendSpec {
  module: string
  factory: string
  init?: unknown
}

export type ToWorker =
  | { type: 'load'; spec: BackendSpec; source: ModelSource }
  /** reportStart: send the run's first progress event at once (the host starts a time limit on it); false when the
   *  host knows the engine starts this run immediately, so a short run wakes the host only with its result */
  | { type: 'run'; id: number; jobs: BatchJob[]; reportStart?: boolean }
  /** abort the run's signal: a training loop stops after its current step and returns what it has (soft stop) */
  | { type: 'stop'; id: number }

export type FromWorker =
  | { type: 'loaded'; manifest: Manifest }
  | { type: 'load-error'; error: WireError }
  | { type: 'progress'; id: number; event: { stage: string; detail?: Record<string, unknown> } }
  | { type: 'result'; id: number; results: JobResult[] }
  | { type: 'run-error'; id: number; error: WireError }
