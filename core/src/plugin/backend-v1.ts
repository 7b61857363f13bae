/** Backend plugin interface, version 1 (types, and the name of one progress stage). A backend loads models and runs batches of Programs. */
import type { Program } from '../ir/program.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Tensor } from '../tensor/tensor.js'
import type { WireError } from '../errors/weft-error.js'
import type { ValueType } from '../ops/types.js'
import type { OptimizerState } from '../train/optimizers.js'

export interface AbortOptions { signal?: AbortSignal }
export interface RunOptions extends AbortOptions {
  onProgress?: (event: { stage: string; detail?: Record<string, unknown> }) => void
}

export interface ModelSource {
  name: string
  /** a Hugging Face checkpoint folder or an .onnx file */
  path: string
}

export interface BackendV1 {
  readonly specificationVersion: 'v1'
  readonly name: string
  /** 'trace' | 'generate' | 'grad' | `op:${name}` */
  readonly capabilities: ReadonlySet<string>
  loadModel (source: ModelSource, options?: AbortOptions): Promise<ModelHandleV1>
  close? (): Promise<void>
}

/** One job of a (possibly co-tenant) batch. Each job's invokes become its own rows; a job sees only its rows. */
export interface BatchJob {
  id: string
  program: Program
  /**
   * The node types of `program` (its first trace) when the host already validated and typed it at admission; a
   * backend may use them instead of inferring again. Absent: the backend validates and types the Program itself.
   */
  types?: readonly ValueType[]
  /** a training Program: continue from this checkpoint (of this same job) instead of step 0 */
  resume?: TrainingCheckpoint
  /** a training Program: report checkpoints (progress stage TRAIN_CHECKPOINT_STAGE) at this cadence; absent: none */
  checkpoint?: CheckpointCadence
}

/**
 * When a training loop reports a checkpoint: after a completed step when at least `everySteps` steps AND at least
 * `everyMs` milliseconds passed since the last one (or the run's start), never after the last step.
 */
export interface CheckpointCadence { everySteps: number; everyMs: number }

/**
 * A training loop's whole state after `step` completed steps: enough to run the remaining steps exactly as an
 * uninterrupted run would (the data position is the step number: batch = trainBatch(program, step); no RNG is drawn
 * after the params' init). The engine reports it as progress `{stage: TRAIN_CHECKPOINT_STAGE, detail: {job,
 * checkpoint}}` (copies: the engine keeps training), and accepts it back as `BatchJob.resume`.
 */
export interface TrainingCheckpoint {
  /** completed steps (the next step to run, 0-based) */
  step: number
  /** steps the run asks for in all */
  steps: number
  /** the loss of every completed step (length `step`) */
  losses: number[]
  /** the values of every trained param (`train.params`) after `step` updates */
  params: Record<string, Tensor>
  /** the optimizer's moments / momentum buffers and step count */
  optimizer: OptimizerState
}

/** the progress stage of a training checkpoint (detail: {job, checkpoint: TrainingCheckpoint}); hosts do not relay it */
export const TRAIN_CHECKPOINT_STAGE = 'train-checkpoint'

export interface JobStats {
  /** milliseconds spent in the engine for the batch this job ran in */
  runMs: number
  /** whether the compiled graph came from the session cache */
  cacheHit: boolean
  /** bytes of tensor data in the saves */
  saveBytes: number
}

/** What a training loop did (Programs with `train`). */
export interface TrainingReport {
  /** optimizer steps asked for */
  steps: number
  /** steps completed (each one's update applied); fewer than `steps` when cancelled */
  completed: number
  /** the loss of every completed step, computed before its update (also saved as `train.loss`) */
  losses: number[]
  /** true when RunOptions.signal stopped the loop: `params` then hold the last completed step's values */
  cancelled: boolean
  /** the run continued from a checkpoint (BatchJob.resume) after this many completed steps */
  resumedFrom?: number
}

export type JobResult =
  | {
    id: string; ok: true; saves: Record<string, Tensor>; stats: JobStats
    /**
     * Programs with `params`: every declared param's final value. The host persists them when the Program has
     * `keep`; they are not part of the client's result (only saves leave).
     */
    params?: Record<string, Tensor>
    training?: TrainingReport
  }
  | { id: string; ok: false; error: WireError }

export interface ScanEntry { name: string; shape: number[]; dtype: string }

export interface ModelHandleV1 {
  readonly manifest: Manifest
  tokenize (text: string): number[]
  decode (ids: readonly number[]): string
  /**
   * validates and reports every saved value's shape and dtype without running the model; `types`: the Program's
   * node types when the caller already inferred them (then used, not inferred again)
   */
  scan (program: Program, types?: readonly ValueType[]): ScanEntry[]
  /** runs jobs as rows of one forward pass where possible; one job's failure does not fail the others */
  run (jobs: BatchJob[], options?: RunOptions): Promise<JobResult[]>
  dispose (): Promise<void>
}
