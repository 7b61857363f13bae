// Validation of Programs against the demo-gpt2 manifest: every kind of issue, with the message naming the problem.
import { describe, expect, test } from 'vitest'
import { assertValidProgram, inferProgramTypes, validateProgram, WeftError, tensor, type Program, type ProgramNode } from '@weft/core'
import { demoGpt2Manifest, programOf } from '@weft/core/testing'

const manifest = demoGpt2Manifest()
const messages = (program: unknown): string[] => validateProgram(program, manifest).map(i => i.message)

describe('valid programs', () => {
  test('logit lens infers [1,5,4096] from ids of length 5', () => {
    const program = programOf([
      ['read', { site: 'transformer.h.3', port: 'output', invoke: 0 }, []],
      ['module_call', { module: 'transformer.ln_f' }, [0]],
      ['module_call', { module: 'lm_head' }, [1]],
      ['softmax', { axis: -1 }, [2]],
      ['save', { name: 'probs' }, [3]],
    ])
    expect(validateProgram(program, manifest)).toEqual([])
    const types = inferProgramTypes(program, manifest)
    expect(types[4]).toEqual({ shape: [1, 5, 4096], dtype: 'float32' })
  })

  test('text invokes have symbolic seq', () => {
    const program = programOf([
      ['read', { site: 'transformer.h.0.attn.probs', invoke: 1 }, []],
      ['index', { index: [0, null, -1] }, [0]],
      ['save', { name: 'p' }, [1]],
    ], { invokes: [{ ids: [1, 2] }, { text: 'hello' }] })
    expect(inferProgramTypes(program, manifest)[2]).toEqual({ shape: [8, 'seq@1'], dtype: 'float32' })
  })

  test('patching across invokes with a const and a where', () => {
    const program = programOf([
      ['read', { site: 'transformer.h.1.mlp', invoke: 0 }, []],
      ['const', { value: tensor([[1], [0], [0]], undefined, 'bool') as never }, []],
      ['read', { site: 'transformer.h.1.mlp', invoke: 1 }, []],
      ['where', {}, [1, 0, 2]],
      ['write', { site: 'transformer.h.1.mlp', invoke: 1 }, [3]],
      ['read', { site: 'lm_head', invoke: 1 }, []],
      ['save', { name: 'logits' }, [5]],
    ], { invokes: [{ ids: [1, 2, 3] }, { ids: [4, 5, 6] }] })
    expect(validateProgram(program, manifest)).toEqual([])
  })
})

describe('issues', () => {
  const read = (site: string, extra: Record<string, unknown> = {}): ProgramNode => ['read', { site, ...extra } as never, []]

  test('unknown module names the range', () => {
    expect(messages(programOf([read('transformer.h.9'), ['save', { name: 'x' }, [0]]])))
      .toEqual(["read: unknown module 'transformer.h.9' (model has transformer.h.0 … transformer.h.5)"])
  })

  test('broadcast, index range, arity, attrs, order, op', () => {
    const program = programOf([
      read('transformer.h.0'),
      ['const', { value: tensor([1, 2, 3]) as never }, []],
      ['add', {}, [0, 1]],
      ['index', { index: [0, 7] }, [0]],
      ['neg', {}, [0, 1]],
      ['sum', { axes: 'all' } as never, [0]],
      ['mul', {}, [0, 7]],
      ['frobnicate', {}, []],
      ['save', { name: 'a' }, [0]],
      ['save', { name: 'a' }, [0]],
      ['read', { site: 'transformer.h.0', invoke: 3 }, []],
    ])
    const found = messages(program)
    expect(found).toContain('add: cannot broadcast [1,5,256] with [3]')
    expect(found).toContain('index: index 7 out of range for dim 1 of size 5')
    expect(found).toContain('neg: needs 1 input, got 2')
    expect(found.some(m => m.startsWith("sum: attribute 'axes' must be null or a list of integers"))).toBe(true)
    expect(found).toContain('mul: input 7 must refer to an earlier node (< 6)')
    expect(found).toContain("unknown op 'frobnicate'")
    expect(found).toContain("save: duplicate save name 'a' (first saved at node 8)")
    expect(found).toContain('invoke 3 out of range (program has 1 invoke)')
  })

  test('structure: version, invokes, vocab, no saves', () => {
    const bad = { ...programOf([]), version: 2, invokes: [] } as unknown as Program
    expect(messages(bad)).toEqual(expect.arrayContaining(['version must be 1, got 2', 'invokes must be a non-empty list']))
    expect(messages(programOf([read('lm_head')], { invokes: [{ ids: [5000] }] })))
      .toEqual(['invoke 0: token id 5000 outside the vocabulary [0, 4096)', 'program saves nothing: add at least one save node'])
  })

  test('causality: writing an earlier site from a later read', () => {
    const program = programOf([
      read('transformer.h.3'),
      ['write', { site: 'transformer.h.1' }, [0]],
      read('transformer.h.1.mlp'),
      ['write', { site: 'transformer.h.1' }, [2]],
      read('transformer.h.1'),
      ['write', { site: 'transformer.h.1.ln_1' }, [4]],
      ['save', { name: 'x' }, [3]],
    ])
    const issues = validateProgram(program, manifest)
    expect(issues.map(i => i.node)).toEqual([1, 5])
    expect(issues[0]!.message).toContain("causality violation: the value written to 'transformer.h.1' output depends on node 0")
  })

  test('assertValidProgram throws PROGRAM_INVALID with every issue', () => {
    try {
      assertValidProgram(programOf([read('nope')]), manifest)
      expect.unreachable()
    } catch (error) {
      expect(WeftError.is(error, 'PROGRAM_INVALID')).toBe(true)
      expect((error as WeftError).details.issues).toHaveLength(2)
    }
  })
})

test('programCost sums the op estimates (matmul of [1,5,256] by [256,4096] = 2·5·4096·256)', async () => {
  const { programCost } = await import('@weft/core')
  const program = programOf([
    ['read', { site: 'transformer.h.0' }, []],
    ['param', { name: 'lm_head.weight' }, []],
    ['transpose', { perm: [1, 0] }, [1]],
    ['matmul', {}, [0, 2]],
    ['save', { name: 'x' }, [3]],
  ])
  expect(programCost(program, manifest)).toBe(4096 * 256 + 4096 * 256 + 2 * 5 * 4096 * 256)
})

describe('sessions and training (issue #11)', () => {
  test('the normal init generator: SplitMix64 + Box-Muller, fixed values and moments', async () => {
    const { normalInit, splitmix64 } = await import('@weft/core')
    // SplitMix64 reference outputs for state 0 (the generator of Steele et al., as in java.util.SplittableRandom)
    expect(splitmix64(0n).toString(16)).toBe('e220a8397b1dcdaf')
    const a = normalInit([4], 0, 1, 0)
    expect(Array.from(normalInit([4], 0, 1, 0))).toEqual(Array.from(a))
    const big = normalInit([20000], 1, 2, 123)
    const mean = big.reduce((s, x) => s + x, 0) / big.length
    const sd = Math.sqrt(big.reduce((s, x) => s + (x - mean) ** 2, 0) / big.length)
    expect(Math.abs(mean - 1)).toBeLessThan(0.05)
    expect(Math.abs(sd - 2)).toBeLessThan(0.05)
  })
})
