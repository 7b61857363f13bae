/**
 * @weft/host — the Weft provider: a hono app over a durable SQLite store that admits signed Programs, runs them
 * through BackendV1 plugins (in worker threads) under PolicyV1 plugins, and returns saves with signed receipts.
 *
 * @example
 * ```ts
 * import { createHost, workerBackend, closedModelPolicy } from '@weft/host'
 * const host = await createHost({
 *   dbPath: 'provider.db',
 *   backends: { onnx: workerBackend({ module: '@weft/onnx', factory: 'onnxBackend' }) },
 *   models: [{ name: 'demo-gpt2', path: 'models/demo-gpt2' }],
 *   policies: [closedModelPolicy({ egressPerDay: '50MB', egressPerKeyPerDay: '5MB' })],
 * })
 * const { url } = await host.listen({ port: 0 })
 * ```
 */
export { createHost } from './host.js'
export type { Host, HostInit } from './host.js'
export { DEFAULT_LIMITS, STORE_MAX_RESULT_BYTES } from './jobs/limits.js'
export type { HostLimits } from './jobs/limits.js'
export type { ModelConfig } from './models/model-registry.js'
export { workerBackend } from './engine/worker-backend.js'
export type { WorkerBackendInit } from './engine/worker-backend.js'
export { openPolicy } from './policy/open-policy.js'
export type { OpenPolicyInit } from './policy/open-policy.js'
export { allowListPolicy } from './policy/allow-list-policy.js'
export type { AllowListPolicyInit } from './policy/allow-list-policy.js'
export { closedModelPolicy, exfiltrationHorizonDays, defaultForbiddenOps } from './policy/closed-model-policy.js'
export { leastBytesPerParameter, reachableSaveDtypes, embeddingExactSites, weightDerivedNodes, PAYLOAD_BITS, type HorizonBasis, type ReachOptions } from './policy/horizon.js'
export type { ClosedModelPolicyInit } from './policy/closed-model-policy.js'
export { parseBytes } from './policy/components.js'
export type { PolicyComponents, PolicyFactory, EgressLedger } from './policy/components.js'
export { operatorHeaders, keyHeaders, OPERATOR_HEADER, KEY_HEADER } from './http/operator-auth.js'
export type { AdapterInfo } from './adapters/adapters.js'
export { registrationMessage } from './http/operator-routes.js'
export type { JobEventName } from './jobs/job-events.js'
