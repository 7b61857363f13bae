/** Safetensors dtypes: byte sizes and conversion of F16/BF16 raw bits to float32. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'

export const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
}

export function isSafetensorsDType (value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value)
}

const f16Table = ((): Float32Array => {
  const table = new Float32Array(65536)
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1
    const exponent = (bits >> 10) & 0x1f
    const fraction = bits & 0x3ff
    if (exponent === 0) table[bits] = sign * fraction * 2 ** -24
    else if (exponent === 31) table[bits] = fraction === 0 ? sign * Infinity : NaN
    else table[bits] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
  }
  return table
})()

/** Converts little-endian F16/BF16/F32/F64 bytes to float32 (a new array). */
export function toFloat32 (bytes: Uint8Array, dtype: SafetensorsDType): Float32Array {
  const count = bytes.byteLength / DTYPE_BYTES[dtype]
  const out = new Float32Array(count)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(bytes.slice().buffer)); break
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = f16Table[view.getUint16(2 * i, true)]!
      break
    case 'BF16': {
      const u32 = new Uint32Array(out.buffer)
      for (let i = 0; i < count; i++) u32[i] = view.getUint16(2 * i, true) << 16
      break
    }
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true)
      break
    default:
      throw new Error(`toFloat32: ${dtype} is not a float dtype`)
  }
  return out
}
