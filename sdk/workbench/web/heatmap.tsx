/**
 * A heatmap as an HTML table: real row and column headers (screen readers announce them), each cell's value in its
 * text and its colour from the value. Cells carry data-row / data-col so a test (or a user's script) can read them.
 */
import type { ComponentChildren } from 'preact'

export interface HeatmapProps {
  caption: string
  rows: string[]
  columns: string[]
  /** values[row][column] */
  values: number[][]
  /** the text of a cell (defaults to the value with 2 decimals) */
  cellText?: (row: number, column: number) => ComponentChildren
  /** extra description of a cell for its title and aria-label */
  cellLabel?: (row: number, column: number) => string
  min?: number
  max?: number
  /** 'sequential' (0 → max, white → blue) or 'diverging' (negative red, positive blue) */
  scale?: 'sequential' | 'diverging'
  testId?: string
}

function colour (value: number, min: number, max: number, scale: 'sequential' | 'diverging'): string {
  if (!Number.isFinite(value)) return 'hsl(0 0% 85%)'
  if (scale === 'diverging') {
    const bound = Math.max(Math.abs(min), Math.abs(max), 1e-9)
    const t = Math.max(-1, Math.min(1, value / bound))
    return t >= 0 ? `hsl(215 80% ${100 - 52 * t}%)` : `hsl(5 80% ${100 + 45 * t}%)`
  }
  const t = Math.max(0, Math.min(1, (value - min) / (max - min || 1)))
  return `hsl(215 80% ${100 - 55 * t}%)`
}

/** Light text on dark cells, dark text on light ones. */
const ink = (value: number, min: number, max: number, scale: 'sequential' | 'diverging'): string => {
  const t = scale === 'diverging' ? Math.abs(value) / Math.max(Math.abs(min), Math.abs(max), 1e-9) : (value - min) / (max - min || 1)
  return t > 0.6 ? '#fff' : '#111'
}

export function Heatmap (props: HeatmapProps) {
  const flat = props.values.flat().filter(Number.isFinite)
  const min = props.min ?? Math.min(0, ...flat)
  const max = props.max ?? Math.max(...flat, 1e-9)
  const scale = props.scale ?? 'sequential'
  return (
    <div class="heatmap-scroll" tabIndex={0} role="region" aria-label={props.caption}>
      <p class="heatmap-title" aria-hidden="true">{props.caption}</p>
      <table class="heatmap" data-testid={props.testId}>
        <caption class="sr-only">{props.caption}</caption>
        <thead>
          <tr><td class="corner" />{props.columns.map((c, j) => <th scope="col" key={j} data-col={j}>{c}</th>)}</tr>
        </thead>
        <tbody>
          {props.values.map((row, i) => (
            <tr key={i}>
              <th scope="row" data-row={i}>{props.rows[i]}</th>
              {row.map((value, j) => {
                const label = props.cellLabel?.(i, j) ?? `${props.rows[i]}, ${props.columns[j]}: ${value.toFixed(3)}`
                return (
                  <td key={j} data-row={i} data-col={j} data-value={value} title={label} aria-label={label}
                    style={{ background: colour(value, min, max, scale), color: ink(value, min, max, scale) }}>
                    {props.cellText?.(i, j) ?? (Number.isFinite(value) ? value.toFixed(2) : '–')}
                  </td>
                )
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
