/**
 * Training checkpoints and exact resume on the engine (docs/decisions/2026-12-06-training-checkpoints.md): a run
 * reports checkpoints at its cadence; a run interrupted after a checkpoint and resumed from it gives every step's loss
 * and the final params of an uninterrupted run bit for bit, and PyTorch's figures (models/demo-gpt2/
 * reference_training.json) to ≤ 1e-4 relative. SGD with momentum resumes exactly too (its momentum buffer is state).
 */
import { expect, test } from 'vitest'
import { TRAIN_CHECKPOINT_STAGE, type JobResult, type RunOptions, type TrainingCheckpoint } from '@weft/core'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { steeringProgram } from './steering-program.js'
import { demoTraining, ok, rel } from './training-fixture.js'

const f = demoTraining()

/** Runs one job; collects its train-step numbers and checkpoints; `stopAt`: abort once that step completed. */
async function runJob (job: Parameters<OnnxModelHandle['run']>[0][number], stopAt?: number): Promise<{ result: Extract<JobResult, { ok: true }>; steps: number[]; checkpoints: TrainingCheckpoint[] }> {
  const steps: number[] = []
  const checkpoints: TrainingCheckpoint[] = []
  const controller = new AbortController()
  const options: RunOptions = {
    signal: controller.signal,
    onProgress: event => {
      if (event.stage === 'train-step') {
        steps.push(event.detail!.step as number)
        if (stopAt !== undefined && event.detail!.step === stopAt) controller.abort()
      }
      if (event.stage === TRAIN_CHECKPOINT_STAGE) {
        expect(event.detail!.job).toBe(job.id)
        checkpoints.push(event.detail!.checkpoint as TrainingCheckpoint)
      }
    },
  }
  const [result] = await f.handle.run([job], options)
  return { result: ok(result!), steps, checkpoints }
}

test('steering vector (Adam, 30 steps): interrupted after the step-10 checkpoint and resumed, every loss and v equal the uninterrupted run and PyTorch', async () => {
  const program = steeringProgram(f.ref.prompts, f.ref.target_id)
  const cadence = { everySteps: 10, everyMs: 0 }
  const whole = await runJob({ id: 'whole', program, checkpoint: cadence })
  // a checkpoint every 10 steps, none after the last; each a copy of the state at its step
  expect(whole.checkpoints.map(c => c.step)).toEqual([10, 20])
  const [at10, at20] = whole.checkpoints as [TrainingCheckpoint, TrainingCheckpoint]
  expect(at10.losses).toEqual(whole.result.training!.losses.slice(0, 10))
  expect(at10.optimizer.step).toBe(10)
  expect(Object.keys(at10.optimizer.slots.v!).sort()).toEqual(['m', 'v'])
  expect(at10.params.v!.data).not.toEqual(at20.params.v!.data)

  // interrupted at step 13 (after the step-10 checkpoint): its state past step 10 is lost, as in a crash
  const cut = await runJob({ id: 'cut', program, checkpoint: cadence }, 13)
  expect(cut.result.training).toMatchObject({ completed: 13, cancelled: true })
  expect(cut.checkpoints.map(c => c.step)).toEqual([10])
  const resumed = await runJob({ id: 'resumed', program, resume: cut.checkpoints[0]!, checkpoint: cadence })
  expect(resumed.steps).toEqual(Array.from({ length: 20 }, (_, k) => k + 11))
  expect(resumed.checkpoints.map(c => c.step)).toEqual([20])
  expect(resumed.result.training).toMatchObject({ steps: 30, completed: 30, cancelled: false, resumedFrom: 10 })

  // exact: the same numbers as the uninterrupted run, bit for bit
  expect(resumed.result.training!.losses).toEqual(whole.result.training!.losses)
  expect(Array.from(resumed.result.saves['train.loss']!.data as Float32Array)).toEqual(Array.from(whole.result.saves['train.loss']!.data as Float32Array))
  expect(Array.from(resumed.result.params!.v!.data as Float32Array)).toEqual(Array.from(whole.result.params!.v!.data as Float32Array))
  expect(resumed.result.saves.loss_after!.data[0]).toBe(whole.result.saves.loss_after!.data[0])
  // and PyTorch's: every step's loss and the final v
  const want = f.ref.steering_vector.loss_per_step
  resumed.result.training!.losses.forEach((loss, k) => expect(rel(loss, want[k]!), `step ${k + 1}`).toBeLessThanOrEqual(1e-4))
  const v = resumed.result.params!.v!.data as Float32Array
  f.ref.steering_vector.final_v.forEach((x, i) => expect(Math.abs(v[i]! - x) / Math.max(Math.abs(x), 1e-2)).toBeLessThanOrEqual(1e-4))
}, 60_000)

test('SGD with momentum resumes exactly (the momentum buffer is checkpointed); a cadence in ms holds checkpoints back', async () => {
  const program = steeringProgram(f.ref.prompts.slice(0, 2), f.ref.target_id, {})
  program.train = { ...program.train!, optimizer: { kind: 'sgd', lr: 0.5, momentum: 0.9, weightDecay: 0.01 }, steps: 6 }
  const whole = await runJob({ id: 'whole', program, checkpoint: { everySteps: 2, everyMs: 0 } })
  expect(whole.checkpoints.map(c => c.step)).toEqual([2, 4])
  expect(Object.keys(whole.checkpoints[0]!.optimizer.slots.v!)).toEqual(['buf'])
  const resumed = await runJob({ id: 'resumed', program, resume: whole.checkpoints[0]! })
  expect(resumed.checkpoints).toEqual([])
  expect(resumed.result.training).toMatchObject({ completed: 6, resumedFrom: 2 })
  expect(resumed.result.training!.losses).toEqual(whole.result.training!.losses)
  expect(Array.from(resumed.result.params!.v!.data as Float32Array)).toEqual(Array.from(whole.result.params!.v!.data as Float32Array))
  // without momentum state the run would differ: resuming from the params alone is not exact
  const stateless = await runJob({ id: 'stateless', program, resume: { ...whole.checkpoints[0]!, optimizer: { step: 2, slots: {} } } })
  expect(Array.from(stateless.result.params!.v!.data as Float32Array)).not.toEqual(Array.from(whole.result.params!.v!.data as Float32Array))
  // at most every 2 steps AND every hour: no checkpoint in a 6-step run
  const slow = await runJob({ id: 'slow', program, checkpoint: { everySteps: 2, everyMs: 3_600_000 } })
  expect(slow.checkpoints).toEqual([])
}, 60_000)

test('a checkpoint that does not fit the run is refused (INTERNAL), not trained from', async () => {
  const program = steeringProgram(f.ref.prompts.slice(0, 1), f.ref.target_id)
  program.train = { ...program.train!, steps: 3 }
  const whole = await runJob({ id: 'whole', program, checkpoint: { everySteps: 1, everyMs: 0 } })
  const good = whole.checkpoints[0]!
  const bad: TrainingCheckpoint[] = [
    { ...good, steps: 4 },
    { ...good, losses: [] },
    { ...good, params: { v: { dtype: 'float32', shape: [3], data: new Float32Array(3) } } },
  ]
  for (const resume of bad) {
    const [result] = await f.handle.run([{ id: 'bad', program, resume }])
    expect(result).toMatchObject({ ok: false, error: { code: 'INTERNAL' } })
    expect((result as { error: { message: string } }).error.message).toMatch(/checkpoint does not fit/)
  }
}, 60_000)
