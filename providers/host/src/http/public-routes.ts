/** Public read-only routes: health, version, models, manifests, tokenizers, policy, edits in force, egress left. */
import { Hono } from 'hono'
import { WeftError, encodeCbor, toHex } from '@weft/core'
import { PROTOCOL_VERSIONS, SOFTWARE, type HostContext } from './host-context.js'
import { engineHealthOf } from '../engine/worker-backend.js'

export function publicRoutes (host: HostContext): Hono {
  const app = new Hono()

  app.get('/health', c => {
    // a model whose every engine worker failed to restart (and is being retried) cannot run jobs: 'degraded'
    const unavailable = host.registry.list().flatMap(m => {
      const engines = engineHealthOf(m.handle)
      return engines !== null && engines.unavailable > 0 && engines.unavailable >= engines.workers
        ? [{ model: m.name, reason: engines.reason ?? 'engine down', retryInMs: engines.retryInMs ?? 0 }]
        : []
    })
    return c.json({
      status: unavailable.length === 0 ? 'ok' : 'degraded', provider: host.providerId, uptimeMs: host.now() - host.startedAt,
      queue: host.store.counts(), models: host.registry.list().length, unavailable,
    })
  })

  app.get('/version', c => c.json({
    protocol: [...PROTOCOL_VERSIONS], software: SOFTWARE, programVersion: 1,
    provider: host.providerId, publicKey: toHex(host.publicKey), algorithm: 'EdDSA',
  }))

  app.get('/models', c => c.json({
    models: host.registry.list().map(m => ({
      name: m.name, revision: m.manifest.revision, family: m.manifest.family, backend: m.backend,
      parameters: m.manifest.parameters, manifestDigest: m.manifestDigest, tokenizer: m.tokenizerJson !== null,
      edits: host.registry.editLabels(m.name),
    })),
  }))

  app.get('/models/:name/manifest', c => {
    const model = host.registry.get(c.req.param('name'))
    c.header('ETag', `"${model.manifestDigest}"`)
    if ((c.req.header('accept') ?? '').includes('application/cbor')) {
      return c.body(encodeCbor(model.manifest) as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/cbor' })
    }
    return c.json(model.manifest)
  })

  app.get('/models/:name/tokenizer', c => {
    const model = host.registry.get(c.req.param('name'))
    if (model.tokenizerJson === null) throw new WeftError('MODEL_NOT_FOUND', `model '${model.name}' has no tokenizer.json; send token ids`, { model: model.name })
    return c.body(model.tokenizerJson as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/json' })
  })

  app.get('/models/:name/tokenizer-config', c => {
    const model = host.registry.get(c.req.param('name'))
    return c.body((model.tokenizerConfig ?? new TextEncoder().encode('{}')) as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/json' })
  })

  app.get('/models/:name/edits', c => {
    const model = host.registry.get(c.req.param('name'))
    return c.json({ model: model.name, revision: model.manifest.revision, edits: host.registry.edits(model.name).map(e => ({ id: e.id, name: e.name, digest: e.digest, nodes: e.nodes.length })) })
  })

  app.get('/policy', c => c.json({
    provider: host.providerId,
    policies: host.policySummaries(),
    limits: { ...host.limits },
  }))

  app.get('/keys/:kid/egress', c => {
    const kid = c.req.param('kid')
    if (host.store.getKey(kid) === undefined) throw new WeftError('KEY_UNKNOWN', `key ${kid} is not registered with this provider`, { kid })
    const now = host.now()
    return c.json({ kid, usedToday: host.store.egressToday(now, kid), reservedBytes: host.store.reservedEgress(kid), remainingToday: host.remainingEgress(kid) })
  })

  return app
}
