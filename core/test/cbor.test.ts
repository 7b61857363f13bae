// Deterministic CBOR: RFC 8949 Appendix A values, RFC 8746 tensors, and the decoder's strictness and bounds.
import { describe, expect, test } from 'vitest'
import { CborTag, decodeCbor, encodeCbor, fromHex, tensor, toHex, toNested, WeftError } from '@weft/core'

const cases: [unknown, string][] = [
  [0, '00'], [23, '17'], [24, '1818'], [100, '1864'], [1000, '1903e8'], [1000000, '1a000f4240'],
  [1000000000000, '1b000000e8d4a51000'], [18446744073709551615n, '1bffffffffffffffff'], [-1, '20'], [-1000, '3903e7'],
  [-18446744073709551616n, '3bffffffffffffffff'], [1.5, 'f93e00'], [-0, 'f98000'], [65504, '19ffe0'], [100000.5, 'fa47c35040'],
  [1.1, 'fb3ff199999999999a'], [5.960464477539063e-8, 'f90001'], [Infinity, 'f97c00'], [NaN, 'f97e00'], [-Infinity, 'f9fc00'],
  [false, 'f4'], [true, 'f5'], [null, 'f6'], ['', '60'], ['IETF', '6449455446'], ['\u00fc', '62c3bc'], ['\ud800\udd51', '64f0908591'],
  [new Uint8Array([1, 2, 3, 4]), '4401020304'], [[], '80'], [[1, [2, 3], [4, 5]], '8301820203820405'],
  [{}, 'a0'], [{ a: 1, b: [2, 3] }, 'a26161016162820203'], [new Map([[1, 2], [3, 4]]), 'a201020304'],
  [{ aa: 1, b: 2, c: 3 }, 'a3616202616303626161 01'.replace(' ', '')], [new CborTag(18, [1]), 'd28101'],
]

describe('encodes deterministically', () => {
  for (const [value, hex] of cases) {
    test(`${String(value instanceof Map ? 'Map' : JSON.stringify(value, (_k, v) => typeof v === 'bigint' ? String(v) : v))} → ${hex}`, () => {
      expect(toHex(encodeCbor(value))).toBe(hex)
      const back = decodeCbor(fromHex(hex))
      if (typeof value === 'number' && Number.isNaN(value)) expect(back).toBeNaN()
      else expect(back).toEqual(value)
    })
  }
})

describe('tensors as RFC 8746 typed arrays', () => {
  test('float32 [2,2] is 40([[2,2], 85(h...)])', () => {
    const t = tensor([[1, 2], [3, 4]])
    const hex = toHex(encodeCbor(t))
    expect(hex).toBe('d82882820202d85550' + '0000803f' + '00000040' + '00004040' + '00008040')
    const back = decodeCbor(fromHex(hex)) as ReturnType<typeof tensor>
    expect(back.dtype).toBe('float32')
    expect(toNested(back)).toEqual([[1, 2], [3, 4]])
  })

  test('bool uses a homogeneous array, int64 tag 79', () => {
    expect(toHex(encodeCbor(tensor([true, false])))).toBe('d8288281 02d82982f5f4'.replace(' ', ''))
    expect(toHex(encodeCbor(tensor([1n, -1n])))).toBe('d8288281 02d84f5001000000000000 00ffffffffffffffff'.replaceAll(' ', ''))
  })
})

describe('rejects non-deterministic or malformed input', () => {
  const rejects = (hex: string, fragment: string): void => {
    try {
      decodeCbor(fromHex(hex))
      expect.unreachable(`accepted ${hex}`)
    } catch (error) {
      expect(WeftError.is(error, 'DECODE_FAILED')).toBe(true)
      expect((error as Error).message).toContain(fragment)
    }
  }
  test.each([
    ['1817', 'shortest'], ['5f4101ff', 'indefinite'], ['a2616201616101', 'order'], ['a2616101616102', 'duplicate'],
    ['f93c00', 'integral'], ['fa3fc00000', 'shortest form'], ['5a7fffffff00', 'exceeds'], ['9a7fffffff', 'exceeds'],
    ['0000', 'trailing'], ['62c328', 'UTF-8'], ['f7', 'simple'], ['d8288201 d85541aa'.replace(' ', ''), 'shape'],
    ['f97e01', 'NaN'],
  ])('%s (%s)', rejects)

  test('depth and item limits', () => {
    expect(() => decodeCbor(new Uint8Array(100).fill(0x81))).toThrow(/deeper/)
    expect(() => decodeCbor(fromHex('83010203'), { maxItems: 2 })).toThrow(/items/)
  })

  test('__proto__ keys stay plain data', () => {
    const value = decodeCbor(encodeCbor(new Map([['__proto__', { polluted: true }]]))) as Record<string, unknown>
    expect(Object.getPrototypeOf(value)).toBe(null)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.keys(value)).toEqual(['__proto__'])
  })
})
