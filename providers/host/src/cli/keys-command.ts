/** `weft keys new [--out file]`: writes a fresh Ed25519 key pair (JSON with kid) to an owner-only file or stdout. */
import { parseArgs } from 'node:util'
import { existsSync } from 'node:fs'
import { UsageError, keyFileModeWarning } from '@weft/core'
import { newKeyFile, writeKeyFile } from './key-file.js'

const USAGE = `usage: weft keys new [--out FILE] [--force]
  new              create an Ed25519 key pair (JSON: kid, publicKey, secretKey, createdAt)
  -o, --out FILE   write it to FILE with mode 0600 (default: print it)
  --force          overwrite an existing FILE
  -h, --help       this text`

export const keysCommand = {
  summary: 'manage Ed25519 keys: `keys new [--out file]`',
  usage: USAGE,
  async run (argv: string[]): Promise<number> {
    const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string', short: 'o' }, force: { type: 'boolean' } } })
    if (positionals.length === 0) throw new UsageError('missing the subcommand (new)')
    if (positionals[0] !== 'new') throw new UsageError(`unknown subcommand '${positionals[0]}' (new)`)
    if (positionals.length > 1) throw new UsageError(`unexpected arguments: ${positionals.slice(1).join(' ')}`)
    const key = newKeyFile()
    if (values.out === undefined) { console.log(JSON.stringify(key, null, 2)); return 0 }
    if (existsSync(values.out) && values.force !== true) {
      const warning = keyFileModeWarning(values.out)
      throw new UsageError(`${values.out} exists; pass --force to replace it${warning === null ? '' : ` (${warning.replace(/^warning: /, '')})`}`)
    }
    writeKeyFile(values.out, key)
    console.log(`wrote ${values.out} (mode 0600)\nkid: ${key.kid}\npublic key: ${key.publicKey}`)
    return 0
  },
}
