/** A dependency-free SVG heatmap (rows × columns of values in [0, 1] with optional cell labels), for the examples' pictures. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Heatmap {
  title: string
  rowLabels: string[]
  columnLabels: string[]
  /** values[row][column], scaled into colour by [min, max] */
  values: number[][]
  /** optional text drawn in each cell */
  cellText?: string[][]
  min?: number
  max?: number
  /** legend caption, e.g. 'p( Paris)' */
  legend?: string
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** White → deep blue. */
function colour (t: number): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0))
  const mix = (from: number, to: number): number => Math.round(from + (to - from) * clamped)
  return `rgb(${mix(247, 8)},${mix(251, 48)},${mix(255, 107)})`
}

export function heatmapSvg (map: Heatmap): string {
  const cell = { w: 86, h: 30 }
  const left = 10 + 8 * Math.max(...map.rowLabels.map((l) => l.length), 4)
  const top = 70
  const flat = map.values.flat()
  const min = map.min ?? Math.min(...flat)
  const max = map.max ?? Math.max(...flat)
  const width = left + cell.w * map.columnLabels.length + 20
  const height = top + cell.h * map.rowLabels.length + 40
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escape(map.title)}</text>`,
  ]
  map.columnLabels.forEach((label, c) => {
    parts.push(`<text x="${left + c * cell.w + cell.w / 2}" y="${top - 8}" text-anchor="middle">${escape(label)}</text>`)
  })
  map.rowLabels.forEach((label, r) => {
    const y = top + r * cell.h
    parts.push(`<text x="${left - 6}" y="${y + cell.h / 2 + 4}" text-anchor="end">${escape(label)}</text>`)
    map.columnLabels.forEach((_, c) => {
      const value = map.values[r]![c]!
      const t = max === min ? 0 : (value - min) / (max - min)
      parts.push(`<rect x="${left + c * cell.w}" y="${y}" width="${cell.w - 1}" height="${cell.h - 1}" fill="${colour(t)}"><title>${escape(`${label} / ${map.columnLabels[c]}: ${value.toPrecision(4)}`)}</title></rect>`)
      const text = map.cellText?.[r]?.[c]
      if (text !== undefined) {
        parts.push(`<text x="${left + c * cell.w + cell.w / 2}" y="${y + cell.h / 2 + 4}" text-anchor="middle" fill="${t > 0.55 ? 'white' : 'black'}">${escape(text)}</text>`)
      }
    })
  })
  const legendY = top + cell.h * map.rowLabels.length + 24
  parts.push(`<text x="${left}" y="${legendY}">${escape(`${map.legend ?? 'value'}: white = ${min.toPrecision(3)}, blue = ${max.toPrecision(3)}`)}</text>`, '</svg>')
  return parts.join('\n')
}

/** Writes `svg` to `examples/out/<name>` and returns the absolute path. */
export function writeOut (name: string, svg: string): string {
  const file = resolve(dirname(fileURLToPath(import.meta.url)), '../out', name)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, svg)
  return file
}
