/**
 * Command-line usage errors shared by every `weft` command: one line naming the problem, then the command's usage,
 * exit code 2. node:util `parseArgs` errors (unknown option, missing value) are translated to the same form.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

const OPTION = /'(-{1,2}[^' ]+)/
const LONG = /'(?:-[^-][^,]*, )?(--[^' <]+)/

/** A UsageError for a parseArgs error (ERR_PARSE_ARGS_*), or null for any other error. */
export function usageErrorFrom (error: unknown): UsageError | null {
  if (error instanceof UsageError) return error
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) return null
  const message = (error as Error).message
  const option = LONG.exec(message)?.[1] ?? OPTION.exec(message)?.[1]
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${option ?? message}`)
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    return new UsageError(/argument missing/.test(message) ? `${option ?? 'an option'} needs a value` : `${option ?? 'an option'} takes no value`)
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return new UsageError(`unexpected argument ${OPTION.exec(message)?.[1] ?? ''}`.trim())
  return new UsageError(message.split('\n')[0]!)
}

/** Parses a non-negative integer flag value, or throws a UsageError naming the flag. */
export function intFlag (name: string, value: string | undefined, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`missing --${name}`)
    return fallback
  }
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer, not '${value}'`)
  return Number(value)
}
