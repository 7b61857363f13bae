/** Host-wide limits with their defaults; published in GET /v1/policy so clients can check before signing. */
export interface HostLimits {
  /** largest request body accepted (checked before parsing) */
  maxBodyBytes: number
  maxProgramNodes: number
  maxInvokes: number
  /** upper bound on the Program's summed op cost estimate (core's `programCost`) */
  maxProgramCost: number
  /** most optimizer steps one training Program may ask for (PAYLOAD_TOO_LARGE, details.limit 'maxTrainSteps') */
  maxTrainSteps: number
  /**
   * engine speed in cost units (core's `programCost`) per millisecond, used to refuse a session or training Program
   * whose estimated run time exceeds its time limit before it runs; null (default): learned per model from the jobs
   * it ran (the fastest observed, so only Programs that surely cannot fit are refused)
   */
  engineCostPerMs: number | null
  /** default and largest per-job time limit (a policy may lower it) */
  jobTimeoutMs: number
  /** queued + running jobs one key may have */
  maxConcurrentJobsPerKey: number
  /** accepted clock difference for iat/exp */
  skewSeconds: number
  /** how long results stay retrievable */
  resultRetentionMs: number
  /** co-tenant batching: how long the scheduler waits for more jobs when the engine is idle (0: start at once; jobs
   *  arriving while the engine is busy are batched anyway) */
  batchWindowMs: number
  /** most jobs in one forward pass */
  maxBatchJobs: number
  /** a job that was running when the provider stopped is retried until it has run this many times */
  maxAttempts: number
  /** largest estimated result (saves' tensor bytes) one job may have; refused at admission (RESULT_TOO_LARGE), and a
   *  computed result over it is not stored. At most STORE_MAX_RESULT_BYTES (what the store can hold). */
  maxResultBytesPerJob: number
  /** largest sum of estimated result bytes of one key's queued + running jobs (RATE_LIMITED until some end) */
  maxResultBytesInFlightPerKey: number
  /** most saves (named results) one job may have (RESULT_TOO_LARGE) */
  maxSaves: number
  /** largest total UTF-8 size of a job's text invokes, checked before tokenizing (PAYLOAD_TOO_LARGE) */
  maxTextBytes: number
  /** longest envelope lifetime (exp − iat) accepted (MESSAGE_LIFETIME_TOO_LONG); nonces are kept at most this + skew */
  maxEnvelopeLifetimeSeconds: number
  /** longest a policy may take to decide an admission (admissions are serialised): then it denies, naming the policy */
  policyTimeoutMs: number
  /**
   * a running training job's state is stored (a checkpoint a job run again after a crash or take-over resumes from)
   * at most every this many steps AND every `checkpointEveryMs` — whichever comes later; 0: no checkpoints
   */
  checkpointEverySteps: number
  checkpointEveryMs: number
}

export const DEFAULT_LIMITS: HostLimits = {
  maxBodyBytes: 4 * 2 ** 20,
  maxProgramNodes: 10_000,
  maxInvokes: 64,
  maxProgramCost: 5e12,
  maxTrainSteps: 10_000,
  engineCostPerMs: null,
  jobTimeoutMs: 60_000,
  maxConcurrentJobsPerKey: 16,
  skewSeconds: 60,
  resultRetentionMs: 24 * 3600_000,
  batchWindowMs: 0,
  maxBatchJobs: 32,
  maxAttempts: 2,
  policyTimeoutMs: 2_000,
  maxResultBytesPerJob: 64 * 2 ** 20,
  maxResultBytesInFlightPerKey: 256 * 2 ** 20,
  maxSaves: 256,
  maxTextBytes: 256 * 2 ** 10,
  maxEnvelopeLifetimeSeconds: 3600,
  checkpointEverySteps: 10,
  checkpointEveryMs: 30_000,
}

/**
 * The most bytes of saves one stored result may have: SQLite's default SQLITE_MAX_LENGTH is 1e9 bytes per value (the
 * driver's "too big" error above it), less room for the CBOR framing of the saves. Results are refused above
 * `maxResultBytesPerJob`, which may not exceed this (docs/decisions/2026-12-05-result-size-limits.md).
 */
export const STORE_MAX_RESULT_BYTES = 900_000_000

/** Throws (a configuration error at start) when limits contradict each other or the store's capacity. */
export function checkLimits (limits: HostLimits): void {
  if (!(limits.maxResultBytesPerJob > 0 && limits.maxResultBytesPerJob <= STORE_MAX_RESULT_BYTES)) {
    throw new Error(`maxResultBytesPerJob must be between 1 and ${STORE_MAX_RESULT_BYTES} bytes (what the store holds), not ${limits.maxResultBytesPerJob}`)
  }
  for (const name of ['maxResultBytesInFlightPerKey', 'maxSaves', 'maxTextBytes', 'maxEnvelopeLifetimeSeconds'] as const) {
    if (!(limits[name] > 0)) throw new Error(`${name} must be positive, not ${limits[name]}`)
  }
  for (const name of ['checkpointEverySteps', 'checkpointEveryMs'] as const) {
    if (!(Number.isInteger(limits[name]) && limits[name] >= 0)) throw new Error(`${name} must be a whole number ≥ 0, not ${limits[name]}`)
  }
}
