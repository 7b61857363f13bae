/**
 * Progress for long work (hashing a checkpoint, building its graph and weights, writing activations): a bar on a
 * terminal, a percentage line every 10 % otherwise. Silent unless WEFT_PROGRESS=1 (the `weft` command sets it,
 * and engine workers inherit it), so library users and tests see nothing.
 */
export interface Progress {
  /** `done` more units of work finished */
  tick (done: number): void
  /** the work ended (prints the final 100 %) */
  end (): void
}

const SILENT: Progress = { tick () {}, end () {} }

const size = (bytes: number): string => bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(2)} GiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`

export interface ProgressOptions {
  /** units for the counter: 'bytes' shows MiB/GiB */
  unit?: 'bytes' | 'items'
  /** below this total nothing is shown (default: 16 MiB for bytes, 0 for items) */
  minTotal?: number
  stream?: NodeJS.WriteStream
}

export function progress (label: string, total: number, options: ProgressOptions = {}): Progress {
  if (process.env.WEFT_PROGRESS !== '1') return SILENT
  const unit = options.unit ?? 'bytes'
  if (total <= 0 || total < (options.minTotal ?? (unit === 'bytes' ? 16 << 20 : 0))) return SILENT
  const stream = options.stream ?? process.stderr
  const tty = stream.isTTY === true
  const start = Date.now()
  let done = 0
  let shownStep = -1
  let lastDraw = 0
  const counter = (): string => unit === 'bytes' ? `${size(done)} / ${size(total)}` : `${done} / ${total}`
  const draw = (final: boolean): void => {
    const fraction = Math.min(1, done / total)
    const percent = Math.floor(fraction * 100)
    if (tty) {
      const now = Date.now()
      if (!final && now - lastDraw < 100) return
      lastDraw = now
      const width = 24
      const filled = Math.round(fraction * width)
      stream.write(`\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(percent).padStart(3)}% ${counter()}${final ? ` ${((Date.now() - start) / 1000).toFixed(1)} s\n` : ''}`)
      return
    }
    const step = Math.floor(percent / 10)
    if (step === shownStep && !final) return
    if (final && shownStep === 10) return
    shownStep = final ? 10 : step
    stream.write(`${label}: ${final ? 100 : step * 10}% (${counter()})\n`)
  }
  return {
    tick (n: number) { done += n; draw(false) },
    end () { done = total; draw(true) },
  }
}
