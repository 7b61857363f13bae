/** What the engine's training tests share: demo-gpt2 on the engine, PyTorch's training run, result helpers. */
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll } from 'vitest'
import { WeftError, type JobResult } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'

const DIR = new URL('../../../models/demo-gpt2/', import.meta.url).pathname

export interface TrainingReference {
  prompts: string[]; target_id: number; base_loss: number
  steering_vector: { steps: number; loss_per_step: number[]; final_v: number[]; final_loss_after_training: number }
}

/** demo-gpt2 loaded on the engine and PyTorch's training run, for the tests of a file (loaded before them, freed after) */
export function demoTraining (): { handle: OnnxModelHandle; ref: TrainingReference } {
  const fixture = {} as { handle: OnnxModelHandle; ref: TrainingReference }
  beforeAll(async () => {
    fixture.handle = await onnxBackend({ sessionCacheSize: 16 }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
    fixture.ref = JSON.parse(await readFile(DIR + 'reference_training.json', 'utf8')) as TrainingReference
  })
  afterAll(async () => { await fixture.handle.dispose() })
  return fixture
}

/** the job's result, or its error thrown */
export const ok = (r: JobResult): Extract<JobResult, { ok: true }> => { if (!r.ok) throw WeftError.fromWire(r.error); return r }
/** relative difference of a from b */
export const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30)
