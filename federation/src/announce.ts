/**
 * announceProvider: what a provider host calls after it listens. Starts (or reuses) a directory node with the
 * host's identity seed and announces a record built from the provider's own public routes (`/v1/version`,
 * `/v1/models`, `/v1/policy`, `/v1/health`), re-read at every refresh so the queue depth stays current.
 */
import { WeftError } from '@weft/core'
import { createDirectoryNode, type DirectoryNode, type DirectoryNodeOptions } from './node.js'
import type { RecordInput, RecordModel, RecordPolicy, VerifiedRecord } from './provider-record.js'

export interface AnnounceProviderOptions extends Omit<DirectoryNodeOptions, 'seed'> {
  /** the provider's identity: its 32-byte Ed25519 secret key (seed), e.g. HostInit.identity.secretKey */
  seed: Uint8Array
  /** the provider's HTTP base URL as clients reach it, e.g. the url `host.listen()` returned */
  endpoint: string
  /** an already running node with the same seed (default: one is created and owned) */
  node?: DirectoryNode
  fetch?: typeof fetch
  /** signed endorsements of this provider (createEndorsement) to carry in every record */
  endorsements?: Uint8Array[]
  /**
   * every node of a multi-node provider (base URLs), asked afresh at every announcement: the record's `endpoints`,
   * the first of them its `endpoint` (spec/provider-record.md, "Several nodes, one record"); empty: `endpoint` alone
   */
  endpoints?: string[] | (() => string[] | Promise<string[]>)
  /** where the provider's routes are read to describe it (default `endpoint`; e.g. the node's own listen URL) */
  describeFrom?: string
}

export interface AnnouncedProvider {
  node: DirectoryNode
  record: VerifiedRecord
  /** announces offline, then stops the node if announceProvider created it */
  stop (options?: { withdraw?: boolean }): Promise<void>
}

interface ModelsBody { models: { name: string; revision: string; family: string; manifestDigest: string }[] }
interface PolicyBody { policies: ({ name: string } & Record<string, unknown>)[]; limits?: { maxBatchJobs?: number } }
interface HealthBody { queue?: { queued?: number } }
interface VersionBody { provider: string; publicKey: string }

const minimum = (values: unknown[]): number | undefined => {
  const numbers = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v))
  return numbers.length === 0 ? undefined : Math.min(...numbers)
}

/**
 * One policy summary for the record (spec/provider-record.md, "Policy summary"): the policy names, whether any
 * policy guards the weights (`closed`), the union of forbidden ops, the tightest per-save element limit and egress
 * limits, the shortest exfiltration horizon per model with the least bytes per parameter it assumes, and every summary as published. Clients route on these
 * fields: a Program one of them refuses is never sent to this provider.
 */
export function summarizePolicies (policies: PolicyBody['policies']): RecordPolicy {
  const summary: RecordPolicy = { name: policies.length === 0 ? 'open' : policies.map(p => p.name).join('+'), policies }
  const forbidden = new Set(policies.flatMap(p => Array.isArray(p.forbiddenOps) ? p.forbiddenOps.filter((op): op is string => typeof op === 'string') : []))
  const maxElementsPerSave = minimum(policies.map(p => (p.requiredReductions as { maxElementsPerSave?: unknown } | null | undefined)?.maxElementsPerSave))
  for (const field of ['egressPerDay', 'egressPerKeyPerDay', 'perJobCap']) {
    const value = minimum(policies.map(p => p[field]))
    if (value !== undefined) summary[field] = value
  }
  summary.forbiddenOps = [...forbidden].sort()
  if (maxElementsPerSave !== undefined) summary.maxElementsPerSave = maxElementsPerSave
  // closed: some policy guards what leaves (forbidden ops, reductions or egress limits), as the closed-model policy does
  summary.closed = forbidden.size > 0 || maxElementsPerSave !== undefined || ['egressPerDay', 'egressPerKeyPerDay', 'perJobCap'].some(f => summary[f] !== undefined)
  const horizons: Record<string, number> = {}
  for (const policy of policies) {
    const perModel = policy.exfiltrationHorizonDays
    if (typeof perModel !== 'object' || perModel === null) continue
    for (const [model, days] of Object.entries(perModel)) {
      const value = minimum([days, horizons[model]])
      if (value !== undefined) horizons[model] = value
    }
  }
  if (Object.keys(horizons).length > 0) summary.exfiltrationHorizonDays = horizons
  // the assumption behind the shortest horizon: the least bytes per parameter any policy's summary states
  const bytesPerParam = minimum(policies.map(p => (p.exfiltrationHorizon as { bytesPerParam?: unknown } | undefined)?.bytesPerParam))
  if (bytesPerParam !== undefined) summary.exfiltrationBytesPerParam = bytesPerParam
  return summary
}

/** Reads the provider's public routes into a record input. */
export async function describeProvider (endpoint: string, fetchImpl: typeof fetch = fetch): Promise<RecordInput & { provider: string; publicKey: string }> {
  const get = async <T>(path: string): Promise<T> => {
    const response = await fetchImpl(new URL(path, endpoint), { headers: { 'Weft-Protocol': '1' }, signal: AbortSignal.timeout(5000) })
    if (!response.ok) throw new WeftError('PROVIDER_UNAVAILABLE', `${endpoint}${path} answered ${response.status}`, { endpoint })
    return await response.json() as T
  }
  const [version, models, policy, health] = await Promise.all([get<VersionBody>('/v1/version'), get<ModelsBody>('/v1/models'), get<PolicyBody>('/v1/policy'), get<HealthBody>('/v1/health')])
  return {
    provider: version.provider, publicKey: version.publicKey, endpoint,
    models: models.models.map((m): RecordModel => ({ name: m.name, revision: m.revision, manifestDigest: m.manifestDigest, family: m.family })),
    policy: summarizePolicies(policy.policies),
    capacity: { queueDepth: health.queue?.queued ?? 0, maxBatch: Math.max(1, policy.limits?.maxBatchJobs ?? 1) },
  }
}

export async function announceProvider (options: AnnounceProviderOptions): Promise<AnnouncedProvider> {
  const owned = options.node === undefined
  const node = options.node ?? await createDirectoryNode({ ...options, seed: options.seed })
  try {
    const describe = async (): Promise<RecordInput> => ({ ...await describeProvider(options.describeFrom ?? options.endpoint, options.fetch), endpoint: options.endpoint })
    const first = await describeProvider(options.describeFrom ?? options.endpoint, options.fetch)
    // the endpoint must be this seed's provider, or clients would reject every job (and the record would lie)
    if (first.provider !== node.provider) {
      throw new WeftError('RECORD_INVALID', `${options.describeFrom ?? options.endpoint} is provider ${first.provider}, but the seed is ${node.provider}: pass the host's identity key`, { endpoint: options.endpoint, found: first.provider, expected: node.provider })
    }
    first.endpoint = options.endpoint
    const endorsements = options.endorsements ?? []
    const endpoints = options.endpoints
    let pending: RecordInput | null = first
    const record = await node.announce(async () => {
      const input = pending ?? await describe()
      pending = null
      const listed = endpoints === undefined ? [] : typeof endpoints === 'function' ? await endpoints() : endpoints
      return { ...input, ...(endorsements.length === 0 ? {} : { endorsements }), ...(listed.length === 0 ? {} : { endpoint: listed[0]!, endpoints: listed }) }
    })
    return {
      node, record,
      async stop (stopOptions = {}) {
        if (stopOptions.withdraw !== false) await node.withdraw()
        if (owned) await node.stop()
      },
    }
  } catch (error) {
    if (owned) await node.stop()
    throw error
  }
}
