/**
 * A key's kept adapters (spec/provider-protocol.md §3.7): list, metadata, delete, and — when the policies let
 * values leave — download. Every route is signed by the owning key (`Weft-Key`); another key's adapter is
 * answered exactly like a missing one (404 ADAPTER_NOT_FOUND), so names do not leak between keys.
 */
import { Hono, type Context } from 'hono'
import { WeftError, NAME_PATTERN, encodeCbor } from '@weft/core'
import type { HostContext } from './host-context.js'
import { keyOf } from './operator-auth.js'
import { adapterInfo } from '../adapters/adapters.js'

export function adapterRoutes (host: HostContext): Hono {
  const app = new Hono()
  const nameOf = (c: Context): string => {
    const name = c.req.param('name') ?? ''
    if (!NAME_PATTERN.test(name)) throw new WeftError('ADAPTER_NOT_FOUND', `no adapter '${name}': adapter names are 1-64 characters of [A-Za-z0-9._-]`, { adapter: name })
    return name
  }

  app.get('/adapters', async c => {
    const kid = await keyOf(host, c)
    return c.json({ kid, adapters: host.adapters.list(kid) })
  })

  app.get('/adapters/:name', async c => {
    const kid = await keyOf(host, c)
    return c.json(adapterInfo(host.adapters.get(kid, nameOf(c))))
  })

  app.delete('/adapters/:name', async c => {
    const kid = await keyOf(host, c)
    const name = nameOf(c)
    const row = host.adapters.delete(kid, name)
    host.store.log({ at: host.now(), actor: kid, action: 'adapter-deleted', model: row.model, revision: row.revision, detail: JSON.stringify({ adapter: name, id: row.id }) })
    return c.json({ name, id: row.id, deleted: true })
  })

  app.get('/adapters/:name/values', async c => {
    const kid = await keyOf(host, c)
    const name = nameOf(c)
    const { bytes, egressBytes, digest } = await host.downloadAdapter(kid, name)
    const body = encodeCbor({ adapter: name, digest, values: bytes, egress: { bytes: egressBytes, remainingToday: host.remainingEgress(kid) } })
    return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/cbor' })
  })

  return app
}
