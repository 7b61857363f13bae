/**
 * Training on the engine (issue #11): a steering vector at transformer.h.2 trained by Adam for 30 steps over four
 * prompts must reproduce PyTorch's run (models/demo-gpt2/reference_training.json: every step's loss and the final
 * vector to ≤ 1e-4 relative); progress events, cancellation, params in the result, sessions with `from`.
 */
import { describe, expect, test } from 'vitest'
import { PROGRAM_VERSION, type Program, type ProgramNode } from '@weft/core'
import { steeringProgram } from './steering-program.js'
import { demoTraining, ok, rel } from './training-fixture.js'

const f = demoTraining()

describe('steering vector trained by Adam (acceptance)', () => {
  test('every step\'s loss and the final v match PyTorch to ≤ 1e-4 relative; one event per step', async () => {
    const events: { step: number; loss: number }[] = []
    const [result] = await f.handle.run([{ id: 'train', program: steeringProgram(f.ref.prompts, f.ref.target_id) }],
      { onProgress: e => { if (e.stage === 'train-step') events.push(e.detail as { step: number; loss: number }) } })
    const r = ok(result!)
    const want = f.ref.steering_vector.loss_per_step
    expect(r.training).toMatchObject({ steps: 30, completed: 30, cancelled: false })
    r.training!.losses.forEach((loss, k) => expect(rel(loss, want[k]!), `step ${k}: ${loss} vs ${want[k]}`).toBeLessThanOrEqual(1e-4))
    expect(Array.from(r.saves['train.loss']!.data as Float32Array)).toEqual(r.training!.losses.map(Math.fround))
    expect(events.map(e => e.step)).toEqual(Array.from({ length: 30 }, (_, k) => k + 1))
    const v = r.params!.v!.data as Float32Array
    let worst = 0
    f.ref.steering_vector.final_v.forEach((x, i) => { worst = Math.max(worst, Math.abs(v[i]! - x) / Math.max(Math.abs(x), 1e-2)) })
    expect(worst).toBeLessThanOrEqual(1e-4)
    console.log('worst loss rel', Math.max(...r.training!.losses.map((l, k) => rel(l, want[k]!))), 'worst v rel', worst)
    expect(rel(Number(r.saves.loss_after!.data[0]), f.ref.steering_vector.final_loss_after_training)).toBeLessThanOrEqual(1e-4)
    expect(r.stats.cacheHit).toBe(false)
  })
})

describe('training runs, cancellation and params', () => {
  test('cancelling after step 3 keeps 3 losses and the params of step 3 (equal to a 3-step run)', async () => {
    const controller = new AbortController()
    const program = steeringProgram(f.ref.prompts.slice(0, 2), f.ref.target_id)
    const [cut] = await f.handle.run([{ id: 'cut', program }], {
      signal: controller.signal,
      onProgress: e => { if (e.stage === 'train-step' && (e.detail as { step: number }).step === 3) controller.abort() },
    })
    const r = ok(cut!)
    expect(r.training).toMatchObject({ steps: 30, completed: 3, cancelled: true })
    expect(r.saves['train.loss']!.shape).toEqual([3])
    expect(r.saves.loss_after).toBeUndefined()
    const [three] = await f.handle.run([{ id: 'three', program: { ...program, train: { ...program.train!, steps: 3 } } }])
    expect(Array.from(r.params!.v!.data as Float32Array)).toEqual(Array.from(ok(three!).params!.v!.data as Float32Array))
  })

  test('an abort before the first step is JOB_CANCELLED; an unresolved adapter init is a typed refusal', async () => {
    const controller = new AbortController()
    controller.abort()
    const [early] = await f.handle.run([{ id: 'early', program: steeringProgram(f.ref.prompts.slice(0, 1), f.ref.target_id) }], { signal: controller.signal })
    expect(early).toMatchObject({ ok: false, error: { code: 'JOB_CANCELLED' } })
    const program = steeringProgram(f.ref.prompts.slice(0, 1), f.ref.target_id, { params: { v: { shape: [256], dtype: 'float32', init: { adapter: { name: 'mine', param: 'v' } } } } })
    const [refused] = await f.handle.run([{ id: 'adapter', program }])
    expect(refused).toMatchObject({ ok: false, error: { code: 'BACKEND_CAPABILITY_MISSING' } })
    expect((refused as { error: { message: string } }).error.message).toContain("init.adapter ('mine'.'v') must be resolved")
  })

  test('a normal init is the specified generator\'s; params without training come back unchanged; a bad session is PROGRAM_INVALID', async () => {
    const base = steeringProgram(f.ref.prompts.slice(0, 1), f.ref.target_id)
    const { train: _t, ...plain } = base
    const program: Program = { ...plain, params: { v: { shape: [256], dtype: 'float32', init: { normal: { mean: 0, std: 0.01, seed: 42 } } } } }
    const [r] = await f.handle.run([{ id: 'normal', program }])
    const v = ok(r!).params!.v!.data as Float32Array
    const { normalInit } = await import('@weft/core')
    expect(Array.from(v)).toEqual(Array.from(normalInit([256], 0, 0.01, 42)))
    const [bad] = await f.handle.run([{ id: 'bad', program: { ...base, train: { ...base.train!, loss: 1 } } }])
    expect(bad).toMatchObject({ ok: false, error: { code: 'PROGRAM_INVALID' } })
  })
})

