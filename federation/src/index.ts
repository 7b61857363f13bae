/**
 * @weft/federation — the libp2p provider directory: signed provider records, a directory node (gossipsub topic
 * plus a record-set exchange for late joiners), expiry on a controllable clock, and provider selection.
 *
 * @example
 * ```ts
 * import { createDirectoryNode, ProviderSelector } from '@weft/federation'
 * // provider side: the host's identity seed is also its libp2p identity
 * const node = await createDirectoryNode({ seed, bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…'] })
 * await node.announce({ endpoint: url, models: [{ name: 'demo-gpt2', revision, manifestDigest, family: 'gpt2' }],
 *   policy: { name: 'open' }, capacity: { queueDepth: 0, maxBatch: 8 } })
 * // client side
 * const client = await createDirectoryNode({ bootstrap })
 * const [best] = await new ProviderSelector().rank(await client.find('demo-gpt2', { timeoutMs: 5000 }))
 * await node.withdraw(); await node.stop()
 * ```
 */
import './polyfill.js'

export { createDirectoryNode, DIRECTORY_TOPIC, DEFAULT_RECORD_LIFETIME_MS } from './node.js'
export type { DirectoryNode, DirectoryNodeOptions, FindOptions, RecordSource } from './node.js'
export { RecordSet } from './directory.js'
export type { DirectoryChange, DirectoryChangeType, ChangeListener, OfferResult, RecordSetOptions } from './directory.js'
export {
  signProviderRecord, verifyProviderRecord, buildProviderRecord, recordEndpoints,
  PROVIDER_RECORD_CONTENT_TYPE, RECORD_VERSION, MAX_RECORD_BYTES, MAX_RECORD_LIFETIME_SECONDS, DEFAULT_RECORD_SKEW_SECONDS,
} from './provider-record.js'
export type { ProviderRecord, RecordInput, RecordModel, RecordPolicy, RecordCapacity, RecordStatus, VerifiedRecord, RecordVerifyOptions } from './provider-record.js'
export { recordProblems, MAX_RECORD_ENDPOINTS } from './record-shape.js'
export {
  signEndorsement, verifyEndorsement, createEndorsement, endorses, endorsementProblems,
  ENDORSEMENT_CONTENT_TYPE, ENDORSEMENT_VERSION, MAX_ENDORSEMENT_BYTES, MAX_ENDORSEMENT_LIFETIME_SECONDS,
} from './endorsement.js'
export type { Endorsement, EndorsedModel, EndorsementVerifyOptions } from './endorsement.js'
export { identityFromSeed, peerIdOfPublicKey, publicKeyOfPeerId } from './identity.js'
export type { NodeIdentity } from './identity.js'
export { DIRECTORY_PROTOCOL, exchangeRecords } from './sync-protocol.js'
export { ProviderSelector } from './selection.js'
export type { Candidate, SelectorOptions, BanState } from './selection.js'
export { announceProvider, describeProvider, summarizePolicies } from './announce.js'
export type { AnnounceProviderOptions, AnnouncedProvider } from './announce.js'
