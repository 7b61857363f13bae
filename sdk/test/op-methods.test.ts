// OP_METHODS, checked at run time: every ValueProxy row records a node of that op (the type test checks the names).
import { expect, test } from 'vitest'
import { OPS, type OpName } from '@weft/core'
import { Model, type Executor, type GPT2 } from '../src/index.js'
import { OP_METHODS, ValueProxy } from '../src/trace/value-proxy.js'
import { gpt2Manifest } from './fixtures/gpt2-manifest.js'

const noRun = { kind: 'local', run: async () => { throw new Error('recording tests never run') } } as unknown as Executor
const model = new Model<GPT2>(noRun, 'demo-gpt2', gpt2Manifest(), null)

/** Arguments that make each ValueProxy method record its op on a [1, 5, 256] float value (the rest take none or one operand). */
const ARGS: Partial<Record<OpName, (h: ValueProxy) => unknown[]>> = {
  const: () => [[1, 2]],
  index: () => [0, -1],
  reshape: () => [5, 256],
  concat: (h) => [[h]],
  stack: (h) => [[h]],
  where: () => [1, 0],
  cast: () => ['float64'],
  matmul: () => [Array.from({ length: 256 }, () => [1])],
  topk: () => [2],
  grad: (h) => [h.sum()],
  save: () => ['x'],
  clamp: () => [-1, 1],
  cumsum: () => [1],
  einsum: (h) => ['bsd,bsd->bs', h],
  gather: () => [2, [[[0], [1], [2], [3], [4]]]],
  scatter: () => [2, [[[0], [1], [2], [3], [4]]], 0],
}

test('each ValueProxy row of OP_METHODS records its op', () => {
  const rows = Object.entries(OP_METHODS).filter(([, row]) => row.on === 'ValueProxy') as [OpName, { method: keyof ValueProxy }][]
  expect(rows.length).toBeGreaterThan(30)
  for (const [op, row] of rows) {
    const { program } = model.record([1, 2, 3, 4, 5], (m) => {
      const h = m.transformer.h[0].output
      const operand = OPS[op].arity === 2 && op !== 'grad' && op !== 'matmul' ? [h] : []
      const args = ARGS[op]?.(h) ?? operand
      const self = op === 'where' ? h.gt(0) : h // where's receiver is the condition
      const method = self[row.method] as unknown as (...a: unknown[]) => unknown
      const result = method.apply(self, args)
      if (op === 'const') return { out: new ValueProxy(h.recorder, result as number).save() }
      const out = result as ValueProxy | { values: ValueProxy }
      return { out: ('values' in out ? out.values : out as ValueProxy).save() }
    })
    expect(program.nodes.some(([name]) => name === op), `${op} via .${String(row.method)}()`).toBe(true)
  }
})
