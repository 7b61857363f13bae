/**
 * Structural rules of a provider record (spec/provider-record.md), reported all at once as readable problems.
 * Unknown keys are allowed (and signed): adding an optional field is a backward-compatible change within v 1.
 */
const KID = /^ed25519:[0-9a-f]{32}$/
const MAX_MODELS = 256
const MAX_TEXT = 512
const MAX_ENDORSEMENTS = 8
const MAX_ENDORSEMENT_BYTES = 4096
/** a provider's node base URLs listed in one record (`endpoints`) */
export const MAX_RECORD_ENDPOINTS = 16
/** a record may claim at most this lifetime (expiresAt − issuedAt) */
export const MAX_RECORD_LIFETIME_SECONDS = 24 * 3600

type Fields = Record<string, unknown>

const isMap = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !(value instanceof Map)
const isUint = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
const isText = (value: unknown, max = MAX_TEXT): value is string => typeof value === 'string' && value.length > 0 && value.length <= max

function endpointProblem (endpoint: unknown, field = '`endpoint`'): string | null {
  if (!isText(endpoint, 2048)) return `${field} must be a non-empty URL string`
  let url: URL
  try { url = new URL(endpoint) } catch { return `${field} '${endpoint.slice(0, 80)}' is not a URL` }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${field} must be http(s), got ${url.protocol}`
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return `${field} must be a base URL without credentials, query or fragment`
  return null
}

/** `endpoints` (optional): 1 to 16 distinct base URLs, each like `endpoint`, the first one equal to `endpoint`. */
function endpointsProblems (endpoints: unknown, endpoint: unknown): string[] {
  if (endpoints === undefined) return []
  if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.length > MAX_RECORD_ENDPOINTS) return [`\`endpoints\` must be an array of 1 to ${MAX_RECORD_ENDPOINTS} base URLs`]
  const problems = endpoints.map((e, i) => endpointProblem(e, `endpoints[${i}]`)).filter((p): p is string => p !== null)
  if (new Set(endpoints).size !== endpoints.length) problems.push('`endpoints` lists a URL twice')
  if (endpoints[0] !== endpoint) problems.push('`endpoints[0]` must equal `endpoint` (the preferred node, what verifiers of `endpoint` alone use)')
  return problems
}

function modelProblems (models: unknown): string[] {
  if (!Array.isArray(models)) return ['`models` must be an array']
  if (models.length > MAX_MODELS) return [`\`models\` lists ${models.length} models, at most ${MAX_MODELS}`]
  const problems: string[] = []
  const names = new Set<string>()
  models.forEach((model, i) => {
    if (!isMap(model)) { problems.push(`models[${i}] must be a map`); return }
    for (const key of ['name', 'revision', 'manifestDigest', 'family']) {
      if (!isText(model[key])) problems.push(`models[${i}].${key} must be a non-empty string`)
    }
    if (typeof model.name === 'string') {
      if (names.has(model.name)) problems.push(`models[${i}]: model '${model.name}' is listed twice`)
      names.add(model.name)
    }
  })
  return problems
}

/** The base URLs of a record's provider, preferred first: `endpoints`, or `endpoint` alone (pure: the SDK's routing uses it). */
export function recordEndpoints (record: { endpoint: string; endpoints?: readonly string[] }): string[] {
  return record.endpoints !== undefined && record.endpoints.length > 0 ? [...record.endpoints] : [record.endpoint]
}

/** Every structural problem of a decoded record payload (empty when well-formed). */
export function recordProblems (record: unknown): string[] {
  if (!isMap(record)) return ['the payload must be a map with text keys']
  const problems: string[] = []
  if (record.v !== 1) problems.push(`\`v\` must be 1, got ${JSON.stringify(record.v) ?? 'nothing'}`)
  if (typeof record.provider !== 'string' || !KID.test(record.provider)) problems.push('`provider` must be a key id `ed25519:` + 32 hex digits')
  if (!isText(record.peer, 128)) problems.push('`peer` must be a libp2p peer id string')
  const endpoint = endpointProblem(record.endpoint)
  if (endpoint !== null) problems.push(endpoint)
  problems.push(...endpointsProblems(record.endpoints, record.endpoint))
  if (record.status !== 'online' && record.status !== 'offline') problems.push("`status` must be 'online' or 'offline'")
  problems.push(...modelProblems(record.models))
  if (!isMap(record.policy) || !isText(record.policy.name)) problems.push('`policy` must be a map with a `name`')
  const capacity = record.capacity
  if (!isMap(capacity) || !isUint(capacity.queueDepth) || !isUint(capacity.maxBatch) || capacity.maxBatch < 1) {
    problems.push('`capacity` must be { queueDepth: uint, maxBatch: uint ≥ 1 }')
  }
  if (record.endorsements !== undefined && (!Array.isArray(record.endorsements) || record.endorsements.length > MAX_ENDORSEMENTS || !record.endorsements.every(e => e instanceof Uint8Array && e.length > 0 && e.length <= MAX_ENDORSEMENT_BYTES))) {
    problems.push(`\`endorsements\` must be at most ${MAX_ENDORSEMENTS} signed endorsements (bstr of at most ${MAX_ENDORSEMENT_BYTES} bytes)`)
  }
  if (!isUint(record.seq)) problems.push('`seq` must be an unsigned integer')
  if (!isUint(record.issuedAt) || !isUint(record.expiresAt)) problems.push('`issuedAt` and `expiresAt` must be unsigned integers (seconds)')
  else if (record.expiresAt <= record.issuedAt) problems.push('`expiresAt` must be after `issuedAt`')
  else if (record.expiresAt - record.issuedAt > MAX_RECORD_LIFETIME_SECONDS) problems.push(`a record lives at most ${MAX_RECORD_LIFETIME_SECONDS} s (expiresAt − issuedAt)`)
  return problems
}
