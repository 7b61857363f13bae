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
  /** longest a policy may take to decide an admission (admissions are serialised): then it denies, naming the policy */
  policyTimeoutMs: number
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
}
