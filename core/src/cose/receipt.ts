/** Provider-signed receipts binding request, model revision, provider-wide edits, result, egress and the kept adapters a run used or kept. */
import { WeftError } from '../errors/weft-error.js'
import type { Tensor } from '../tensor/tensor.js'
import { encodeCbor } from '../cbor/encode.js'
import { sha256Digest } from '../cbor/program-codec.js'
import type { DecodeLimits } from '../cbor/decode.js'
import { signEnvelope, verifyEnvelope } from './sign1.js'

export const RECEIPT_CONTENT_TYPE = 'application/vnd.weft.receipt+cbor'

export interface Receipt {
  provider: string
  job: string
  requestDigest: string
  model: string
  modelRevision: string
  /** provider-wide edits in force for this job, each `<name>@<program digest>` */
  edits: string[]
  resultDigest: string
  egressBytes: number
  /** seconds since the epoch */
  issuedAt: number
  /**
   * kept adapters whose params initialised this run's params (`init: {adapter}`), each `<name>@<digest>` (the digest of
   * the values file at the time the job was admitted), sorted; absent when none
   */
  adaptersUsed?: string[]
  /** the adapter this run kept (`keep`), `<name>@<digest>`; absent when nothing was kept */
  adapterKept?: string
}

const FIELDS: Record<keyof Receipt, 'string' | 'strings' | 'uint'> = {
  provider: 'string', job: 'string', requestDigest: 'string', model: 'string', modelRevision: 'string',
  edits: 'strings', resultDigest: 'string', egressBytes: 'uint', issuedAt: 'uint', adaptersUsed: 'strings', adapterKept: 'string',
}
/** fields a receipt carries only when they apply */
const OPTIONAL = new Set<string>(['adaptersUsed', 'adapterKept'])
/** `<name>@sha256:<64 hex>` */
const ADAPTER_BINDING = /^[A-Za-z0-9._-]{1,64}@sha256:[0-9a-f]{64}$/

function receiptProblem (value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Map) return 'receipt must be a map'
  const record = value as Record<string, unknown>
  const extra = Object.keys(record).filter(k => !Object.hasOwn(FIELDS, k))
  if (extra.length > 0) return `unknown receipt field '${extra[0]}'`
  for (const [name, kind] of Object.entries(FIELDS)) {
    const v = record[name]
    if (v === undefined && OPTIONAL.has(name)) continue
    const ok = kind === 'string' ? typeof v === 'string'
      : kind === 'strings' ? Array.isArray(v) && v.every(s => typeof s === 'string')
        : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
    if (!ok) return `receipt field '${name}' must be ${kind === 'uint' ? 'a non-negative integer' : kind === 'strings' ? 'a list of text' : 'text'}`
  }
  const used = record.adaptersUsed as string[] | undefined
  if (used !== undefined && (used.length === 0 || !used.every(b => ADAPTER_BINDING.test(b)) || used.some((b, i) => i > 0 && used[i - 1]! >= b))) {
    return "receipt field 'adaptersUsed' must be a non-empty, sorted list of distinct '<name>@sha256:<hex>'"
  }
  if (record.adapterKept !== undefined && !ADAPTER_BINDING.test(record.adapterKept as string)) return "receipt field 'adapterKept' must be '<name>@sha256:<hex>'"
  return null
}

export function signReceipt (receipt: Receipt, secretKey: Uint8Array, kid: string): Uint8Array {
  const problem = receiptProblem(receipt)
  if (problem !== null) throw new WeftError('ENCODE_FAILED', problem)
  const payload = Object.fromEntries(Object.entries(receipt).filter(([, v]) => v !== undefined))
  return signEnvelope({ payload, secretKey, kid, contentType: RECEIPT_CONTENT_TYPE })
}

/** Verifies a receipt against the provider's public key (whatever kid it names) and returns it. */
export function verifyReceipt (bytes: Uint8Array, publicKey: Uint8Array, limits?: Partial<DecodeLimits>): Receipt {
  const { payload } = verifyEnvelope(bytes, { resolveKey: () => publicKey, contentType: RECEIPT_CONTENT_TYPE, limits })
  const problem = receiptProblem(payload)
  if (problem !== null) throw new WeftError('ENVELOPE_INVALID', problem)
  const receipt = { ...(payload as unknown as Receipt), edits: [...(payload.edits as string[])] }
  if (receipt.adaptersUsed !== undefined) receipt.adaptersUsed = [...receipt.adaptersUsed]
  return receipt
}

/** `sha256:<hex>` of the deterministic CBOR of the saves map (name → tensor). */
export function resultDigest (saves: Record<string, Tensor>): string {
  return sha256Digest(encodeCbor(saves))
}
