/** Renders any (possibly hostile, decoded) value for an error message without throwing. */
export function show (value: unknown, max = 60): string {
  let text: string | undefined
  try {
    text = JSON.stringify(value, (_key, v: unknown) => typeof v === 'bigint' ? `${v}n` : ArrayBuffer.isView(v) ? `<${v.byteLength} bytes>` : v)
  } catch {
    text = undefined
  }
  if (text === undefined) text = typeof value === 'object' && value !== null ? Object.prototype.toString.call(value) : typeof value === 'symbol' ? 'symbol' : `${value as string}`
  return text.length > max ? text.slice(0, max - 3) + '...' : text
}
