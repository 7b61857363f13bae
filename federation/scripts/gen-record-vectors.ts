/**
 * Generates spec/vectors/records/*.json (provider records) and spec/vectors/endorsements/*.json (endorsements),
 * signed with fixed seeds at fixed times. Fail vectors are hand-chosen mutations with hand-written expected codes.
 * Run: npx tsx federation/scripts/gen-record-vectors.ts
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CborTag, decodeCbor, encodeCbor, keyId, keyPairFromSeed, protectedHeaderBytes, sigStructure, signBytes, signEnvelope, toHex, toJsonForm, REQUEST_CONTENT_TYPE, type KeyPair } from '@weft/core'
import { renderVector } from '../../spec/scripts/gen-vectors.js'
import type { VectorFile } from '../../spec/scripts/vectors/types.js'
import { peerIdOfPublicKey } from '../src/identity.js'
import { PROVIDER_RECORD_CONTENT_TYPE, signProviderRecord, type ProviderRecord } from '../src/provider-record.js'
import { ENDORSEMENT_CONTENT_TYPE, signEndorsement, type Endorsement } from '../src/endorsement.js'

export const ISSUED_AT = 1767225600 // 2026-01-01T00:00:00Z
export const LIFETIME = 120
const seedOf = (first: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => first + i)
const provider = keyPairFromSeed(seedOf(0x40))
const other = keyPairFromSeed(seedOf(0x60))
const key = (k: KeyPair) => ({ kty: 'OKP', crv: 'Ed25519', d_hex: toHex(k.secretKey), x_hex: toHex(k.publicKey), kid: keyId(k.publicKey), peer: peerIdOfPublicKey(k.publicKey) })

function recordOf (k: KeyPair, over: Partial<ProviderRecord> = {}): ProviderRecord {
  return {
    v: 1, provider: keyId(k.publicKey), peer: peerIdOfPublicKey(k.publicKey), endpoint: 'http://127.0.0.1:8740', status: 'online',
    models: [{ name: 'demo-gpt2', revision: 'sha256:c6496eb1485491b74c2a6bebe2c61b7ef7e8a9b29e7596bf6238bc2d12edb06f', manifestDigest: 'sha256:' + '33'.repeat(32), family: 'gpt2' }],
    policy: { name: 'closed-model', egressPerDay: 50_000_000, egressPerKeyPerDay: 5_000_000, exfiltrationHorizonDays: 0.7 },
    capacity: { queueDepth: 2, maxBatch: 8 }, seq: 1767225600000, issuedAt: ISSUED_AT, expiresAt: ISSUED_AT + LIFETIME, ...over,
  }
}

/** the nodes of a multi-node provider: `endpoint` first */
const NODES = ['http://127.0.0.1:8740', 'http://127.0.0.1:8741', 'https://node-c.example.org/weft']

/** Signs any payload as a record envelope, bypassing shape checks (for malformed-record vectors). */
function signRaw (payload: Record<string, unknown>, k: KeyPair, contentType = PROVIDER_RECORD_CONTENT_TYPE): Uint8Array {
  return signEnvelope({ payload, secretKey: k.secretKey, kid: keyId(k.publicKey), contentType })
}

function parts (bytes: Uint8Array): [Uint8Array, unknown, Uint8Array, Uint8Array] {
  return (decodeCbor(bytes) as CborTag).value as [Uint8Array, unknown, Uint8Array, Uint8Array]
}

