/** `weft keys new [--out file]`: writes a fresh Ed25519 key pair (JSON with kid) to a file or stdout. */
import { parseArgs } from 'node:util'
import { newKeyFile, writeKeyFile } from './key-file.js'

export const keysCommand = {
  summary: 'manage Ed25519 keys: `keys new [--out file]`',
  async run (argv: string[]): Promise<number> {
    const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string', short: 'o' } } })
    if (positionals[0] !== 'new') {
      console.error('usage: weft keys new [--out file]')
      return 2
    }
    const key = newKeyFile()
    if (values.out === undefined) { console.log(JSON.stringify(key, null, 2)); return 0 }
    writeKeyFile(values.out, key)
    console.log(`wrote ${values.out}\nkid: ${key.kid}\npublic key: ${key.publicKey}`)
    return 0
  },
}
