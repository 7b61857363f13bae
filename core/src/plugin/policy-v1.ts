/** Policy plugin interface, version 1 (types only). Policies run in order; the first deny wins. */
import type { Program } from '../ir/program.js'
import type { Manifest } from '../manifest/manifest.js'
import type { ErrorCode } from '../errors/codes.js'
import type { ScanEntry } from './backend-v1.js'

export interface PolicySummary { name: string; [key: string]: unknown }

export interface AdmissionRequest {
  keyId: string
  program: Program
  manifest: Manifest
  /** upper bound of result bytes, computed from the scan before running */
  estimatedEgressBytes: number
  now: number
  /** every saved value's shape and dtype from the backend's scan (absent when the host could not scan) */
  saves?: ScanEntry[]
}

/** Values leaving the provider outside a job's result: a kept adapter's values (GET /v1/adapters/:name/values). */
export interface DownloadRequest {
  keyId: string
  /** the model the adapter was trained on */
  model: string
  adapter: string
  /** tensor data bytes that would leave (what the egress ledger charges) */
  bytes: number
  now: number
}

export type Decision =
  | { allow: true; limits?: { maxEgressBytes?: number; timeoutMs?: number } }
  | { allow: false; code: ErrorCode; reason: string; details?: Record<string, unknown> }

export interface PolicyV1 {
  readonly specificationVersion: 'v1'
  readonly name: string
  summary (): PolicySummary
  admit (request: AdmissionRequest): Promise<Decision> | Decision
  /**
   * Whether a kept adapter's values may leave (its bytes are charged to the egress ledger like a result's).
   * Absent: the policy does not object. A closed-model policy keeps adapters host-only unless told otherwise.
   */
  admitDownload? (request: DownloadRequest): Promise<Decision> | Decision
  /** called after a job ends with the bytes that actually left */
  record? (request: AdmissionRequest, egressBytes: number): Promise<void> | void
}
