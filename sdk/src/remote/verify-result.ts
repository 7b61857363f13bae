/**
 * Checks a provider's result before the SDK hands it out: the receipt verifies under the provider's published key,
 * names this provider, job, model and the model revision the client validated with, binds the digest of exactly
 * the envelope we sent and of exactly the tensors we got.
 */
import { WeftError, decodeCbor, isTensor, requestDigest, sha256Digest, verifyReceipt, type Receipt, type Tensor } from '@weft/core'

export interface ResultBody {
  job: string
  saves: Uint8Array
  receipt: Uint8Array
  egress: { bytes: number; remainingToday: number | null }
  stats: { runMs?: number; cacheHit?: boolean; saveBytes?: number } | null
}

export interface VerifiedResult { body: ResultBody; saves: Record<string, Tensor>; receipt: Receipt }

/** Results are bigger than requests: allow up to 1 GiB of CBOR. */
const RESULT_LIMITS = { maxBytes: 2 ** 30, maxStringBytes: 2 ** 30 }

function fail (message: string, details: Record<string, unknown> = {}): never {
  throw new WeftError('SIGNATURE_INVALID', `result rejected: ${message}`, details)
}

export interface ExpectedResult {
  providerId: string
  publicKey: Uint8Array
  envelope: Uint8Array
  job?: string
  /** the model the Program names */
  model?: string
  /** the model revision the client validated the Program with (its manifest's revision) */
  revision?: string
}

export function verifyResult (bytes: Uint8Array, expected: ExpectedResult): VerifiedResult {
  const body = decodeCbor(bytes, RESULT_LIMITS) as ResultBody
  if (typeof body !== 'object' || body === null || !(body.saves instanceof Uint8Array) || !(body.receipt instanceof Uint8Array)) {
    throw new WeftError('DECODE_FAILED', 'result body is not {job, saves, receipt, egress, stats}')
  }
  const receipt = verifyReceipt(body.receipt, expected.publicKey)
  if (receipt.provider !== expected.providerId) fail(`receipt names provider ${receipt.provider}, expected ${expected.providerId}`)
  if (receipt.job !== body.job || (expected.job !== undefined && receipt.job !== expected.job)) fail(`receipt is for job ${receipt.job}, not ${expected.job ?? body.job}`)
  if (expected.model !== undefined && receipt.model !== expected.model) fail(`receipt is for model ${receipt.model}, the Program ran on ${expected.model}`, { expected: expected.model, got: receipt.model })
  if (expected.revision !== undefined && receipt.modelRevision !== expected.revision) {
    fail(`receipt names model revision ${receipt.modelRevision}, but the Program was validated against revision ${expected.revision}`, { expected: expected.revision, got: receipt.modelRevision })
  }
  const sent = requestDigest(expected.envelope)
  if (receipt.requestDigest !== sent) fail(`receipt binds request ${receipt.requestDigest}, but we sent ${sent}`, { expected: sent, got: receipt.requestDigest })
  // the strict decoder accepts only deterministic CBOR, so hashing the received bytes equals core's resultDigest(saves)
  const saves = decodeCbor(body.saves, RESULT_LIMITS) as Record<string, Tensor>
  const got = sha256Digest(body.saves)
  if (receipt.resultDigest !== got) fail(`receipt binds result ${receipt.resultDigest}, but the tensors received digest to ${got}`, { expected: receipt.resultDigest, got })
  if (typeof saves !== 'object' || saves === null || saves instanceof Map || Array.isArray(saves) || !Object.values(saves).every(isTensor)) {
    throw new WeftError('DECODE_FAILED', 'result saves are not a map of save names to tensors')
  }
  const bytesOut = Object.values(saves).reduce((n, t) => n + t.data.byteLength, 0)
  if (receipt.egressBytes !== bytesOut) fail(`receipt charges ${receipt.egressBytes} bytes, the tensors hold ${bytesOut}`)
  return { body, saves, receipt }
}
