/**
 * Finds the researcher's source line that called into the SDK (the first stack frame outside sdk/src),
 * so recorded nodes carry `program.locations` and recording errors name the line that made them.
 */
import type { SourceLocation } from '@weft/core'
import { fileURLToPath } from 'node:url'
import { dirname, sep } from 'node:path'

const sdkSource = dirname(dirname(fileURLToPath(import.meta.url))) + sep

const framePattern = /\(?((?:file:\/\/)?[^\s()]+?):(\d+):(\d+)\)?$/

/** The caller's location, or null when the stack has no frame outside the SDK (or is unavailable). */
export function callerLocation (): SourceLocation | null {
  const stack = new Error().stack
  if (stack === undefined) return null
  for (const line of stack.split('\n').slice(1)) {
    const match = framePattern.exec(line.trim())
    if (match === null) continue
    let file = match[1]!
    if (file.startsWith('file://')) file = fileURLToPath(file)
    if (file.startsWith(sdkSource) || file.startsWith('node:') || file.includes(`${sep}node_modules${sep}`)) continue
    const lineNumber = Number(match[2])
    return { file: relativeToCwd(file), line: lineNumber, column: Number(match[3]) }
  }
  return null
}

function relativeToCwd (file: string): string {
  const cwd = process.cwd() + sep
  return file.startsWith(cwd) ? file.slice(cwd.length) : file
}

export function formatLocation (location: SourceLocation | null | undefined): string {
  if (location === null || location === undefined || location.file === undefined) return ''
  return ` (at ${location.file}:${location.line ?? '?'}:${location.column ?? '?'})`
}
