// Runs every spec/vectors file through core: CBOR bytes, program digests and issues, envelopes, op examples.
import { describe, expect, test } from 'vitest'
import { loadVectors, loadManifest } from '@weft/spec'
import {
  createRequestEnvelope, decodeCbor, decodeProgram, encodeCbor, encodeProgram, evalOp, fromHex, fromJsonForm, inferProgramTypes,
  keyPairFromSeed, openRequestEnvelope, programDigest, signReceipt, toHex, toNested, validateProgram, verifyReceipt, WeftError,
  type Attrs, type Manifest, type Program, type Receipt, type Tensor,
} from '@weft/core'

/** title → reason; empty is the goal */
const skip: Record<string, string> = {}
const manifest = loadManifest('demo-gpt2') as unknown as Manifest

function errorCode (fn: () => unknown): string {
  try { fn() } catch (error) { if (WeftError.is(error)) return error.code; throw error }
  return 'no error'
}

describe('cbor vectors', () => {
  for (const v of loadVectors('cbor')) {
    test.skipIf(v.title in skip)(v.title, () => {
      if (v.fail === true) return expect(errorCode(() => decodeCbor(fromHex(v.input.cbor_hex as string)))).toBe(v.expect_error)
      const hex = v.output!.cbor_hex as string
      expect(toHex(encodeCbor(fromJsonForm(v.input.value)))).toBe(hex)
      expect(toHex(encodeCbor(decodeCbor(fromHex(hex))))).toBe(hex)
    })
  }
})

describe('program vectors', () => {
  for (const v of loadVectors('programs')) {
    test.skipIf(v.title in skip)(v.title, () => {
      const program = fromJsonForm(v.input.program) as Program
      if (v.fail === true) {
        const messages = validateProgram(program, manifest).map(i => i.message).join('\n')
        for (const fragment of v.output!.issues as string[]) expect(messages).toContain(fragment)
        return
      }
      const bytes = encodeProgram(program)
      expect(toHex(bytes)).toBe(v.output!.cbor_hex)
      expect(programDigest(bytes)).toBe(v.output!.digest)
      const decoded = decodeProgram(bytes)
      const types = inferProgramTypes(decoded, manifest)
      const saves = Object.fromEntries(decoded.nodes.flatMap(([op, attrs], i) => op === 'save' ? [[attrs.name as string, types[i]]] : []))
      expect(saves).toEqual(v.output!.saves)
    })
  }
})

interface VerifySpec { audience: string; now: number; skew_seconds: number; keys: { kid: string; x_hex: string }[] }
const resolver = (verify: VerifySpec) => (kid: string) => {
  const key = verify.keys.find(k => k.kid === kid)
  return key === undefined ? undefined : fromHex(key.x_hex)
}

describe('envelope vectors', () => {
  for (const v of loadVectors('envelope')) {
    test.skipIf(v.title in skip)(v.title, () => {
      if (v.fail === true) {
        const verify = v.input.verify as VerifySpec
        const bytes = fromHex(v.input.cbor_hex as string)
        const options = { resolveKey: resolver(verify), audience: verify.audience, now: verify.now, skewSeconds: verify.skew_seconds }
        return expect(errorCode(() => openRequestEnvelope(bytes, options))).toBe(v.expect_error)
      }
      const key = v.input.key as { d_hex: string; x_hex: string; kid: string }
      const pair = keyPairFromSeed(fromHex(key.d_hex))
      expect(toHex(pair.publicKey)).toBe(key.x_hex)
      if (v.input.receipt !== undefined) {
        const bytes = signReceipt(v.input.receipt as Receipt, pair.secretKey, key.kid)
        expect(toHex(bytes)).toBe(v.output!.cbor_hex)
        return expect(verifyReceipt(bytes, pair.publicKey)).toEqual(v.input.receipt)
      }
      const input = v.input as { program: unknown; audience: string; nonce: string; iat: number; ttlSeconds: number; verify: VerifySpec }
      const program = fromJsonForm(input.program) as Program
      const bytes = createRequestEnvelope({ program, audience: input.audience, secretKey: pair.secretKey, kid: key.kid, nonce: input.nonce, iat: input.iat, ttlSeconds: input.ttlSeconds })
      expect(toHex(bytes)).toBe(v.output!.cbor_hex)
      const opened = openRequestEnvelope(bytes, { resolveKey: resolver(input.verify), audience: input.verify.audience, now: input.verify.now })
      expect(opened.nonce).toBe(input.nonce)
      expect(toHex(encodeProgram(opened.program))).toBe(v.intermediates!.program_cbor_hex)
    })
  }
})

function close (actual: unknown, expected: unknown, tolerance: number): void {
  if (Array.isArray(expected)) {
    expect((actual as unknown[]).length).toBe(expected.length)
    return expected.forEach((e, i) => close((actual as unknown[])[i], e, tolerance))
  }
  if (typeof expected === 'number') return expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected)))
  expect(actual).toBe(expected)
}

describe('op vectors (reference interpreter)', () => {
  for (const v of loadVectors('ops')) {
    test.skipIf(v.title in skip)(v.title, () => {
      const inputs = (v.input.inputs as unknown[]).map(fromJsonForm) as Tensor[]
      const result = evalOp(v.input.op as string, fromJsonForm(v.input.attrs) as Attrs, inputs)
      expect(result.dtype).toBe(v.output!.dtype)
      close(toNested(result), v.output!.value, v.output!.tolerance as number)
    })
  }
})
