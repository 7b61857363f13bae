// Fuzzing the untrusted-input decoders: ≥10,000 random and mutated byte strings; only WeftErrors, no hangs.
import { expect, test } from 'vitest'
import { validateProgram, createRequestEnvelope, decodeCbor, decodeProgram, encodeProgram, keyId, keyPairFromSeed, tensor, verifyEnvelope, WeftError } from '@weft/core'
import { demoGpt2Manifest, programOf } from '@weft/core/testing'

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
function prng (seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const manifest = demoGpt2Manifest()
const keys = keyPairFromSeed(new Uint8Array(32).fill(3))
const kid = keyId(keys.publicKey)
const program = programOf([
  ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []],
  ['const', { value: tensor([[0.5, -1], [2, 3]]) as never }, []],
  ['index', { index: [0, [1, null, 2]] }, [0]],
  ['save', { name: 'h' }, [2]],
])
const seeds = [encodeProgram(program), createRequestEnvelope({ program, audience: 'p', secretKey: keys.secretKey, kid, nonce: 'x', iat: 1000 })]

function mutate (bytes: Uint8Array, rand: () => number): Uint8Array {
  const out = bytes.slice()
  const at = Math.floor(rand() * out.length)
  switch (Math.floor(rand() * 6)) {
    case 0: out[at] ^= 1 << Math.floor(rand() * 8); return out
    case 1: return out.subarray(0, at)
    case 2: out[at] = [0x1b, 0x5b, 0x9b, 0xbb, 0xff, 0x5f, 0x9f][Math.floor(rand() * 7)]!; return out
    case 3: { const grown = new Uint8Array(out.length + 8).fill(0xff); grown.set(out.subarray(0, at)); grown.set(out.subarray(at), at + 8); return grown }
    case 4: return Uint8Array.from([...new Array<number>(Math.floor(rand() * 2000)).fill(rand() < 0.5 ? 0x81 : 0xa1), ...out])
    default: for (let i = 0; i < 4; i++) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256); return out
  }
}

function randomBytes (rand: () => number): Uint8Array {
  return Uint8Array.from({ length: Math.floor(rand() * 48) }, () => Math.floor(rand() * 256))
}

test('10,000 hostile inputs × 3 decoders: every failure is a WeftError', () => {
  const rand = prng(42)
  const started = Date.now()
  let accepted = 0
  const targets = [
    (b: Uint8Array) => decodeCbor(b),
    (b: Uint8Array) => validateProgram(decodeProgram(b), manifest),
    // signature checks cost ~2 ms: only every 8th input reaches one, the rest stop at the key lookup
    (b: Uint8Array, i: number) => verifyEnvelope(b, { resolveKey: () => i % 8 === 1 ? keys.publicKey : undefined, now: 1000 }),
  ]
  for (let i = 0; i < 10_000; i++) {
    const input = i % 4 === 0 ? randomBytes(rand) : mutate(seeds[i % 2]!, rand)
    for (const target of targets) {
      try {
        target(input, i)
        accepted++
      } catch (error) {
        if (!WeftError.is(error)) throw new Error(`non-Weft error for ${Buffer.from(input).toString('hex').slice(0, 200)}: ${String(error)}`)
      }
    }
  }
  expect(Date.now() - started).toBeLessThan(10_000)
  expect(accepted).toBeGreaterThan(0) // some mutations are still valid CBOR
})
