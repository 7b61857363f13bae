// The result Tensor's helpers and the index-argument parser, against hand-computed values.
import { describe, expect, test } from 'vitest'
import { Tensor } from '../src/index.js'
import { toIndexSpec, resolveIndex } from '../src/tensor/indexing.js'

const t = Tensor.of([[[1, 5, 2], [7, 0, 3]]]) // shape [1, 2, 3]

describe('Tensor', () => {
  test('shape, get, item, toArray, reshape', () => {
    expect(t.shape).toEqual([1, 2, 3])
    expect(t.get(0, 1, -1)).toBe(3)
    expect(t.at(0, 1, 0).item()).toBe(7)
    expect(t.toArray()).toEqual([[[1, 5, 2], [7, 0, 3]]])
    expect(t.reshape(2, -1).toArray()).toEqual([[1, 5, 2], [7, 0, 3]])
    expect(() => t.get(0, 2, 0)).toThrow(/out of range/)
  })

  test('at: ints drop dims, slices keep them, negative steps reverse', () => {
    expect(t.at(0, ':', -1).toArray()).toEqual([2, 3])
    expect(t.at(0, '0:1').shape).toEqual([1, 3])
    expect(t.at(0, 0, '::-1').toArray()).toEqual([2, 5, 1])
    expect(t.at(0, null, [0, 3, 2]).toArray()).toEqual([[1, 2], [7, 3]])
  })

  test('argmax, topk, softmax along the last axis', () => {
    expect(t.argmax().toArray()).toEqual([[1, 0]])
    expect(t.argmax(1).toArray()).toEqual([[1, 0, 1]])
    const { values, indices } = t.at(0, 0).topk(2)
    expect(values.toArray()).toEqual([5, 2])
    expect(indices.toArray()).toEqual([1, 2])
    const p = Tensor.of([0, Math.log(3)]).softmax().toFlat()
    expect(p[0]).toBeCloseTo(0.25, 6)
    expect(p[1]).toBeCloseTo(0.75, 6)
  })
})

describe('index arguments', () => {
  test('strings, numbers, arrays and null', () => {
    expect(toIndexSpec([':', -1, '2:5', '::2', '-3:', [1, null], null, '4'])).toEqual([null, -1, [2, 5, null], [null, null, 2], [-3, null, null], [1, null, null], null, 4])
  })
  test('bad items throw PROGRAM_INVALID naming the item', () => {
    expect(() => toIndexSpec(['1:2:0'])).toThrow(/step 0/)
    expect(() => toIndexSpec([1.5])).toThrow(/must be an integer/)
    expect(() => toIndexSpec(['a'])).toThrow(/not an integer or a slice/)
  })
  test('resolveIndex offsets', () => {
    expect(resolveIndex([2, 3], [':', -1])).toEqual({ shape: [2], offsets: [2, 5] })
    expect(() => resolveIndex([2, 3], [0, 0, 0])).toThrow(/Too many indices/)
  })
})
