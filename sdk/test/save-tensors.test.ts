/**
 * saveTensors writes safetensors and .npy that Python reads: the files are parsed back here against the formats'
 * specs (independently of the writer), byte for byte, and by numpy itself when python3 has it.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { WeftError, type Tensor as CoreTensor } from '@weft/core'
import { Tensor, saveTensors } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'weft-save-'))
const bytes = (t: CoreTensor): Buffer => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)

const TENSORS: Record<string, CoreTensor> = {
  f32: new Tensor('float32', [2, 3], Float32Array.from([0.5, -1, 3.25, 1e-8, 7, -0])),
  f64: { dtype: 'float64', shape: [3], data: Float64Array.from([Math.PI, -2, 1e300]) },
  f16: { dtype: 'float16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) }, // 1.0, -2.0
  i64: { dtype: 'int64', shape: [2, 1], data: BigInt64Array.from([-(2n ** 40n), 50256n]) },
  i32: { dtype: 'int32', shape: [1, 1, 2], data: Int32Array.from([-7, 2 ** 30]) },
  i8: { dtype: 'int8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
  u8: { dtype: 'uint8', shape: [2], data: Uint8Array.from([0, 255]) },
  flag: { dtype: 'bool', shape: [3], data: Uint8Array.from([1, 0, 1]) },
  scalar: { dtype: 'float32', shape: [], data: Float32Array.from([42]) },
}

/** safetensors: u64 LE N, N bytes of JSON (space-padded), then the data buffer the offsets index. */
function parseSafetensors (file: string): { header: Record<string, any>; data: Buffer; n: number } {
  const buf = readFileSync(file)
  const n = Number(buf.readBigUInt64LE(0))
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), data: buf.subarray(8 + n), n }
}

/** .npy 1.0: \x93NUMPY, major 1, minor 0, u16 LE header length, dict literal ending in \n, data from a 64-byte boundary. */
function parseNpy (file: string): { descr: string; fortran: boolean; shape: number[]; headerBytes: number; data: Buffer } {
  const buf = readFileSync(file)
  expect([...buf.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0])
  const len = buf.readUInt16LE(8)
  const text = buf.subarray(10, 10 + len).toString('latin1')
  expect(text.endsWith('\n')).toBe(true)
  const match = /^\{'descr': '([<|>][a-z]\d)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \} *\n$/.exec(text)
  expect(match, text).not.toBeNull()
  const shape = match![3]!.split(',').map(s => s.trim()).filter(Boolean).map(Number)
  return { descr: match![1]!, fortran: match![2] === 'True', shape, headerBytes: 10 + len, data: buf.subarray(10 + len) }
}

describe('safetensors', () => {
  test('every dtype: header dtype/shape/offsets per the spec, 8-byte padded, data byte-exact, metadata kept', () => {
    const file = join(dir, 'all.safetensors')
    expect(saveTensors(file, TENSORS, { model: 'demo-gpt2' })).toEqual([file])
    const { header, data, n } = parseSafetensors(file)
    expect(n % 8).toBe(0)
    expect(header.__metadata__).toEqual({ model: 'demo-gpt2' })
    const dtypes: Record<string, string> = { f32: 'F32', f64: 'F64', f16: 'F16', i64: 'I64', i32: 'I32', i8: 'I8', u8: 'U8', flag: 'BOOL', scalar: 'F32' }
    let end = 0
    for (const [name, tensor] of Object.entries(TENSORS)) {
      const entry = header[name]
      expect(entry.dtype).toBe(dtypes[name])
      expect(entry.shape).toEqual([...tensor.shape])
      const [from, to] = entry.data_offsets as [number, number]
      expect(from).toBe(end)
      expect(data.subarray(from, to).equals(bytes(tensor))).toBe(true)
      end = to
    }
    expect(data.length).toBe(end)
  })

  test('nested results become dotted names; plain values are left out', () => {
    const file = join(dir, 'nested.safetensors')
    saveTensors(file, { layers: [TENSORS.f32!, { attn: TENSORS.i8! }], note: 'text', count: 3 })
    expect(Object.keys(parseSafetensors(file).header)).toEqual(['layers.0', 'layers.1.attn'])
  })
})

describe('.npy', () => {
  test('one tensor per file: magic, version 1.0, little-endian descr, C order, 64-byte aligned data, byte-exact', () => {
    const descrs: Record<string, string> = { f32: '<f4', f64: '<f8', f16: '<f2', i64: '<i8', i32: '<i4', i8: '|i1', u8: '|u1', flag: '|b1', scalar: '<f4' }
    for (const [name, tensor] of Object.entries(TENSORS)) {
      const file = join(dir, `${name}.npy`)
      saveTensors(file, { [name]: tensor })
      const npy = parseNpy(file)
      expect(npy.headerBytes % 64).toBe(0)
      expect(npy).toMatchObject({ descr: descrs[name], fortran: false, shape: [...tensor.shape] })
      expect(npy.data.equals(bytes(tensor))).toBe(true)
    }
  })

  test('a folder path writes one <name>.npy per tensor', () => {
    const folder = join(dir, 'acts')
    const files = saveTensors(folder, { h0: TENSORS.f32!, ids: TENSORS.i64! })
    expect(files).toEqual([join(folder, 'h0.npy'), join(folder, 'ids.npy')])
    expect(readdirSync(folder).sort()).toEqual(['h0.npy', 'ids.npy'])
    expect(parseNpy(files[1]!).data.equals(bytes(TENSORS.i64!))).toBe(true)
  })

  test.each([
    ['several tensors into one .npy', () => saveTensors(join(dir, 'x.npy'), { a: TENSORS.f32!, b: TENSORS.f64! }), /holds one tensor, got 2 \(a, b\)/],
    ['bfloat16 into .npy', () => saveTensors(join(dir, 'bf.npy'), { bf: { dtype: 'bfloat16', shape: [1], data: Uint16Array.from([0x3f80]) } }), /numpy has no dtype for/],
    ['nothing to save', () => saveTensors(join(dir, 'e.safetensors'), { note: 'text' }), /no tensors/],
    ['data that does not fill the shape', () => saveTensors(join(dir, 'bad.safetensors'), { t: { dtype: 'float32', shape: [4], data: new Float32Array(3) } }), /3 values do not fill shape \[4\]/],
  ])('%s is ENCODE_FAILED naming the problem', (_what, run, message) => {
    let error: unknown
    try { run() } catch (e) { error = e }
    expect(WeftError.is(error, 'ENCODE_FAILED')).toBe(true)
    expect((error as Error).message).toMatch(message)
  })
})

const hasNumpy = (() => { try { execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }); return true } catch { return false } })()

test.skipIf(!hasNumpy)('numpy loads the .npy files and reads the safetensors layout to the same values', () => {
  const script = `
import json, struct, sys, numpy as np
d = sys.argv[1]
a = np.load(d + '/f32.npy'); assert a.dtype == np.float32 and a.shape == (2, 3) and a[0, 2] == 3.25, a
i = np.load(d + '/i64.npy'); assert i.dtype == np.int64 and i.tolist() == [[-(2**40)], [50256]], i
s = np.load(d + '/scalar.npy'); assert s.shape == () and s == 42
raw = open(d + '/all.safetensors', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8+n])
lo, hi = h['f64']['data_offsets']; v = np.frombuffer(raw[8+n+lo:8+n+hi], dtype='<f8'); assert v[0] == np.pi, v
print('ok')`
  expect(execFileSync('python3', ['-c', script, dir], { encoding: 'utf8' }).trim()).toBe('ok')
})
