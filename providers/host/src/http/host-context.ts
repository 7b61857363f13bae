/** What the HTTP routes need from the host: one object built by createHost, so routes stay thin. */
import type { PolicyV1, PolicySummary } from '@weft/core'
import type { ModelRegistry } from '../models/model-registry.js'
import type { JobEvents } from '../jobs/job-events.js'
import type { Scheduler } from '../jobs/scheduler.js'
import type { HostLimits } from '../jobs/limits.js'
import type { Admitted } from '../jobs/admission.js'
import type { Store } from '../store/store.js'
import type { Adapters } from '../adapters/adapters.js'

export interface HostContext {
  store: Store
  registry: ModelRegistry
  scheduler: Scheduler
  events: JobEvents
  limits: HostLimits
  policies: readonly PolicyV1[]
  /** the provider id = key id of its signing key; the audience every envelope must name */
  providerId: string
  publicKey: Uint8Array
  startedAt: number
  now: () => number
  /** verifies, checks and queues (committed) a signed job; `program` is the decoded Program as it runs (adapter inits resolved) */
  admit (bytes: Uint8Array): Promise<Admitted>
  /** kept adapters (owner-scoped) */
  adapters: Adapters
  /**
   * A kept adapter's values for its owner, if the policies let them leave: checked and charged to the egress
   * ledger one at a time with admissions (budgets see every reservation). Returns the values file's bytes.
   */
  downloadAdapter (kid: string, name: string): Promise<{ bytes: Uint8Array; egressBytes: number; digest: string }>
  /** tightest remaining egress for this key today under the policies' published budgets (null = unbounded) */
  remainingEgress (kid: string): number | null
  policySummaries (): PolicySummary[]
  /** public keys allowed to call operator routes besides store keys with role 'operator' */
  operatorKeys: ReadonlyMap<string, Uint8Array>
  /** whether POST /v1/keys accepts researcher keys that prove possession without an operator signature */
  selfRegistration: boolean
}

export const PROTOCOL_VERSIONS = [1] as const
export const SOFTWARE = '@weft/host 0.1.0'
