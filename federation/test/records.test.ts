// Provider records and the record set: signing, every verification rule, seq ordering, expiry by clock, withdrawals.
import { describe, expect, test } from 'vitest'
import { keyId, keyPairFromSeed, signEnvelope, WeftError } from '@weft/core'
import { identityFromSeed, peerIdOfPublicKey, publicKeyOfPeerId } from '../src/identity.js'
import { buildProviderRecord, signProviderRecord, verifyProviderRecord, PROVIDER_RECORD_CONTENT_TYPE, type ProviderRecord, type RecordInput } from '../src/provider-record.js'
import { RecordSet, type DirectoryChange } from '../src/directory.js'
import { recordProblems } from '../src/record-shape.js'
import { summarizePolicies } from '../src/announce.js'
import { fakeClock, modelInput, seed, T0 } from './fabric.js'

const secondsOf = (ms: number): number => Math.floor(ms / 1000)

async function signed (n: number, input: RecordInput = modelInput(8000 + n), at: { now?: number; seq?: number; lifetimeSeconds?: number } = {}): Promise<{ bytes: Uint8Array; record: ProviderRecord; secretKey: Uint8Array }> {
  const identity = await identityFromSeed(seed(n))
  const record = buildProviderRecord(identity, input, { now: at.now ?? secondsOf(T0), lifetimeSeconds: at.lifetimeSeconds ?? 120, seq: at.seq ?? 1 })
  return { bytes: signProviderRecord(record, identity.secretKey), record, secretKey: identity.secretKey }
}

const code = (fn: () => unknown): string | undefined => {
  try { fn(); return undefined } catch (error) { return WeftError.is(error) ? error.code : `not a WeftError: ${String(error)}` }
}

describe('identity', () => {
  test('one seed gives the Weft key id and a peer id embedding the same public key', async () => {
    const identity = await identityFromSeed(seed(1))
    expect(identity.provider).toBe(keyId(keyPairFromSeed(seed(1)).publicKey))
    expect(identity.peer).toMatch(/^12D3KooW/)
    expect(publicKeyOfPeerId(identity.peer)).toEqual(identity.publicKey)
    expect(identity.privateKey.publicKey.raw).toEqual(identity.publicKey)
    expect(peerIdOfPublicKey(identity.publicKey)).toBe(identity.peer)
    expect(publicKeyOfPeerId('not-a-peer-id')).toBeNull()
  })
})

