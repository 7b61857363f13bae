// Recording gradients without an engine: h.grad(loss), loss.backward({...}), t.param, and errors at the right line.
import { describe, expect, expectTypeOf, test } from 'vitest'
import { WeftError, validateProgram, type Program } from '@weft/core'
import { Model, type Executor, type GPT2, type ValueProxy } from '../src/index.js'
import { gpt2Manifest } from './fixtures/gpt2-manifest.js'

const P0 = [328, 370, 293, 3606, 297]
const manifest = { ...gpt2Manifest(), params: [{ name: 'transformer.h.0.ln_1.weight', shape: [256], dtype: 'float32' as const }] }
const noRun = { kind: 'local', run: async () => { throw new Error('recording tests never run') } } as unknown as Executor
const model = new Model<GPT2>(noRun, 'demo-gpt2', manifest, null)

function thrown (fn: () => unknown): WeftError {
  try { fn() } catch (error) { if (WeftError.is(error)) return error; throw error }
  throw new Error('expected a WeftError')
}
const ops = (program: Program): string[] => program.nodes.map(([op]) => op)

describe('recording gradients', () => {
  test('h.grad(loss) records grad(of, wrt) shaped like the site; backward({…}) gives the same nodes', () => {
    const { program, types } = model.record(P0, (m, t) => {
      const h = m.transformer.h[2].input
      const w = t.param('transformer.h.0.ln_1.weight')
      const loss = m.lm_head.output.at(0, -1, 3682).sub(m.lm_head.output.at(0, -1, 4080))
      const viaBackward = loss.backward({ h, w })
      expectTypeOf(viaBackward).toEqualTypeOf<{ h: ValueProxy; w: ValueProxy }>()
      expectTypeOf(loss.backward(h)).toEqualTypeOf<ValueProxy>()
      expectTypeOf(loss.backward([h, w] as const)).toEqualTypeOf<[ValueProxy, ValueProxy]>()
      return { gh: h.grad(loss), gw: w.grad(loss), bh: viaBackward.h, bw: viaBackward.w, list: loss.backward([h])[0]! }
    })
    expect(ops(program).filter(op => op === 'grad')).toHaveLength(5)
    const grads = program.nodes.filter(([op]) => op === 'grad')
    expect(grads[0]![2]).toEqual(grads[2]![2])
    expect(program.nodes[grads[0]![2][1]!]).toEqual(['read', { site: 'transformer.h.2', port: 'input', invoke: 0 }, []])
    expect(program.nodes[grads[1]![2][1]!]).toEqual(['param', { name: 'transformer.h.0.ln_1.weight' }, []])
    expect(types.gh).toEqual({ shape: [1, 5, 256], dtype: 'float32' })
    expect(types.gw).toEqual({ shape: [256], dtype: 'float32' })
    expect(validateProgram(program, manifest)).toEqual([])
  })

  test('a gradient w.r.t. a computed value throws at the line, saying what to do', () => {
    const error = thrown(() => model.record(P0, (m) => {
      const last = m.transformer.h[2].output.at(0, -1)
      return last.grad(m.lm_head.output.sum())
    }))
    expect(error.message).toMatch(/^grad: gradients are taken w\.r\.t\. a site \(\.output\/\.input\) or a parameter, not a computed value \(index\); take the site's gradient and index that instead: h\.grad\(loss\)\.at\(…\) \(at .*grad\.test\.ts:\d+:\d+\)$/)
  })

  test('a non-scalar `of` throws at the line; so does an unknown parameter', () => {
    expect(thrown(() => model.record(P0, (m) => m.transformer.h[2].output.grad(m.lm_head.output))).message)
      .toMatch(/^grad: of must be a scalar \(shape \[\] or all dims 1\), got \[1,5,4096\]: reduce it first \(sum, mean, index\).*grad\.test\.ts/)
    expect(thrown(() => model.record(P0, (_m, t) => t.param('transformer.h.9.ln_1.weight'))).message).toMatch(/^param: unknown parameter 'transformer\.h\.9\.ln_1\.weight'/)
  })

  test('validation refuses a write of a gradient (known only after the forward) and a gradient of a gradient', () => {
    const { program } = model.record(P0, (m) => {
      const h = m.transformer.h[5].output
      const g = h.grad(m.lm_head.output.sum())
      m.transformer.h[5].output.set(g)
      return { g, gg: h.grad(g.sum()) }
    })
    const messages = validateProgram(program, manifest).map(issue => issue.message)
    expect(messages).toContainEqual(expect.stringContaining("causality violation: the value written to 'transformer.h.5' output depends on node"))
    expect(messages).toContainEqual(expect.stringContaining('(a gradient), which is computed later in the forward pass'))
    expect(messages).toContainEqual(expect.stringMatching(/^grad: of \(node \d+\) depends on a gradient; higher-order gradients are not supported$/))
  })
})
