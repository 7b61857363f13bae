/**
 * @weft/core — the Program IR, the op table, deterministic CBOR, COSE_Sign1 envelopes, tensors, errors
 * and the plugin interfaces. Explicit named re-exports only: this is the reviewed public surface.
 */
export { PROGRAM_VERSION } from './ir/program.js'
export type { Program, ProgramNode, ProgramMode, ModelRef, Invoke, IndexItem, IndexSpec, Attrs, AttrValue, SourceLocation, SitePort } from './ir/program.js'
export type { DType, Tensor, TensorData } from './tensor/tensor.js'
export { numel } from './tensor/tensor.js'
export { ERROR_CODES } from './errors/codes.js'
export type { ErrorCode } from './errors/codes.js'
export { WeftError } from './errors/weft-error.js'
export type { WireError } from './errors/weft-error.js'
export type { Manifest, ModuleEntry, SiteSignature, SymDim, TokenizerInfo } from './manifest/manifest.js'
export type { BackendV1, ModelHandleV1, ModelSource, BatchJob, JobResult, JobStats, ScanEntry, RunOptions, AbortOptions } from './plugin/backend-v1.js'
export type { PolicyV1, PolicySummary, AdmissionRequest, Decision } from './plugin/policy-v1.js'