export function recordVectors (): VectorFile[] {
  const verify = { now: ISSUED_AT + 10, skew_seconds: 60 }
  const files: VectorFile[] = []
  const pass = (n: string, title: string, record: ProviderRecord, over: Record<string, unknown> = {}): void => {
    const bytes = signProviderRecord(record, provider.secretKey)
    const [protectedBytes, , payload] = parts(bytes)
    files.push({
      path: `records/pass-${n}.json`,
      body: {
        title: `records/pass-${n}: ${title}`,
        input: { key: key(provider), record: toJsonForm(record), verify: { ...verify, ...over } },
        intermediates: { protected_hex: toHex(protectedBytes), payload_hex: toHex(payload), to_be_signed_hex: toHex(sigStructure(protectedBytes, payload)) },
        output: { cbor_hex: toHex(bytes) },
      },
    })
  }
  pass('01-online', 'a provider announces demo-gpt2', recordOf(provider))
  pass('02-withdrawal', 'a clean shutdown: status offline, newer seq', recordOf(provider, { status: 'offline', seq: 1767225660000, issuedAt: ISSUED_AT + 60, expiresAt: ISSUED_AT + 60 + LIFETIME }), { previous_seq: 1767225600000 })
  pass('03-published-by-its-peer', 'received over gossip from the peer it names', recordOf(provider), { publisher: peerIdOfPublicKey(provider.publicKey) })
  pass('04-several-nodes', 'a provider served by three nodes lists their endpoints, the preferred one first', recordOf(provider, { endpoints: NODES }))

  const good = signProviderRecord(recordOf(provider), provider.secretKey)
  const [prot, , payload, signature] = parts(good)
  const flipped = signature.slice()
  flipped[7] ^= 0x01
  const badSignature = encodeCbor(new CborTag(18, [prot, new Map(), payload, flipped]))
  const kidOfOther = protectedHeaderBytes(keyId(other.publicKey), PROVIDER_RECORD_CONTENT_TYPE)
  const fail: [string, string, Uint8Array, string, Record<string, unknown>?][] = [
    ['01', 'signature byte changed', badSignature, 'SIGNATURE_INVALID'],
    ['02', 'expired: now is 61 s past expiresAt with 60 s skew', good, 'RECORD_EXPIRED', { now: ISSUED_AT + LIFETIME + 61 }],
    ['03', "peer id embeds another key than the one that signed (impostor using a victim's peer id)", signRaw(recordOf(provider, { peer: peerIdOfPublicKey(other.publicKey) }) as never, provider), 'RECORD_INVALID'],
    ['04', "provider id is another provider's key id (audience hijack)", signRaw(recordOf(provider, { provider: keyId(other.publicKey) }) as never, provider), 'RECORD_INVALID'],
    ['05', 'stale: seq equal to the record already held', good, 'RECORD_STALE', { previous_seq: 1767225600000 }],
    ['06', 'relayed over gossip as if published by another peer', good, 'RECORD_INVALID', { publisher: peerIdOfPublicKey(other.publicKey) }],
    ['07', 'signed by the right key under a kid naming another key', encodeCbor(new CborTag(18, [kidOfOther, new Map(), payload, signBytes(sigStructure(kidOfOther, payload), provider.secretKey)])), 'RECORD_INVALID'],
    ['08', 'request content type instead of the provider-record type', signRaw(recordOf(provider) as never, provider, REQUEST_CONTENT_TYPE), 'ENVELOPE_INVALID'],
    ['09', 'endpoint is not http(s)', signRaw(recordOf(provider, { endpoint: 'ftp://127.0.0.1/' }) as never, provider), 'RECORD_INVALID'],
    ['10', 'issued 61 s in the future', good, 'RECORD_INVALID', { now: ISSUED_AT - 61 }],
    ['11', 'claims a lifetime over 24 h', signRaw(recordOf(provider, { expiresAt: ISSUED_AT + 86_401 }) as never, provider), 'RECORD_INVALID'],
    ['12', 'capacity.maxBatch is 0', signRaw(recordOf(provider, { capacity: { queueDepth: 0, maxBatch: 0 } }) as never, provider), 'RECORD_INVALID'],
    ['13', 'endpoints[0] is not endpoint', signRaw(recordOf(provider, { endpoints: [NODES[1]!, NODES[0]!] }) as never, provider), 'RECORD_INVALID'],
    ['14', 'endpoints lists a node twice', signRaw(recordOf(provider, { endpoints: [NODES[0]!, NODES[1]!, NODES[1]!] }) as never, provider), 'RECORD_INVALID'],
    ['15', 'an endpoints entry carries credentials', signRaw(recordOf(provider, { endpoints: [NODES[0]!, 'http://user:pw@127.0.0.1:8741'] }) as never, provider), 'RECORD_INVALID'],
    ['16', 'endpoints lists 17 nodes, more than 16', signRaw(recordOf(provider, { endpoints: Array.from({ length: 17 }, (_, i) => `http://127.0.0.1:${8740 + i}`) }) as never, provider), 'RECORD_INVALID'],
  ]
  for (const [n, title, bytes, code, over] of fail) {
    files.push({
      path: `records/fail-${n}.json`,
      body: { title: `records/fail-${n}: ${title}`, description: `Verifier must reject with ${code}.`, fail: true, expect_error: code, input: { cbor_hex: toHex(bytes), verify: { ...verify, ...over } } },
    })
  }
  return files
}

const endorser = keyPairFromSeed(seedOf(0x20))