describe('verifyProviderRecord', () => {
  test('a signed record verifies and round-trips', async () => {
    const { bytes, record } = await signed(1)
    const verified = verifyProviderRecord(bytes, { now: secondsOf(T0) + 5, publisher: record.peer })
    expect(verified.record).toEqual(record)
    expect(verified.publicKey).toEqual(keyPairFromSeed(seed(1)).publicKey)
  })

  test('the peer id must embed the signing key, and provider must be its key id', async () => {
    const victim = await identityFromSeed(seed(2))
    const impostor = keyPairFromSeed(seed(3))
    const base = (await signed(3)).record
    const forge = (over: Partial<ProviderRecord>): Uint8Array => signEnvelope({ payload: { ...base, ...over } as never, secretKey: impostor.secretKey, kid: keyId(impostor.publicKey), contentType: PROVIDER_RECORD_CONTENT_TYPE })
    const now = secondsOf(T0)
    expect(code(() => verifyProviderRecord(forge({ peer: victim.peer }), { now }))).toBe('RECORD_INVALID')
    expect(code(() => verifyProviderRecord(forge({ provider: victim.provider }), { now }))).toBe('RECORD_INVALID')
    expect(code(() => verifyProviderRecord(forge({ peer: victim.peer, provider: victim.provider }), { now }))).toBe('RECORD_INVALID')
    expect(code(() => verifyProviderRecord(forge({}), { now }))).toBeUndefined()
  })

  test('publisher, expiry, issue time and seq', async () => {
    const { bytes, record } = await signed(4)
    const now = secondsOf(T0)
    expect(code(() => verifyProviderRecord(bytes, { now, publisher: peerIdOfPublicKey(keyPairFromSeed(seed(5)).publicKey) }))).toBe('RECORD_INVALID')
    expect(code(() => verifyProviderRecord(bytes, { now: record.expiresAt + 60 }))).toBeUndefined()
    expect(code(() => verifyProviderRecord(bytes, { now: record.expiresAt + 61 }))).toBe('RECORD_EXPIRED')
    expect(code(() => verifyProviderRecord(bytes, { now: record.expiresAt + 1, skewSeconds: 0 }))).toBe('RECORD_EXPIRED')
    expect(code(() => verifyProviderRecord(bytes, { now: now - 61 }))).toBe('RECORD_INVALID')
    expect(code(() => verifyProviderRecord(bytes, { now, previousSeq: record.seq }))).toBe('RECORD_STALE')
    expect(code(() => verifyProviderRecord(bytes, { now, previousSeq: record.seq - 1 }))).toBeUndefined()
  })

  test('garbage, oversized and tampered bytes are typed errors', async () => {
    const { bytes } = await signed(6)
    const now = secondsOf(T0)
    expect(code(() => verifyProviderRecord(new Uint8Array([1, 2, 3]), { now }))).toBe('DECODE_FAILED')
    expect(code(() => verifyProviderRecord(new Uint8Array(17_000), { now }))).toBe('RECORD_INVALID')
    const tampered = bytes.slice()
    tampered[tampered.length - 70] ^= 1 // inside the payload's last field
    expect(['SIGNATURE_INVALID', 'DECODE_FAILED']).toContain(code(() => verifyProviderRecord(tampered, { now })))
  })

  test('shape rules report every problem', () => {
    const problems = recordProblems({ v: 2, provider: 'x', peer: '', endpoint: 'ftp://a', status: 'maybe', models: [{ name: 'a' }, { name: 'a', revision: 'r', manifestDigest: 'd', family: 'f' }], policy: {}, capacity: { queueDepth: -1, maxBatch: 0 }, seq: 1.5, issuedAt: 10, expiresAt: 5 })
    expect(problems.length).toBeGreaterThanOrEqual(10)
    expect(problems.join('\n')).toMatch(/listed twice/)
  })

  test('several nodes: endpoints lists them once each, endpoint first; absent for one node', async () => {
    const input = modelInput(8100)
    const nodes = ['http://127.0.0.1:8101', input.endpoint, 'https://b.example.org/weft', 'http://127.0.0.1:8101']
    const { bytes, record } = await signed(4, { ...input, endpoints: nodes })
    expect(record.endpoints).toEqual([input.endpoint, 'http://127.0.0.1:8101', 'https://b.example.org/weft'])
    expect(verifyProviderRecord(bytes, { now: secondsOf(T0) }).record.endpoints).toEqual(record.endpoints)
    expect((await signed(4, { ...input, endpoints: [input.endpoint] })).record.endpoints).toBeUndefined()
    expect(recordProblems({ ...record, endpoints: [] })).toEqual(['`endpoints` must be an array of 1 to 16 base URLs'])
    expect(recordProblems({ ...record, endpoints: ['http://127.0.0.1:1/', 'ws://x', 'http://a/?q=1'] })).toEqual([
      'endpoints[1] must be http(s), got ws:', 'endpoints[2] must be a base URL without credentials, query or fragment',
      '`endpoints[0]` must equal `endpoint` (the preferred node, what verifiers of `endpoint` alone use)',
    ])
  })

  test('signing refuses malformed records', async () => {
    const { record, secretKey } = await signed(7)
    expect(code(() => signProviderRecord({ ...record, endpoint: 'javascript:alert(1)' }, secretKey))).toBe('RECORD_INVALID')
    const many = Array.from({ length: 200 }, (_, i) => ({ name: `model-${i}-${'x'.repeat(60)}`, revision: 'r'.repeat(70), manifestDigest: 'd', family: 'f' }))
    expect(code(() => signProviderRecord({ ...record, models: many }, secretKey))).toBe('RECORD_INVALID')
  })
})

