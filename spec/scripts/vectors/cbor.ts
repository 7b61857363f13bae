/** CBOR vectors: deterministic encodings (diag written by hand) and non-deterministic/malformed inputs to reject. */
import { encodeCbor, tensor, toHex, toJsonForm, CborTag } from '@weft/core'
import type { VectorFile } from './types.js'

const pass: [id: string, diag: string, value: unknown, note?: string][] = [
  ['uint-0', '0', 0], ['uint-23', '23', 23], ['uint-24', '24', 24], ['uint-1000000', '1000000', 1000000],
  ['uint-max64', '18446744073709551615', 18446744073709551615n],
  ['nint-1', '-1', -1], ['nint-1000', '-1000', -1000], ['nint-min64', '-18446744073709551616', -18446744073709551616n],
  ['float-integral', '2', 2.0, 'a number with an exact integer value (|v| < 2^53) is always an integer, never a float'],
  ['float16', '1.5', 1.5, 'shortest float that represents the value exactly'],
  ['float16-negative-zero', '-0.0', -0],
  ['float32', '100000.5', 100000.5], ['float64', '1.1', 1.1],
  ['float-nan', 'NaN', NaN, 'the one NaN: f97e00'], ['float-infinity', 'Infinity', Infinity],
  ['text', '"IETF"', 'IETF'], ['text-utf8', '"ü"', 'ü'], ['bytes', "h'01020304'", new Uint8Array([1, 2, 3, 4])],
  ['array-nested', '[1, [2, 3], [4, 5]]', [1, [2, 3], [4, 5]]],
  ['map-key-order', '{"a": 1, "b": 2, "aa": 3}', { aa: 3, b: 2, a: 1 }, 'keys sorted bytewise by their encoding: shorter text first'],
  ['map-int-keys', "{1: -8, 4: h'6b6964'}", new Map<number, unknown>([[4, new Uint8Array([0x6b, 0x69, 0x64])], [1, -8]])],
  ['tag-cose-sign1-shape', "18([h'a0', {}, h'', h''])", new CborTag(18, [new Uint8Array([0xa0]), new Map(), new Uint8Array(0), new Uint8Array(0)])],
  ['tensor-float32', "40([[2, 2], 85(h'0000803f000000400000404000008040')])", tensor([[1, 2], [3, 4]])],
  ['tensor-float64', "40([[2], 86(h'000000000000f03f000000000000f0bf')])", tensor(new Float64Array([1, -1]))],
  ['tensor-int64', "40([[2], 79(h'0100000000000000ffffffffffffffff')])", tensor([1n, -1n])],
  ['tensor-int32', "40([[1], 78(h'07000000')])", tensor(new Int32Array([7]))],
  ['tensor-int8', "40([[2], 72(h'ff01')])", tensor(new Int8Array([-1, 1]))],
  ['tensor-uint8', "40([[2], 64(h'00ff')])", tensor(new Uint8Array([0, 255]))],
  ['tensor-bool', '40([[2], 41([true, false])])', tensor([true, false]), 'bool: a homogeneous array (tag 41) of booleans'],
  ['tensor-float16', "40([[1], 84(h'003c')])", tensor(new Uint16Array([0x3c00]), [1], 'float16'), 'float16 1.0 as raw bits'],
  ['tensor-bfloat16', "40([[1], 69(h'803f')])", tensor(new Uint16Array([0x3f80]), [1], 'bfloat16'), 'bfloat16 1.0 as raw bits in a uint16 LE typed array (Weft has no uint16 dtype)'],
  ['tensor-rank0', "40([[], 85(h'0000c03f')])", tensor(new Float32Array([1.5]), [])],
]

const fail: [id: string, hex: string, why: string][] = [
  ['non-shortest-int', '1817', '23 in a one-byte argument'],
  ['non-shortest-length', '5800', 'an empty byte string with a one-byte length'],
  ['indefinite-array', '9f01ff', 'indefinite-length array'],
  ['indefinite-bytes', '5f4101ff', 'indefinite-length byte string'],
  ['unsorted-keys', 'a2616201616101', 'keys "b" before "a"'],
  ['duplicate-keys', 'a2616101616102', 'key "a" twice'],
  ['float-for-integer', 'f93c00', '1.0 as a float16: must be the integer 1'],
  ['float-not-shortest', 'fa3fc00000', '1.5 as a float32: fits a float16'],
  ['nan-payload', 'f97e01', 'a NaN other than f97e00'],
  ['undefined', 'f7', 'undefined is not part of the data model'],
  ['truncated', '8301', 'array of 3 with one element'],
  ['trailing-bytes', '0000', 'two items at top level'],
  ['length-exceeds-input', '5a7fffffff00', 'byte string declaring 2 GiB'],
  ['count-exceeds-input', '9b00000000ffffffff', 'array declaring 4 billion items'],
  ['invalid-utf8', '62c328', 'text that is not UTF-8'],
  ['tensor-wrong-size', "d8288281 02d85544 0000803f".replaceAll(' ', ''), 'float32[2] with 4 bytes'],
  ['tensor-unknown-typed-array', 'd828828101d8414101', 'tag 65 (uint16 BE) is not a Weft dtype'],
  ['depth-bomb', '81'.repeat(100) + '00', '100 nested arrays, over the default depth limit of 32'],
]

export function cborVectors (): VectorFile[] {
  const files: VectorFile[] = pass.map(([id, diag, value, note]) => ({
    path: `cbor/pass-${id}.json`,
    body: {
      title: `cbor ${id}: ${diag}`,
      ...(note !== undefined ? { description: note } : {}),
      input: { diag, value: toJsonForm(value) },
      output: { cbor_hex: toHex(encodeCbor(value)) },
    },
  }))
  for (const [id, hex, why] of fail) {
    files.push({ path: `cbor/fail-${id}.json`, body: { title: `cbor ${id}: ${why}`, fail: true, expect_error: 'DECODE_FAILED', input: { cbor_hex: hex } } })
  }
  return files
}

/** Hand-checked encodings the generator must reproduce (a guard against the encoder drifting). */
export const CBOR_EXPECTED: Record<string, string> = {
  'uint-24': '1818', 'nint-min64': '3bffffffffffffffff', 'float16': 'f93e00', 'float-nan': 'f97e00', 'float32': 'fa47c35040',
  'map-key-order': 'a3616101616202626161 03'.replace(' ', ''), 'tensor-bool': 'd828828102d82982f5f4',
  'tensor-float32': 'd82882820202d855500000803f000000400000404000008040',
}
