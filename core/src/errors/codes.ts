/** Closed registry of Weft error codes: HTTP status and whether a retry can help. spec/errors.md is generated from it. */
export const ERROR_CODES = {
  PROGRAM_INVALID: { status: 400, retryable: false, meaning: 'The Program is malformed or does not type-check against the model manifest.' },
  DECODE_FAILED: { status: 400, retryable: false, meaning: 'Bytes are not valid (bounded, deterministic) CBOR of the expected structure.' },
  ENVELOPE_INVALID: { status: 400, retryable: false, meaning: 'The COSE_Sign1 envelope is structurally wrong (headers, algorithm, content type).' },
  SIGNATURE_INVALID: { status: 401, retryable: false, meaning: 'The signature does not verify under the named key.' },
  KEY_UNKNOWN: { status: 401, retryable: false, meaning: 'The key id is not registered with this provider.' },
  KEY_REVOKED: { status: 401, retryable: false, meaning: 'The key was revoked by the operator.' },
  AUDIENCE_MISMATCH: { status: 401, retryable: false, meaning: 'The envelope is addressed to another provider.' },
  MESSAGE_EXPIRED: { status: 401, retryable: false, meaning: 'The envelope expired (beyond the allowed clock skew).' },
  MESSAGE_NOT_YET_VALID: { status: 401, retryable: false, meaning: 'The envelope is issued in the future (beyond the allowed clock skew).' },
  NONCE_REPLAYED: { status: 401, retryable: false, meaning: 'The nonce was already used: a replayed request.' },
  POLICY_DENIED: { status: 403, retryable: false, meaning: 'The provider policy refuses this request.' },
  MODEL_NOT_FOUND: { status: 404, retryable: false, meaning: 'No such model (or revision) on this host.' },
  JOB_NOT_FOUND: { status: 404, retryable: false, meaning: 'No such job.' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, meaning: 'The body or Program exceeds a size or cost limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, meaning: 'Wrong content type.' },
  PROTOCOL_VERSION_UNSUPPORTED: { status: 426, retryable: false, meaning: 'Client and provider share no protocol version.' },
  EGRESS_BUDGET_EXCEEDED: { status: 429, retryable: true, meaning: 'The result would exceed an egress budget; details say how much is left.' },
  RATE_LIMITED: { status: 429, retryable: true, meaning: 'Too many requests or concurrent jobs for this key.' },
  EXECUTION_FAILED: { status: 422, retryable: false, meaning: 'The Program failed while running (e.g. a shape mismatch only known at run time).' },
  JOB_CANCELLED: { status: 409, retryable: false, meaning: 'The job was cancelled or hit its time limit.' },
  BACKEND_CAPABILITY_MISSING: { status: 501, retryable: false, meaning: 'The backend cannot run an op or mode this Program uses.' },
  MODEL_LOAD_FAILED: { status: 500, retryable: false, meaning: 'A checkpoint or ONNX file could not be loaded (unknown family, missing weights, bad file).' },
  PROVIDER_UNAVAILABLE: { status: 503, retryable: true, meaning: 'The provider cannot take work now.' },
  INTERNAL: { status: 500, retryable: true, meaning: 'A bug on the provider side; the job is not charged.' },
} as const satisfies Record<string, { status: number; retryable: boolean; meaning: string }>

export type ErrorCode = keyof typeof ERROR_CODES