describe('RecordSet', () => {
  test('offerMany takes a whole batch in before any listener hears of it (issue #9 item 8)', async () => {
    const set = new RecordSet({ clock: fakeClock().now })
    const seenSizes: number[] = []
    set.onChange(() => seenSizes.push(set.find('demo-gpt2').length))
    const batch = await Promise.all([31, 32, 33].map(n => signed(n)))
    const garbage = new Uint8Array([1, 2, 3])
    const results = set.offerMany([...batch.map(b => b.bytes), garbage, batch[0]!.bytes])
    expect(results.filter(r => r.accepted)).toHaveLength(3)
    expect(results.filter(r => !r.accepted)).toHaveLength(1) // the copy already held is skipped, the garbage refused
    expect(seenSizes).toEqual([3, 3, 3]) // every change is reported, each listener call sees all three
  })

  test('keeps the newest record per provider and reports changes', async () => {
    const clock = fakeClock()
    const set = new RecordSet({ clock: clock.now })
    const changes: DirectoryChange['type'][] = []
    set.onChange(change => changes.push(change.type))
    const first = await signed(10, modelInput(9000), { seq: 5 })
    const second = await signed(10, modelInput(9000, { queueDepth: 3 }), { seq: 6 })
    expect(set.offer(first.bytes).accepted).toBe(true)
    expect(set.holds(first.bytes)).toBe(true)
    expect(set.offer(second.bytes).accepted).toBe(true)
    const replay = set.offer(first.bytes)
    expect(replay.accepted === false && replay.error.code).toBe('RECORD_STALE')
    expect(set.get(first.record.provider)?.record.seq).toBe(6)
    expect(changes).toEqual(['added', 'updated'])
  })

  test('find filters by model and liveness and prefers idle providers', async () => {
    const clock = fakeClock()
    const set = new RecordSet({ clock: clock.now })
    const busy = await signed(11, modelInput(9001, { queueDepth: 16 }))
    const idle = await signed(12, modelInput(9002, { queueDepth: 0 }))
    const other = await signed(13, modelInput(9003, { models: ['tiny-llama'] }))
    for (const r of [busy, idle, other]) expect(set.offer(r.bytes).accepted).toBe(true)
    expect(set.find('demo-gpt2').map(r => r.record.endpoint)).toEqual(['http://127.0.0.1:9002', 'http://127.0.0.1:9001'])
    expect(set.find('tiny-llama')).toHaveLength(1)
    expect(set.find('nope')).toEqual([])
  })

  test('expiry follows the clock: filtered on read, forgotten on sweep', async () => {
    const clock = fakeClock()
    const set = new RecordSet({ clock: clock.now, skewSeconds: 0 })
    const { bytes, record } = await signed(14, modelInput(9004), { lifetimeSeconds: 120 })
    set.offer(bytes)
    clock.advance(120_000)
    expect(set.find('demo-gpt2')).toHaveLength(1)
    clock.advance(1000)
    expect(set.find('demo-gpt2')).toEqual([])
    const swept = set.sweep()
    expect(swept.map(c => [c.type, c.provider])).toEqual([['expired', record.provider]])
    expect(set.all()).toEqual([])
    const late = set.offer(bytes)
    expect(late.accepted === false && late.error.code).toBe('RECORD_EXPIRED')
  })

  test('a withdrawal hides the provider and blocks its older records until it expires', async () => {
    const set = new RecordSet({ clock: fakeClock().now })
    const online = await signed(15, modelInput(9005), { seq: 1 })
    const offline = await signed(15, { ...modelInput(9005), status: 'offline' }, { seq: 2 })
    set.offer(online.bytes)
    const result = set.offer(offline.bytes)
    expect(result.accepted && result.change.type).toBe('withdrawn')
    expect(set.find('demo-gpt2')).toEqual([])
    expect(set.all()).toHaveLength(1) // the tombstone is still served to peers
    expect(set.offer(online.bytes).accepted).toBe(false)
    const back = await signed(15, modelInput(9005), { seq: 3 })
    const again = set.offer(back.bytes)
    expect(again.accepted && again.change.type).toBe('added')
  })

  test('holds at most maxProviders', async () => {
    const set = new RecordSet({ clock: fakeClock().now, maxProviders: 2 })
    expect(set.offer((await signed(20)).bytes).accepted).toBe(true)
    expect(set.offer((await signed(21)).bytes).accepted).toBe(true)
    const third = set.offer((await signed(22)).bytes)
    expect(third.accepted === false && third.error.code).toBe('RECORD_INVALID')
  })
})

describe('summarizePolicies', () => {
  test('names, tightest limits and shortest horizon per model, summaries kept as published', () => {
    const closed = { name: 'closed-model', egressPerDay: 50e6, egressPerKeyPerDay: 5e6, perJobCap: null, forbiddenOps: ['read_param'], exfiltrationHorizon: { bytesPerParam: 1, precisionBits: 8 }, exfiltrationHorizonDays: { 'demo-gpt2': 0.7, 'tiny-llama': null } }
    const stricter = { name: 'allow-list', egressPerDay: 10e6, exfiltrationHorizonDays: { 'demo-gpt2': 3.5 } }
    const summary = summarizePolicies([closed, stricter])
    expect(summary).toMatchObject({ name: 'closed-model+allow-list', egressPerDay: 10e6, egressPerKeyPerDay: 5e6, exfiltrationHorizonDays: { 'demo-gpt2': 0.7 }, closed: true, forbiddenOps: ['read_param'], exfiltrationBytesPerParam: 1 })
    expect(summary).not.toHaveProperty('perJobCap')
    expect(summary).not.toHaveProperty('maxElementsPerSave')
    expect(summary.policies).toEqual([closed, stricter])
    expect(summarizePolicies([])).toEqual({ name: 'open', policies: [], forbiddenOps: [], closed: false })
  })

  test('routing fields: forbidden ops of every policy, the smallest per-save element limit, closed when anything is guarded', () => {
    const a = { name: 'closed-model', forbiddenOps: ['param', 'module_call'], requiredReductions: { maxElementsPerSave: 100 } }
    const b = { name: 'extra', forbiddenOps: ['grad', 'param'], requiredReductions: { maxElementsPerSave: 10 } }
    expect(summarizePolicies([a, b])).toMatchObject({ forbiddenOps: ['grad', 'module_call', 'param'], maxElementsPerSave: 10, closed: true })
    expect(summarizePolicies([{ name: 'open', rateLimit: null, quota: null }])).toMatchObject({ forbiddenOps: [], closed: false })
    expect(summarizePolicies([{ name: 'budget', perJobCap: 1000 }])).toMatchObject({ perJobCap: 1000, closed: true })
  })
})