function endorsementOf (over: Partial<Endorsement> = {}): Endorsement {
  return {
    v: 1, endorser: keyId(endorser.publicKey), provider: keyId(provider.publicKey), models: [{ name: 'demo-gpt2' }],
    issuedAt: ISSUED_AT, expiresAt: ISSUED_AT + 30 * 86400, ...over,
  }
}

export function endorsementVectors (): VectorFile[] {
  const verify = { now: ISSUED_AT + 10, skew_seconds: 60, trusted_hex: [toHex(endorser.publicKey)] }
  const files: VectorFile[] = []
  const pass = (n: string, title: string, endorsement: Endorsement): void => {
    const bytes = signEndorsement(endorsement, endorser.secretKey)
    const [protectedBytes, , payload] = parts(bytes)
    files.push({
      path: `endorsements/pass-${n}.json`,
      body: {
        title: `endorsements/pass-${n}: ${title}`,
        input: { key: key(endorser), endorsement: toJsonForm(endorsement), verify },
        intermediates: { protected_hex: toHex(protectedBytes), payload_hex: toHex(payload), to_be_signed_hex: toHex(sigStructure(protectedBytes, payload)) },
        output: { cbor_hex: toHex(bytes) },
      },
    })
  }
  pass('01-model', 'an endorser vouches for a provider serving demo-gpt2 at any revision for 30 days', endorsementOf())
  pass('02-pinned-revision', 'vouched for one revision only', endorsementOf({ models: [{ name: 'demo-gpt2', revision: 'sha256:c6496eb1485491b74c2a6bebe2c61b7ef7e8a9b29e7596bf6238bc2d12edb06f' }, { name: 'tiny-llama' }] }))

  const good = signEndorsement(endorsementOf(), endorser.secretKey)
  const [prot, , payload, signature] = parts(good)
  const flipped = signature.slice()
  flipped[3] ^= 0x01
  const raw = (value: Record<string, unknown>, k: KeyPair = endorser, contentType = ENDORSEMENT_CONTENT_TYPE): Uint8Array => signEnvelope({ payload: value, secretKey: k.secretKey, kid: keyId(k.publicKey), contentType })
  const fail: [string, string, Uint8Array, string, Record<string, unknown>?][] = [
    ['01', 'signature byte changed', encodeCbor(new CborTag(18, [prot, new Map(), payload, flipped])), 'SIGNATURE_INVALID'],
    ['02', 'expired: now is 61 s past expiresAt with 60 s skew', good, 'RECORD_EXPIRED', { now: ISSUED_AT + 30 * 86400 + 61 }],
    ['03', 'signed by a key the verifier does not trust', signEndorsement(endorsementOf({ endorser: keyId(other.publicKey) }), other.secretKey), 'KEY_UNKNOWN'],
    ['04', 'names another endorser than the key that signed it', raw({ ...endorsementOf(), endorser: keyId(other.publicKey) }), 'RECORD_INVALID'],
    ['05', 'claims a lifetime over 366 days', raw({ ...endorsementOf(), expiresAt: ISSUED_AT + 366 * 86400 + 1 }), 'RECORD_INVALID'],
    ['06', 'provider-record content type instead of the endorsement type', raw(endorsementOf() as never, endorser, PROVIDER_RECORD_CONTENT_TYPE), 'ENVELOPE_INVALID'],
    ['07', 'no models', raw({ ...endorsementOf(), models: [] }), 'RECORD_INVALID'],
    ['08', 'issued 61 s in the future', good, 'RECORD_INVALID', { now: ISSUED_AT - 61 }],
  ]
  for (const [n, title, bytes, code, over] of fail) {
    files.push({
      path: `endorsements/fail-${n}.json`,
      body: { title: `endorsements/fail-${n}: ${title}`, description: `Verifier must reject with ${code}.`, fail: true, expect_error: code, input: { cbor_hex: toHex(bytes), verify: { ...verify, ...over } } },
    })
  }
  return files
}

export const RECORDS_DIR = fileURLToPath(new URL('../../spec/vectors/records/', import.meta.url))
export const ENDORSEMENTS_DIR = fileURLToPath(new URL('../../spec/vectors/endorsements/', import.meta.url))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [dir, kind, files] of [[RECORDS_DIR, 'records', recordVectors()], [ENDORSEMENTS_DIR, 'endorsements', endorsementVectors()]] as const) {
    mkdirSync(dir, { recursive: true })
    for (const name of readdirSync(dir)) rmSync(join(dir, name))
    for (const file of files) writeFileSync(join(dir, file.path.slice(kind.length + 1)), renderVector(file))
    console.log(`wrote ${files.length} vectors to ${dir}`)
  }
}
