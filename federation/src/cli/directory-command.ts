/**
 * `weft directory start [--port N] [--host addr] [--identity key.json] [--bootstrap <multiaddr>]…`: a standalone
 * directory node (a bootstrap peer for providers and clients). Prints its peer id and multiaddrs, then one line per
 * record change, until SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { UsageError, fromHex, usageErrorFrom } from '@weft/core'

export const DIRECTORY_USAGE = `usage: weft directory start [--port N] [--host 127.0.0.1] [--identity <key file>] [--bootstrap <multiaddr> …]

Runs a libp2p directory node: it keeps the signed provider records (gossip topic weft/providers/1), hands the
record set to every peer that joins (/weft/directory/1) and forgets expired records. Providers announce through
it (\`weft provider start --directory <multiaddr>\`) and clients discover through it
(\`Weft.discover({ bootstrap: [<multiaddr>] })\`).

options:
  --port N            TCP port to listen on (default 4001; 0 = any free port)
  --host addr         IPv4 address to listen on (default 127.0.0.1; 0.0.0.0 to serve other machines)
  --identity file     a weft key file (\`weft keys new --out dir.json\`): a stable peer id, so the multiaddr
                      stays the same across restarts (default: a fresh identity each start)
  --bootstrap addr    another directory node to join (repeatable), e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW…
  --quiet             do not log record changes
  -h, --help          this text`

const OPTIONS = {
  port: { type: 'string', default: '4001' }, host: { type: 'string', default: '127.0.0.1' }, identity: { type: 'string' },
  bootstrap: { type: 'string', multiple: true }, quiet: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
} as const

/** a usage error: `weft` prints one line naming the problem, then the usage, and exits 2 */
function usageError (message: string): never {
  throw new UsageError(message)
}

export const directoryCommand = {
  summary: 'run a directory (bootstrap) node: `directory start [--port N] [--bootstrap <multiaddr>]…`',
  usage: DIRECTORY_USAGE,
  async run (argv: string[]): Promise<number> {
    let parsed
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS })
    } catch (error) {
      throw usageErrorFrom(error) ?? error
    }
    const { positionals, values } = parsed
    if (values.help) { console.log(DIRECTORY_USAGE); return 0 }
    if (positionals[0] !== 'start' || positionals.length > 1) return usageError(positionals.length === 0 ? 'expected `start`' : `unexpected '${positionals.join(' ')}'`)
    const port = Number(values.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) return usageError(`--port must be an integer 0–65535, got '${values.port}'`)
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(values.host)) return usageError(`--host must be an IPv4 address, got '${values.host}'`)
    let seed: Uint8Array | undefined
    if (values.identity !== undefined) {
      try {
        const file = JSON.parse(readFileSync(values.identity, 'utf8')) as { secretKey?: unknown }
        if (typeof file.secretKey !== 'string' || !/^[0-9a-f]{64}$/i.test(file.secretKey)) throw new Error('no 64-hex-digit secretKey')
        seed = fromHex(file.secretKey)
      } catch (error) {
        return usageError(`--identity ${values.identity}: not a weft key file (${(error as Error).message}); create one with \`weft keys new --out ${values.identity}\``)
      }
    }
    const { createDirectoryNode } = await import('../index.js') // libp2p loads only when a node starts
    let node
    try {
      node = await createDirectoryNode({ listen: [`/ip4/${values.host}/tcp/${port}`], seed, bootstrap: values.bootstrap ?? [] })
    } catch (error) {
      console.error(`weft directory: cannot start on ${values.host}:${port}: ${(error as Error).message}`)
      return 1
    }
    console.log(`weft directory node ${node.peerId}`)
    for (const address of node.multiaddrs) console.log(`listening on ${address}`)
    if (!values.quiet) {
      node.onChange(change => {
        const { record } = change.record
        console.log(`${change.type} ${record.provider} ${record.endpoint} models=${record.models.map(m => m.name).join(',')} seq=${record.seq}`)
      })
    }
    await new Promise<void>(resolve => {
      const stop = (): void => { void node.stop().finally(resolve) }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    return 0
  },
}
