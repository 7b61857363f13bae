/** IEEE 754 half precision (float16) bit patterns. */

/** The number an IEEE half-precision bit pattern (0..0xffff) stands for: subnormals, ±Infinity and NaN included. */
export function halfToNumber (bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}
