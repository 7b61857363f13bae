/** Small formatting helpers for the page. */
export function bytes (n: number | null | undefined): string {
  if (n === null || n === undefined) return 'unlimited'
  if (!Number.isFinite(n)) return String(n)
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let value = n; let unit = 0
  while (Math.abs(value) >= 1000 && unit < units.length - 1) { value /= 1000; unit++ }
  return `${unit === 0 ? value : value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit]}`
}

export const token = (t: string): string => t.replace(/ /g, '␣').replace(/\n/g, '⏎')

export function short (id: string, n = 14): string {
  return id.length <= n + 8 ? id : `${id.slice(0, n)}…${id.slice(-4)}`
}
