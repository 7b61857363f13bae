// The op table: every tensor op's examples run on the reference interpreter; every op encodes, decodes and validates.
import { describe, expect, test } from 'vitest'
import { OPS, OP_NAMES, decodeProgram, encodeProgram, evalOp, getOp, tensor, toNested, validateProgram, WeftError, type ProgramNode, type Nested } from '@weft/core'
import { demoGpt2Manifest, programOf } from '@weft/core/testing'

const manifest = demoGpt2Manifest()

function close (actual: unknown, expected: unknown): void {
  if (Array.isArray(expected)) {
    expect(Array.isArray(actual) && actual.length === expected.length).toBe(true)
    expected.forEach((e, i) => close((actual as unknown[])[i], e))
  } else if (typeof expected === 'number') {
    expect(actual as number).toBeCloseTo(expected, 5)
  } else {
    expect(actual).toBe(expected)
  }
}

describe('op examples on the reference interpreter', () => {
  for (const name of OP_NAMES) {
    for (const example of OPS[name].examples) {
      test(example.name, () => {
        const inputs = example.inputs.map((value: Nested, i) => tensor(value, undefined, example.inputDtypes?.[i]))
        const result = evalOp(name, example.attrs, inputs)
        expect(result.dtype).toBe(example.outputDtype ?? 'float32')
        close(toNested(result), example.output)
      })
    }
  }
})

test('the inventory of the contract, each with docs', () => {
  expect(OP_NAMES).toHaveLength(61)
  for (const name of OP_NAMES) {
    const op = getOp(name)
    expect(op.name).toBe(name)
    expect(op.doc.length).toBeGreaterThan(1)
    if (!op.flags.includes('access') && name !== 'stop') expect(op.examples.length, name).toBeGreaterThan(0)
  }
  expect(() => getOp('nope')).toThrowError(expect.objectContaining({ code: 'PROGRAM_INVALID' }) as unknown as Error)
})

/** One small valid use of every op, built on a read of transformer.h.0 ([1,5,256]). */
const uses: Record<string, ProgramNode> = {
  read: ['read', { site: 'transformer.h.0', port: 'input', invoke: 0 }, []],
  write: ['write', { site: 'transformer.h.2.mlp', invoke: 0, index: [null, [0, null, null]] }, [0]],
  module_call: ['module_call', { module: 'lm_head' }, [0]],
  param: ['param', { name: 'lm_head.weight' }, []],
  const: ['const', { value: tensor([0.5]) as never }, []],
  stop: ['stop', {}, []],
  save: ['save', { name: 'extra' }, [0]],
  index: ['index', { index: [0, [1, null, null]] }, [0]],
  reshape: ['reshape', { shape: [5, 8, -1] }, [0]],
  transpose: ['transpose', { perm: [0, 2, 1] }, [0]],
  concat: ['concat', { axis: 1 }, [0, 0]],
  stack: ['stack', { axis: 0 }, [0, 0]],
  where: ['where', {}, [1, 0, 0]],
  cast: ['cast', { dtype: 'float64' }, [0]],
  matmul: ['matmul', {}, [0, 2]],
  argmax: ['argmax', { axis: -1, keepdims: true }, [0]],
  topk: ['topk', { k: 3, axis: -1, output: 'indices' }, [0]],
  norm: ['norm', { axes: [-1], keepdims: false, ord: 1 }, [0]],
  clamp: ['clamp', { min: -1, max: 1 }, [0]],
  einsum: ['einsum', { equation: 'bsd,bds->bs' }, [0, 2]],
  cumsum: ['cumsum', { axis: 1, exclusive: true }, [0]],
}

describe('every op encodes, decodes and validates', () => {
  for (const name of OP_NAMES) {
    test(name, () => {
      const op = getOp(name)
      const node: ProgramNode = uses[name] ?? [name, op.flags.includes('reduction') ? { axes: [-1], keepdims: true } : op.name.includes('softmax') ? { axis: -1 } : {}, op.arity === 1 ? [0] : op.arity === 2 ? [0, 0] : [0]]
      const prefix: ProgramNode[] = [
        ['read', { site: 'transformer.h.0', port: 'output', invoke: 0 }, []],
        ['gt', {}, [0, 0]],
        ['transpose', { perm: [0, 2, 1] }, [0]],
      ]
      const shifted: ProgramNode = [node[0], node[1], node[2].map(i => i)]
      // grad needs a scalar `of`: d(sum(h0))/d(h0) on its own prefix
      let program = name === 'grad'
        ? programOf([prefix[0]!, ['sum', {}, [0]], ['grad', {}, [1, 0]], ['save', { name: 'out' }, [2]]])
        : programOf([...prefix, shifted, ['save', { name: 'out' }, [name === 'stop' ? 0 : 3]]])
      // gather/scatter need an integer index: argmax over the last axis, kept ([1,5,1])
      if (name === 'gather') program = programOf([prefix[0]!, ['argmax', { axis: -1, keepdims: true }, [0]], ['gather', { axis: -1 }, [0, 1]], ['save', { name: 'out' }, [2]]])
      if (name === 'scatter') program = programOf([prefix[0]!, ['argmax', { axis: -1, keepdims: true }, [0]], ['sum', {}, [0]], ['scatter', { axis: -1, reduction: 'add' }, [0, 1, 2]], ['save', { name: 'out' }, [3]]])
      // session ops: a declared param; a value of an earlier trace
      if (name === 'trainable') program = { ...programOf([...prefix, ['trainable', { name: 'v' }, []], ['save', { name: 'out' }, [3]]]), params: { v: { shape: [256], dtype: 'float32', init: { zeros: true } } } }
      if (name === 'from') {
        const first = programOf([...prefix, ['save', { name: 'first' }, [0]]])
        program = { ...first, then: [{ mode: 'trace', invokes: first.invokes, nodes: [['from', { trace: 0, node: 2 }, []], ['save', { name: 'out' }, [0]]] }] }
      }
      const issues = validateProgram(program, manifest)
      expect(issues, JSON.stringify(issues)).toEqual([])
      const bytes = encodeProgram(program)
      const back = decodeProgram(bytes)
      expect(encodeProgram(back)).toEqual(bytes)
      expect(validateProgram(back, manifest)).toEqual([])
    })
  }
})

test('cost rules give positive estimates for compute ops', () => {
  expect(getOp('matmul').cost({}, [{ shape: [2, 3], dtype: 'float32' }, { shape: [3, 4], dtype: 'float32' }])).toBe(2 * 2 * 4 * 3)
  expect(getOp('add').cost({}, [{ shape: [1, 'seq@0', 256], dtype: 'float32' }, { shape: [256], dtype: 'float32' }])).toBe(1024 * 256)
})

test('infer errors are WeftErrors naming the op', () => {
  try {
    getOp('transpose').infer({ perm: [0, 0] }, [{ shape: [2, 3], dtype: 'float32' }], { manifest, seqLen: () => 1 })
    expect.unreachable()
  } catch (error) {
    expect(WeftError.is(error, 'PROGRAM_INVALID')).toBe(true)
    expect((error as Error).message).toBe('transpose: perm [0,0] is not a permutation of 2 axes')
  }
})
