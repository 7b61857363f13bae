// Property tests (fast-check): random programs and CBOR values encode to identical bytes and decode back equal.
import { expect, test } from 'vitest'
import fc from 'fast-check'
import { decodeCbor, decodeProgram, encodeCbor, encodeProgram, programDigest, tensor, type Program, type ProgramNode, type AttrValue } from '@weft/core'

const scalar = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 8 }))
const tensorArb = fc.array(fc.float({ noNaN: true }), { minLength: 1, maxLength: 6 }).map(xs => tensor(xs))
const attrValue: fc.Arbitrary<AttrValue> = fc.letrec<{ value: AttrValue }>(tie => ({
  value: fc.oneof({ depthSize: 'small' }, scalar, tensorArb as fc.Arbitrary<AttrValue>,
    fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 3 })),
})).value
const node: fc.Arbitrary<ProgramNode> = fc.tuple(
  fc.constantFrom('read', 'write', 'add', 'index', 'save', 'softmax', 'unknown_op'),
  fc.dictionary(fc.string({ maxLength: 8 }), attrValue, { maxKeys: 4 }),
  fc.array(fc.nat(20), { maxLength: 3 }),
)
const common = {
  version: fc.constant(1),
  model: fc.record({ name: fc.string({ maxLength: 12 }), revision: fc.option(fc.string({ maxLength: 12 }), { nil: null }) }),
  invokes: fc.array(fc.oneof(fc.record({ ids: fc.array(fc.nat(5000), { minLength: 1, maxLength: 6 }) }), fc.record({ text: fc.string({ minLength: 1, maxLength: 10 }) })), { minLength: 1, maxLength: 3 }),
  nodes: fc.array(node, { maxLength: 8 }),
}
// generate mode carries its options (required with that mode)
const generateOptions = fc.record({
  maxNewTokens: fc.integer({ min: 1, max: 64 }),
  strategy: fc.oneof(fc.constant('greedy' as const), fc.record({ temperature: fc.double({ min: 0.05, max: 4, noNaN: true }), seed: fc.nat() })),
}, { requiredKeys: ['maxNewTokens', 'strategy'] })
const program: fc.Arbitrary<Program> = fc.oneof(
  fc.record({ ...common, mode: fc.constant('trace' as const) }),
  fc.record({ ...common, mode: fc.constant('generate' as const), generate: generateOptions }),
)

test('random programs: identical bytes, equal after decoding, stable digest', () => {
  fc.assert(fc.property(program, p => {
    const bytes = encodeProgram(p)
    expect(encodeProgram(structuredClone(p))).toEqual(bytes)
    const back = decodeProgram(bytes)
    expect(back).toEqual(p)
    expect(encodeProgram(back)).toEqual(bytes)
    expect(programDigest(bytes)).toBe(programDigest(p))
  }), { numRuns: 300 })
})

test('random CBOR values round-trip byte-exactly', () => {
  const value = fc.letrec<{ v: unknown }>(tie => ({
    v: fc.oneof({ depthSize: 'small' }, scalar, fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }), fc.uint8Array({ maxLength: 8 }),
      fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 4 })),
  })).v
  fc.assert(fc.property(value, v => {
    const bytes = encodeCbor(v)
    expect(encodeCbor(decodeCbor(bytes))).toEqual(bytes)
  }), { numRuns: 500 })
})
