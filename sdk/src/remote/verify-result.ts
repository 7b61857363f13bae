/**
 * Checks a provider's result before the SDK hands it out: the receipt verifies under the provider's published key,
 * names this provider, job, model and the model revision the client validated with, binds the digest of exactly
 * the envelope we sent and of exactly the tensors we got, and names the adapters the Program initialised params from
 * and the adapter it kept (with the digests the result body reports).
 */
import { WeftError, decodeCbor, isTensor, requestDigest, sha256Digest, verifyReceipt, type Receipt, type Tensor } from '@weft/core'

interface ResultBody {
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
  /** names of the kept adapters the Program's params are initialised from (`init: {adapter}`); checked when given */
  adapterInits?: readonly string[]
  /** the adapter the Program asks to keep (`keep.adapter`), or null for none; checked when given */
  keep?: string | null
}

/** Names of the adapters a Program's params are initialised from, sorted and distinct. */
export function adapterInitNames (params: Record<string, { init: object }> | undefined): string[] {
  const names = new Set<string>()
  for (const decl of Object.values(params ?? {})) if ('adapter' in decl.init) names.add((decl.init as { adapter: { name: string } }).adapter.name)
  return [...names].sort()
}

const bindingName = (binding: string): string => binding.slice(0, binding.indexOf('@'))

/** The receipt's adapter fields against what the Program asked for and what the body reports. */
function checkAdapters (receipt: Receipt, body: ResultBody & { adapter?: { name: string; digest: string }; adaptersUsed?: string[] }, expected: ExpectedResult): void {
  const used = receipt.adaptersUsed ?? []
  if (expected.adapterInits !== undefined) {
    const names = used.map(bindingName)
    const want = [...new Set(expected.adapterInits)].sort()
    if (names.join('\n') !== want.join('\n')) fail(`receipt binds adapters [${names.join(', ')}] as used, but the Program initialises params from [${want.join(', ')}]`, { expected: want, got: used })
  }
  if (body.adaptersUsed !== undefined && body.adaptersUsed.join('\n') !== used.join('\n')) fail('the result reports other adapters used than its receipt binds', { expected: used, got: body.adaptersUsed })
  const kept = body.adapter === undefined ? undefined : `${body.adapter.name}@${body.adapter.digest}`
  if (receipt.adapterKept !== kept) fail(`receipt binds kept adapter ${receipt.adapterKept ?? 'none'}, the result reports ${kept ?? 'none'}`, { expected: kept ?? null, got: receipt.adapterKept ?? null })
  if (expected.keep !== undefined && kept !== undefined && body.adapter!.name !== expected.keep) fail(`the result kept adapter '${body.adapter!.name}', the Program asked to keep ${expected.keep === null ? 'nothing' : `'${expected.keep}'`}`)
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
  checkAdapters(receipt, body, expected)
  return { body, saves, receipt }
}
