// Edits without an engine: where an edited model's Programs put the edit's nodes (per invoke, step 'all' when
// generating), copies versus in-place edits and clearEdits, and the recording errors of edits.
import { describe, expect, test } from 'vitest'
import type { Program } from '@weft/core'
import { Model, type Executor, type GPT2 } from '../src/index.js'
import { gpt2Manifest } from './fixtures/gpt2-manifest.js'

const PARIS = [328, 370, 293, 3606, 297]
const JAPAN = [328, 370, 293, 3430, 297]

/** An executor that keeps the Programs it is given and answers generate Programs with token 0. */
function capturing (): { executor: Executor; programs: Program[] } {
  const programs: Program[] = []
  const executor = {
    kind: 'local',
    decode: async (_model: string, ids: number[]) => ids.join(' '),
    run: async (program: Program) => {
      programs.push(program)
      const n = program.generate?.maxNewTokens ?? 0
      return { saves: Object.fromEntries(program.invokes.map((_, k) => [`generated.${k}`, { dtype: 'int64', shape: [1, n], data: new BigInt64Array(n) }])) }
    },
  } as unknown as Executor
  return { executor, programs }
}

const zeroMlp2 = (m: GPT2): void => { m.transformer.h[2].mlp.output.set(0) }
const writes = (program: Program): unknown[] => program.nodes.filter(([op]) => op === 'write').map(([, attrs]) => attrs)

describe('the Programs of an edited model', () => {
  test("generate: the edit is recorded for every invoke at step 'all', before the callback's nodes, whose inputs shift", async () => {
    const { executor, programs } = capturing()
    const model = new Model<GPT2>(executor, 'demo-gpt2', gpt2Manifest(), null).edit(zeroMlp2)
    await model.generate({ maxNewTokens: 3 }, (g) => {
      g.invoke(PARIS, (_m, steps) => { steps.step(1, (m) => { const h = m.transformer.h[4].output; h.set(h.mul(2)) }) })
      g.invoke(JAPAN, () => undefined)
    })
    const program = programs[0]!
    expect(program.mode).toBe('generate')
    expect(program.nodes.slice(0, 4).map(([op, , inputs]) => [op, inputs])).toEqual([['const', []], ['write', [0]], ['const', []], ['write', [2]]])
    expect(writes(program)).toEqual([
      { site: 'transformer.h.2.mlp', port: 'output', invoke: 0, step: 'all' },
      { site: 'transformer.h.2.mlp', port: 'output', invoke: 1, step: 'all' },
      { site: 'transformer.h.4', port: 'output', invoke: 0, step: 1 },
    ])
    const [read, , mul, write] = program.nodes.slice(-4)
    expect(read![0]).toBe('read')
    expect(mul).toEqual(['mul', {}, [program.nodes.length - 4, program.nodes.length - 3]])
    expect(write![2]).toEqual([program.nodes.length - 2])
    expect(program.locations).toHaveLength(program.nodes.length)
  })

  test('edit returns a copy; inplace edits the model; clearEdits drops in-place edits only', () => {
    const { executor } = capturing()
    const model = new Model<GPT2>(executor, 'demo-gpt2', gpt2Manifest(), null)
    const count = (m: Model<GPT2>): number => writes(m.record(PARIS, (x) => x.lm_head.output).program).length
    const copy = model.edit(zeroMlp2)
    expect([count(model), count(copy)]).toEqual([0, 1])
    expect(model.edit(zeroMlp2, { inplace: true })).toBe(model)
    const derived = model.edit((m) => { m.transformer.h[3].output.set(1) })   // takes the in-place edit with it
    expect([count(model), count(copy), count(derived)]).toEqual([1, 1, 2])
    model.clearEdits()
    derived.clearEdits()
    expect([count(model), count(copy), count(derived)]).toEqual([0, 1, 2])
    derived.edit((m) => { m.transformer.h[0].output.set(0) }, { inplace: true })
    expect(count(derived.clearEdits())).toBe(2)
  })

  test('edits cannot take gradients or be async; a prompt-specific edit fails when a trace gives it the wrong prompt', () => {
    const { executor } = capturing()
    const model = new Model<GPT2>(executor, 'demo-gpt2', gpt2Manifest(), null)
    expect(() => model.edit((m) => { const h = m.transformer.h[0].output; h.set(h.grad(h.sum())) }))
      .toThrow(/an edit cannot use gradients.*edit\.test\.ts/)
    expect(() => model.edit((async (m: GPT2) => { m.transformer.h[0].output.set(0) }) as unknown as (m: GPT2) => void))
      .toThrow(/an edit returns nothing.*cannot be async.*edit\.test\.ts/)
    const third = model.edit((m) => { m.transformer.h[0].output.at(':', 3).set(0) })   // fine for any length at edit time
    expect(writes(third.record(PARIS, (m) => m.lm_head.output).program)).toHaveLength(1)
    expect(() => third.record([328, 370], (m) => m.lm_head.output)).toThrow(/index 3 out of range.*edit\.test\.ts/)
  })
})
