/** `weft <command>`: dispatch table. Each command lives in the package that owns its work. */
type Command = { summary: string; run: (argv: string[]) => Promise<number> }

const commands: Record<string, () => Promise<Command>> = {
  cache: async () => (await import('@weft/onnx/cli')).cacheCommand,
  directory: async () => (await import('@weft/federation/cli')).directoryCommand,
  endorse: async () => (await import('@weft/federation/cli')).endorseCommand,
  inspect: async () => (await import('@weft/onnx/cli')).inspectCommand,
  keys: async () => (await import('@weft/host/cli')).keysCommand,
  provider: async () => (await import('@weft/host/cli')).providerCommand,
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || !(name in commands)) {
    const lines = await Promise.all(Object.entries(commands).map(async ([key, load]) => `  ${key.padEnd(10)} ${(await load()).summary}`))
    const out = [`usage: weft <command> [options]`, '', 'commands:', ...lines].join('\n')
    if (name !== undefined && name !== '--help' && name !== '-h') { console.error(`weft: unknown command '${name}'\n\n${out}`); return 2 }
    console.log(out); return 0
  }
  return (await commands[name]!()).run(rest)
}
