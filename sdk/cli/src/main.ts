/**
 * `weft <command>`: dispatch table, help, version and error reporting. Each command lives in the package that
 * owns its work and exports `{ summary, usage, run }`. Usage errors print one line naming the problem, then the
 * command's usage, and exit 2; a WeftError or any other failure prints one line and exits 1 (a stack trace only
 * with WEFT_DEBUG=1).
 */
import { readFileSync } from 'node:fs'
import { WeftError, usageErrorFrom } from '@weft/core'

/** A command: `usage` lists every flag (`weft <command> --help`); without one the summary stands in. */
export type Command = { summary: string; usage?: string; run: (argv: string[]) => Promise<number> }

const WORKBENCH_CLI: string = '@weft/workbench/cli'

export const commands: Record<string, () => Promise<Command>> = {
  cache: async () => (await import('@weft/onnx/cli')).cacheCommand,
  directory: async () => (await import('@weft/federation/cli')).directoryCommand,
  endorse: async () => (await import('@weft/federation/cli')).endorseCommand,
  inspect: async () => (await import('@weft/onnx/cli')).inspectCommand,
  keys: async () => (await import('@weft/host/cli')).keysCommand,
  provider: async () => (await import('@weft/host/cli')).providerCommand,
  // @weft/workbench depends on this package: a specifier TypeScript does not follow keeps the build graph acyclic
  workbench: async () => ((await import(WORKBENCH_CLI)) as { workbenchCommand: Command }).workbenchCommand,
}

/** The version of @weft/cli (the package the `weft` command ships in). */
export function version (): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
}

async function overview (): Promise<string> {
  const lines = await Promise.all(Object.entries(commands).map(async ([key, load]) => `  ${key.padEnd(10)} ${(await load()).summary}`))
  return [
    'usage: weft <command> [options]', '', 'commands:', ...lines, '',
    'options:', '  -h, --help     this text (`weft <command> --help` for a command\'s flags)', '  -v, --version  print the version',
  ].join('\n')
}

const usageOf = (name: string, command: Command): string => command.usage ?? `usage: weft ${name} …  (${command.summary})`

const isHelp = (arg: string): boolean => arg === '--help' || arg === '-h'

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-v') { console.log(`weft ${version()}`); return 0 }
  if (name === undefined || isHelp(name) || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined
    if (topic !== undefined && topic in commands) { console.log(usageOf(topic, await commands[topic]!())); return 0 }
    console.log(await overview()); return 0
  }
  if (!(name in commands)) {
    const what = name.startsWith('-') ? `unknown option ${name}` : `unknown command '${name}'`
    console.error(`weft: ${what}\n${await overview()}`)
    return 2
  }
  const command = await commands[name]!()
  process.env.WEFT_PROGRESS ??= '1' // progress bars (or percentage lines off a terminal) on stderr; WEFT_PROGRESS=0 hides them
  // `--help` anywhere before a `--` asks for the command's usage
  const end = rest.indexOf('--')
  if ((end === -1 ? rest : rest.slice(0, end)).some(isHelp)) { console.log(usageOf(name, command)); return 0 }
  try {
    return await command.run(rest)
  } catch (error) {
    const usage = usageErrorFrom(error)
    if (usage !== null) { console.error(`weft ${name}: ${usage.message}\n${usageOf(name, command)}`); return 2 }
    if (process.env.WEFT_DEBUG === '1') console.error(error)
    if (WeftError.is(error)) { console.error(`weft ${name}: ${error.code}: ${error.message}`); return 1 }
    console.error(`weft ${name}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`)
    return 1
  }
}
