/**
 * The stored form of a training checkpoint (providers/host/src/jobs/train-checkpoints.ts): bit-exact round trips
 * (float32 params and Adam/SGD state, float64 losses including NaN and infinities), through a real SQLite row, and
 * typed DECODE_FAILED for bytes that are not a checkpoint.
 */
import { expect, test } from 'vitest'
import type { TrainingCheckpoint } from '@weft/core'
import { decodeCheckpoint, encodeCheckpoint } from '../src/jobs/train-checkpoints.js'
import { SqliteStore } from '../src/store/store.js'
import { tempDb } from './helpers.js'

const f32 = (values: number[]): Float32Array => Float32Array.from(values)

const checkpoint: TrainingCheckpoint = {
  step: 4, steps: 9,
  losses: [13.7215576171875, 0.1 + 0.2, Number.NaN, Number.POSITIVE_INFINITY],
  params: {
    A: { dtype: 'float32', shape: [2, 3], data: f32([1, -2.5, 3e-38, -0, 1e30, 0.1]) },
    b: { dtype: 'float32', shape: [1], data: f32([7]) },
  },
  optimizer: { step: 4, slots: { A: { m: f32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]), v: f32([1e-8, 2e-8, 3, 4, 5, 6]) }, b: { buf: f32([-1]) } } },
}

const bits = (a: Float32Array | undefined): number[] => Array.from(new Uint32Array(a!.buffer, a!.byteOffset, a!.length))

function expectSame (got: TrainingCheckpoint): void {
  expect({ step: got.step, steps: got.steps, optimizer: got.optimizer.step }).toEqual({ step: 4, steps: 9, optimizer: 4 })
  expect(got.losses).toEqual(checkpoint.losses) // NaN equals NaN here; 0.1 + 0.2 exactly
  expect(Object.is(got.losses[1], 0.1 + 0.2)).toBe(true)
  for (const name of ['A', 'b']) {
    expect(got.params[name]!.shape).toEqual(checkpoint.params[name]!.shape)
    expect(bits(got.params[name]!.data as Float32Array)).toEqual(bits(checkpoint.params[name]!.data as Float32Array)) // -0 kept
  }
  expect(bits(got.optimizer.slots.A!.m)).toEqual(bits(checkpoint.optimizer.slots.A!.m))
  expect(bits(got.optimizer.slots.A!.v)).toEqual(bits(checkpoint.optimizer.slots.A!.v))
  expect(got.optimizer.slots.A!.buf).toBeUndefined()
  expect(bits(got.optimizer.slots.b!.buf)).toEqual([...bits(checkpoint.optimizer.slots.b!.buf)])
}

test('a checkpoint round-trips bit for bit, also through a SQLite row', () => {
  const bytes = encodeCheckpoint(checkpoint)
  expectSame(decodeCheckpoint(bytes))
  const store = new SqliteStore(tempDb('ckpt-codec'))
  try {
    store.insertJob({
      id: 'job_c', kid: 'k', model: 'm', revision: 'r', programDigest: 'p', requestDigest: 'q', program: Buffer.from([0]), state: 'running',
      attempts: 1, error: null, estimatedEgress: 0, maxEgress: null, timeoutMs: 1000, submittedAt: 0, startedAt: 0, endedAt: null, node: null, leaseUntil: null,
    })
    expect(store.putTrainCheckpoint({ jobId: 'job_c', step: 4, state: bytes, now: 1 })).toBe(true)
    expectSame(decodeCheckpoint(store.getTrainCheckpoint('job_c')!.state))
  } finally { store.close() }
})

test('bytes that are not a checkpoint are DECODE_FAILED', () => {
  const good = encodeCheckpoint(checkpoint)
  for (const bytes of [new Uint8Array(0), new Uint8Array([255, 255, 255, 255, 1]), Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('{}')]), good.subarray(0, good.byteLength - 12)]) {
    expect(() => decodeCheckpoint(bytes)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }))
  }
})
