/**
 * Operator routes (signed with an operator key): register and revoke keys, attach and remove provider-wide edits,
 * swap a model's revision, read the audit log. Key self-registration with proof of possession when enabled.
 */
import { Hono, type Context } from 'hono'
import { createHash, randomBytes } from 'node:crypto'
import { WeftError, decodeCbor, encodeCbor, fromHex, keyId, verifyBytes, validateProgram, type Program } from '@weft/core'
import type { HostContext } from './host-context.js'
import { checkOperator, OPERATOR_HEADER } from './operator-auth.js'
import { applyEdits, checkFragment } from '../models/edits.js'

async function bodyOf (c: Context): Promise<Uint8Array> { return new Uint8Array(await c.req.arrayBuffer()) }

function parseBody (c: Context, bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length === 0) return {}
  const type = c.req.header('content-type') ?? ''
  try {
    const value = type.includes('application/cbor') ? decodeCbor(bytes) : JSON.parse(new TextDecoder().decode(bytes)) as unknown
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object')
    return value as Record<string, unknown>
  } catch (error) {
    if (WeftError.is(error)) throw error
    throw new WeftError('DECODE_FAILED', `request body must be a JSON (or CBOR) object: ${(error as Error).message}`)
  }
}

function proofVerifies (proofHex: string, message: Uint8Array, publicKey: Uint8Array): boolean {
  try { return verifyBytes(fromHex(proofHex), message, publicKey) } catch { return false }
}

/** The message a key signs to register itself (proof of possession, bound to this provider). */
export function registrationMessage (providerId: string, publicKeyHex: string): Uint8Array {
  return new TextEncoder().encode(`weft-register-v1\n${providerId}\n${publicKeyHex.toLowerCase()}`)
}