describe('gradient edits (detach)', () => {
  const read = (site: string): ProgramNode => ['read', { site, port: 'output', invoke: 0 }, []]
  const lossOf = (edit: ProgramNode[]): Program => {
    const nodes: ProgramNode[] = [read('transformer.h.0'), read('transformer.h.4'), ...edit]
    const logits = nodes.push(read('lm_head')) - 1
    nodes.push(['index', { index: [0, -1] }, [logits]], ['log_softmax', { axis: -1 }, [logits + 1]], ['index', { index: [3654] }, [logits + 2]])
    const loss = nodes.push(['neg', {}, [logits + 3]]) - 1
    nodes.push(['grad', {}, [loss, 0]], ['grad', {}, [loss, 1]], ['save', { name: 'g0' }, [loss + 1]], ['save', { name: 'g4' }, [loss + 2]], ['save', { name: 'loss' }, [loss]])
    return { version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [328, 370, 293, 3606, 297] }], nodes }
  }
  test('write(h.3, detach(h.3)) zeroes the gradient before block 3 only; detach-scaling halves it', async () => {
    const [plain, detached, halved] = (await f.handle.run([
      { id: 'plain', program: lossOf([]) },
      { id: 'detached', program: lossOf([read('transformer.h.3'), ['detach', {}, [2]], ['write', { site: 'transformer.h.3', port: 'output', invoke: 0 }, [3]]]) },
      { id: 'halved', program: lossOf([read('transformer.h.3'), ['detach', {}, [2]], ['sub', {}, [2, 3]],
        ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(0.5) } as never }, []], ['mul', {}, [4, 5]], ['add', {}, [3, 6]],
        ['write', { site: 'transformer.h.3', port: 'output', invoke: 0 }, [7]]]) },
    ])).map(ok)
    const flat = (r: typeof plain, name: string): number[] => Array.from(r!.saves[name]!.data as Float32Array)
    expect(flat(detached, 'loss')).toEqual(flat(plain, 'loss'))
    expect(flat(detached, 'g0').every(x => x === 0)).toBe(true)
    expect(flat(plain, 'g0').some(x => x !== 0)).toBe(true)
    const close = (a: number[], b: number[], s: number): boolean => a.every((x, i) => Math.abs(x - s * b[i]!) <= 1e-5 * (1 + Math.abs(b[i]!)))
    expect(close(flat(detached, 'g4'), flat(plain, 'g4'), 1)).toBe(true)
    expect(close(flat(halved, 'g0'), flat(plain, 'g0'), 0.5)).toBe(true)
    expect(close(flat(halved, 'loss'), flat(plain, 'loss'), 1)).toBe(true)
  })
})
