/**
 * A job's successful run becomes a stored result: count the bytes that leave, enforce the admitted egress cap,
 * sign the receipt (request digest, model revision, edits in force, result digest, egress bytes, adapters used and
 * kept) and commit
 * result + ledger + audit in one transaction.
 */
import { WeftError, encodeCbor, signReceipt, type JobResult, type Receipt, type Tensor, type WireError } from '@weft/core'
import { digestOf } from '../models/model-registry.js'
import type { ServedModel } from '../models/model-registry.js'
import type { JobRow, Store } from '../store/store.js'
import { STORE_MAX_RESULT_BYTES, type HostLimits } from './limits.js'

export interface ReceiptSigner { providerId: string; secretKey: Uint8Array }

/** What a result response carries, as committed. */
export interface StoredResult { saves: Uint8Array; receipt: Uint8Array; egressBytes: number; stats: unknown }

/**
 * What a session or training result says besides its saves, stored with its stats (the `results.stats` JSON holds
 * `{ ...stats, training?, adapter? }`) and split out again in the Result body.
 */
export interface ResultExtras {
  /**
   * the training loop's outcome; `stopped` says why a run ended early ('cancelled' by its submitter, 'time-limit');
   * `resumedFrom`: the run continued from a checkpoint taken after that many steps (an earlier run was interrupted)
   */
  training?: { steps: number; completed: number; cancelled: boolean; finalLoss: number | null; stopped?: 'cancelled' | 'time-limit'; resumedFrom?: number }
  /** the adapter kept from this run (values stay on the provider) */
  adapter?: { name: string; id: string; digest: string; bytes: number; replaced: boolean }
  /** `<name>@<digest>` of the kept adapters whose params initialised this run's params (bound by the receipt) */
  adaptersUsed?: string[]
}

/** Splits a stored stats JSON value into the engine stats and the extras (rows from before extras existed have none). */
export function splitStats (stored: unknown): { stats: unknown; extras: ResultExtras } {
  if (typeof stored !== 'object' || stored === null) return { stats: stored ?? null, extras: {} }
  const { training, adapter, adaptersUsed, ...stats } = stored as Record<string, unknown> & ResultExtras
  return { stats, extras: { ...(training === undefined ? {} : { training }), ...(adapter === undefined ? {} : { adapter }), ...(adaptersUsed === undefined ? {} : { adaptersUsed }) } }
}

export type Completion =
  | { ok: true; egressBytes: number; resultDigest: string; stored: StoredResult; extras: ResultExtras }
  | { ok: false; error: WireError | null }

/** Bytes of tensor data that leave the provider: what the egress ledger charges. */
function egressBytesOf (saves: Record<string, Tensor>): number {
  return Object.values(saves).reduce((total, t) => total + t.data.byteLength, 0)
}

export function completeJob (
  deps: { store: Store; signer: ReceiptSigner; limits: HostLimits; now: () => number },
  row: JobRow, result: Extract<JobResult, { ok: true }>, model: ServedModel, edits: string[], extras: ResultExtras = {},
): Completion {
  const now = deps.now()
  const egressBytes = egressBytesOf(result.saves)
  if (row.maxEgress !== null && egressBytes > row.maxEgress) {
    return { ok: false, error: { code: 'EGRESS_BUDGET_EXCEEDED', message: `the result has ${egressBytes} bytes but only ${row.maxEgress} were allowed; nothing was returned or charged`, details: { egressBytes, remainingBytes: row.maxEgress } } }
  }
  if (egressBytes > deps.limits.maxResultBytesPerJob) {
    // the admission estimate is exact for traces; this catches a backend whose result outgrew it
    return { ok: false, error: { code: 'RESULT_TOO_LARGE', message: `the result has ${egressBytes} bytes; this provider returns at most ${deps.limits.maxResultBytesPerJob} bytes per job (maxResultBytesPerJob); nothing was stored or charged`, details: { limit: 'maxResultBytesPerJob', limitBytes: deps.limits.maxResultBytesPerJob, egressBytes } } }
  }
  // core's resultDigest is SHA-256 of exactly these deterministic bytes; hash them once, natively, and store them
  const saves = encodeCbor(result.saves)
  if (saves.byteLength > STORE_MAX_RESULT_BYTES) {
    return { ok: false, error: { code: 'RESULT_TOO_LARGE', message: `the encoded result has ${saves.byteLength} bytes, more than the store holds (${STORE_MAX_RESULT_BYTES}); nothing was stored or charged`, details: { limit: 'store', limitBytes: STORE_MAX_RESULT_BYTES, egressBytes } } }
  }
  const digest = digestOf(saves)
  const receipt: Receipt = {
    provider: deps.signer.providerId, job: row.id, requestDigest: row.requestDigest,
    model: model.name, modelRevision: model.manifest.revision, edits, resultDigest: digest, egressBytes,
    issuedAt: Math.floor(now / 1000),
    ...(extras.adaptersUsed === undefined || extras.adaptersUsed.length === 0 ? {} : { adaptersUsed: extras.adaptersUsed }),
    ...(extras.adapter === undefined ? {} : { adapterKept: `${extras.adapter.name}@${extras.adapter.digest}` }),
  }
  const receiptBytes = signReceipt(receipt, deps.signer.secretKey, deps.signer.providerId)
  const stats = extras.training === undefined && extras.adapter === undefined && extras.adaptersUsed === undefined ? result.stats : { ...result.stats, ...extras }
  const stored = deps.store.completeJob(row, {
    saves, receipt: receiptBytes, egressBytes, stats, edits, revision: model.manifest.revision,
  }, now, deps.limits.resultRetentionMs)
  // not stored when the job is no longer running (cancelled meanwhile): nothing leaves, nothing is charged
  return stored ? { ok: true, egressBytes, resultDigest: digest, stored: { saves, receipt: receiptBytes, egressBytes, stats }, extras } : { ok: false, error: null }
}

/** The wire form of an error a job ended with: a WeftError's own, anything else INTERNAL with its message. */
export function wireErrorOf (error: unknown): WireError {
  if (WeftError.is(error)) return error.toWire()
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), details: {} }
}
