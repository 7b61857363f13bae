/**
 * Runs a standalone directory (bootstrap) node on 127.0.0.1 and prints its multiaddr; logs record changes.
 * Usage: npx tsx federation/scripts/directory-node.ts [--port 4001] [--seed <64 hex>] [--bootstrap <multiaddr> …]
 */
import { parseArgs } from 'node:util'
import { fromHex } from '@weft/core'
import { createDirectoryNode } from '../src/index.js'

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, seed: { type: 'string' }, bootstrap: { type: 'string', multiple: true } },
})
const node = await createDirectoryNode({
  listen: [`/ip4/127.0.0.1/tcp/${Number(values.port)}`],
  seed: values.seed === undefined ? undefined : fromHex(values.seed),
  bootstrap: values.bootstrap ?? [],
})
console.log(`weft directory node ${node.peerId}`)
for (const address of node.multiaddrs) console.log(`listening on ${address}`)
node.onChange(change => {
  const { record } = change.record
  console.log(`${change.type} ${record.provider} ${record.endpoint} models=${record.models.map(m => m.name).join(',')} seq=${record.seq}`)
})
const stop = (): void => { void node.stop().then(() => process.exit(0)) }
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