export function operatorRoutes (host: HostContext): Hono {
  const app = new Hono()
  const operator = async (c: Context): Promise<{ kid: string; bytes: Uint8Array }> => {
    const bytes = await bodyOf(c)
    return { kid: checkOperator(host, c.req.header(OPERATOR_HEADER), c.req.method, c.req.path, bytes), bytes }
  }

  app.post('/keys', async c => {
    const bytes = await bodyOf(c)
    const body = parseBody(c, bytes)
    const publicKeyHex = body.publicKey
    let publicKey: Uint8Array
    try {
      if (typeof publicKeyHex !== 'string') throw new Error('not a string')
      publicKey = fromHex(publicKeyHex)
      if (publicKey.length !== 32) throw new Error('not 32 bytes')
    } catch { throw new WeftError('DECODE_FAILED', 'publicKey must be the 32-byte Ed25519 public key as hex', { field: 'publicKey' }) }
    const kid = keyId(publicKey)
    let actor: string
    let role = body.role === 'operator' ? 'operator' as const : 'researcher' as const
    if (c.req.header(OPERATOR_HEADER) !== undefined) {
      actor = checkOperator(host, c.req.header(OPERATOR_HEADER), c.req.method, c.req.path, bytes)
    } else {
      if (!host.selfRegistration) throw new WeftError('SIGNATURE_INVALID', 'this provider registers keys only on an operator-signed request', { header: OPERATOR_HEADER })
      if (typeof body.proof !== 'string' || !proofVerifies(body.proof, registrationMessage(host.providerId, publicKeyHex), publicKey)) {
        throw new WeftError('SIGNATURE_INVALID', 'self-registration needs `proof`: the key\'s signature over the registration message for this provider')
      }
      actor = kid
      role = 'researcher'
    }
    const now = host.now()
    host.store.addKey({ kid, publicKey, role, label: typeof body.label === 'string' ? body.label : null, now })
    host.store.log({ at: now, actor, action: 'key-added', detail: JSON.stringify({ kid, role }) })
    return c.json({ kid, role }, 201)
  })

  app.get('/keys', async c => {
    await operator(c)
    return c.json({ keys: host.store.listKeys().map(k => ({ kid: k.kid, role: k.role, label: k.label, createdAt: k.createdAt, revokedAt: k.revokedAt, revokedReason: k.revokedReason })) })
  })

  app.delete('/keys/:kid', async c => {
    const { kid: actor, bytes } = await operator(c)
    const kid = c.req.param('kid')
    if (host.store.getKey(kid) === undefined) throw new WeftError('KEY_UNKNOWN', `no key ${kid} on this provider`, { kid })
    const given = parseBody(c, bytes).reason
    if (given !== undefined && typeof given !== 'string') throw new WeftError('DECODE_FAILED', 'reason must be a string', { field: 'reason' })
    const reason = given ?? 'revoked by the operator'
    const now = host.now()
    const revoked = host.store.revokeKey(kid, reason, now)
    host.store.log({ at: now, actor, action: 'key-revoked', detail: JSON.stringify({ kid, reason }) })
    return c.json({ kid, revoked })
  })

  app.post('/models/:name/edits', async c => {
    const { kid: actor, bytes } = await operator(c)
    const model = host.registry.get(c.req.param('name'))
    const body = parseBody(c, bytes)
    const name = typeof body.name === 'string' && body.name.length > 0 ? body.name : 'edit'
    const nodes = checkFragment(body.nodes)
    checkEditAgainstManifest(host, model.name, nodes)
    const fragment = encodeCbor(nodes)
    const digest = `sha256:${createHash('sha256').update(fragment).digest('hex')}`
    const id = `edit_${randomBytes(8).toString('hex')}`
    const now = host.now()
    host.store.addEdit({ id, model: model.name, name, fragment, digest, now })
    host.store.log({ at: now, actor, action: 'edit-added', model: model.name, revision: model.manifest.revision, detail: JSON.stringify({ id, name, digest }) })
    return c.json({ id, name, digest, model: model.name }, 201)
  })

  app.delete('/models/:name/edits/:id', async c => {
    const { kid: actor } = await operator(c)
    const model = host.registry.get(c.req.param('name'))
    const id = c.req.param('id')
    const now = host.now()
    const removed = host.store.removeEdit(model.name, id, now)
    if (!removed) throw new WeftError('JOB_NOT_FOUND', `no active edit ${id} on model '${model.name}'`, { id })
    host.store.log({ at: now, actor, action: 'edit-removed', model: model.name, detail: JSON.stringify({ id }) })
    return c.json({ id, removed })
  })

  app.put('/models/:name/revision', async c => {
    const { kid: actor, bytes } = await operator(c)
    const previous = host.registry.get(c.req.param('name'))
    const path = parseBody(c, bytes).path
    if (typeof path !== 'string' || path.length === 0) throw new WeftError('DECODE_FAILED', 'body must be {"path": "<checkpoint folder or .onnx file>"}')
    const now = host.now()
    let next
    try {
      next = await host.registry.swap(previous.name, path, now)
    } catch (error) {
      // the operator sent a path this host cannot load: a 4xx naming the cause, never the host's file system paths
      // (the full error, paths included, goes to the provider's log)
      console.error(`[weft host] revision swap of '${previous.name}' failed`, error)
      const code = WeftError.is(error) ? error.code : 'INTERNAL'
      throw new WeftError('MODEL_LOAD_FAILED', `the new revision of '${previous.name}' could not be loaded (${code === 'MODEL_LOAD_FAILED' || code === 'INTERNAL' ? 'not a loadable checkpoint folder or .onnx file' : code}); '${previous.name}' stays served at its previous revision; the provider log has the details`, { model: previous.name, cause: code })
    }
    host.store.log({ at: now, actor, action: 'revision-swapped', model: next.name, revision: next.manifest.revision, detail: JSON.stringify({ previous: previous.manifest.revision, path }) })
    return c.json({ model: next.name, revision: next.manifest.revision, previous: previous.manifest.revision })
  })

  app.get('/audit', async c => {
    await operator(c)
    const limit = Math.min(1000, Number(c.req.query('limit') ?? 100) || 100)
    return c.json({ entries: host.store.auditLog(limit) })
  })

  return app
}

/** An edit must type-check on the model: instantiate it on a short probe Program and validate that. */
function checkEditAgainstManifest (host: HostContext, modelName: string, nodes: ReturnType<typeof checkFragment>): void {
  const model = host.registry.get(modelName)
  const probe: Program = { version: 1, model: { name: model.name, revision: null }, mode: 'trace', invokes: [{ ids: [0, 1, 2, 3, 4, 5, 6, 7] }], nodes: [['read', { site: model.manifest.modules.find(m => m.output !== undefined)!.path, port: 'output', invoke: 0 }, []], ['save', { name: 'probe' }, [0]]] }
  const issues = validateProgram(applyEdits(probe, [{ id: 'probe', name: 'probe', digest: '', nodes }]), model.manifest)
  if (issues.length > 0) throw new WeftError('PROGRAM_INVALID', `the edit does not type-check on '${model.name}': ${issues[0]!.message}`, { issues })
}
