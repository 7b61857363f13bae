/**
 * `weft endorse --key endorser.json --provider ed25519:… --model name[@revision] … [--days 30] [--out file]`: signs
 * an endorsement (spec/provider-record.md, "Endorsements") and writes it as a JSON endorsement file, which
 * providers carry in their record (`weft provider start --endorsement file`) and clients trust through the
 * endorser's public key (`Weft.discover({ trust: { endorsers: [publicKeyHex] } })`).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { UsageError, WeftError, fromHex, keyId, publicKeyOf, toHex, usageErrorFrom } from '@weft/core'
import { createEndorsement, verifyEndorsement, type Endorsement, type EndorsedModel } from '../endorsement.js'

export const ENDORSE_USAGE = `usage: weft endorse --key <endorser key file> --provider <provider id> --model <name>[@<revision>] … [--days 30] [--out file]

Signs an endorsement: the endorser's key vouches that the provider may serve these models (at the revision, when
one is given) until the expiry. Providers carry it in their directory record (weft provider start --endorsement
<file>); clients that trust the endorser's public key use only providers it vouches for.

options:
  --key file          the endorser's weft key file (weft keys new --out endorser.json)
  --provider id       the endorsed provider id (ed25519:…, printed by weft provider start)
  --model name[@rev]  a model, optionally pinned to one revision (repeatable)
  --days N            lifetime in days (default 30, at most 366)
  --out file          where to write the endorsement file (default: stdout)
  -h, --help          this text`

/** An endorsement file: the signed bytes (hex) and, for people, what they say. */
export interface EndorsementFile { endorsement: string; endorser: string; endorserPublicKey: string; provider: string; models: EndorsedModel[]; expiresAt: string }

/** Reads an endorsement file (or a bare hex string) into the signed bytes. */
export function readEndorsementFile (path: string): Uint8Array {
  const text = readFileSync(path, 'utf8').trim()
  const hex = text.startsWith('{') ? (JSON.parse(text) as Partial<EndorsementFile>).endorsement : text
  if (typeof hex !== 'string' || !/^([0-9a-f]{2})+$/i.test(hex)) throw new WeftError('RECORD_INVALID', `${path}: not an endorsement file (no hex \`endorsement\`); create one with \`weft endorse\``)
  return fromHex(hex)
}

const OPTIONS = {
  key: { type: 'string' }, provider: { type: 'string' }, model: { type: 'string', multiple: true }, days: { type: 'string', default: '30' },
  out: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false },
} as const

/** a usage error: `weft` prints one line naming the problem, then the usage, and exits 2 */
function usageError (message: string): never {
  throw new UsageError(message)
}

export const endorseCommand = {
  summary: 'vouch for a provider: `endorse --key k.json --provider ed25519:… --model name[@revision]`',
  usage: ENDORSE_USAGE,
  async run (argv: string[]): Promise<number> {
    let values
    try { values = parseArgs({ args: argv, options: OPTIONS }).values } catch (error) { throw usageErrorFrom(error) ?? error }
    if (values.help) { console.log(ENDORSE_USAGE); return 0 }
    if (values.key === undefined || values.provider === undefined || values.model === undefined) return usageError('--key, --provider and at least one --model are required')
    const days = Number(values.days)
    if (!(days > 0 && days <= 366)) return usageError(`--days must be a number in (0, 366], got '${values.days}'`)
    let secretKey: Uint8Array
    try {
      const file = JSON.parse(readFileSync(values.key, 'utf8')) as { secretKey?: unknown }
      if (typeof file.secretKey !== 'string' || !/^[0-9a-f]{64}$/i.test(file.secretKey)) throw new Error('no 64-hex-digit secretKey')
      secretKey = fromHex(file.secretKey)
    } catch (error) {
      return usageError(`--key ${values.key}: not a weft key file (${(error as Error).message})`)
    }
    const models = values.model.map((spec): EndorsedModel => {
      const at = spec.indexOf('@')
      return at < 0 ? { name: spec } : { name: spec.slice(0, at), revision: spec.slice(at + 1) }
    })
    let bytes: Uint8Array
    let endorsement: Endorsement
    try {
      bytes = createEndorsement({ provider: values.provider, models, secretKey, days })
      endorsement = verifyEndorsement(bytes, { trusted: [publicKeyOf(secretKey)] })
    } catch (error) {
      return usageError((error as Error).message)
    }
    const file: EndorsementFile = {
      endorsement: toHex(bytes), endorser: keyId(publicKeyOf(secretKey)), endorserPublicKey: toHex(publicKeyOf(secretKey)),
      provider: endorsement.provider, models: endorsement.models, expiresAt: new Date(endorsement.expiresAt * 1000).toISOString(),
    }
    const text = JSON.stringify(file, null, 2) + '\n'
    if (values.out === undefined) process.stdout.write(text)
    else { writeFileSync(values.out, text); console.log(`wrote ${values.out}: ${file.endorser} vouches for ${file.provider} (${models.map(m => m.revision === undefined ? m.name : `${m.name}@${m.revision}`).join(', ')}) until ${file.expiresAt}`) }
    return 0
  },
}
