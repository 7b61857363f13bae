/** Minimal argv parsing for the engine's CLI commands: positionals plus `--flag value` / `--switch`. */
import { UsageError } from '@weft/core'
export { UsageError }

export interface ParsedArgs { positional: string[]; flags: Map<string, string | true> }

export function parseArgs (argv: string[], valued: string[], switches: string[]): ParsedArgs {
  const positional: string[] = []
  const flags = new Map<string, string | true>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('--')) { positional.push(arg); continue }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    if (switches.includes(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`)
      flags.set(name, true); continue
    }
    if (!valued.includes(name)) throw new UsageError(`unknown option --${name}`)
    const value = inline ?? argv[++i]
    if (value === undefined) throw new UsageError(`--${name} needs a value`)
    flags.set(name, value)
  }
  return { positional, flags }
}
