/**
 * @weft/core — the Program IR, the op table, validation, deterministic CBOR, COSE_Sign1 envelopes and receipts,
 * tensors, the reference interpreter, errors and the plugin interfaces. Explicit named re-exports only.
 *
 * @example
 * ```ts
 * import { validateProgram, encodeProgram, programDigest, createRequestEnvelope, generateKeyPair, keyId } from '@weft/core'
 * const program = { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [328, 370] }],
 *   nodes: [['read', { site: 'transformer.h.3', port: 'output', invoke: 0 }, []], ['save', { name: 'h3' }, [0]]] }
 * validateProgram(program, manifest)            // [] when valid, else every issue
 * programDigest(program)                        // 'sha256:…' of encodeProgram(program)
 * const { secretKey, publicKey } = generateKeyPair()
 * createRequestEnvelope({ program, audience: 'provider-id', secretKey, kid: keyId(publicKey) })  // COSE_Sign1 bytes
 * ```
 */
export { PROGRAM_VERSION } from './ir/program.js'
export type { Program, ProgramNode, ProgramMode, ModelRef, Invoke, IndexItem, IndexSpec, Attrs, AttrValue, SourceLocation, SitePort, GenerateOptions, GenerateStrategy, Step } from './ir/program.js'
export type { Trace, ParamDecl, ParamInit, OptimizerKind, OptimizerSpec, TrainSpec, KeepSpec, AdapterAttachment, AdapterInfo, TrainingSummary } from './ir/program.js'
export { Optimizer, type OptimizerState } from './train/optimizers.js'
export { TRAIN_LOSS_SAVE, MAX_TRAIN_STEPS, MAX_PARAM_ELEMENTS, NAME_PATTERN, trainSteps, trainBatch, traceCount, traceProgram, normalInit, initParam, splitmix64 } from './ir/session.js'
export { nodeSteps, checkGenerate, generatedSaveName, MAX_SEED } from './ir/generate.js'
export type { NodeStep } from './ir/generate.js'
export type { DType, Tensor, TensorData } from './tensor/tensor.js'
export { numel, DTYPE_BYTES } from './tensor/tensor.js'
export { ERROR_CODES } from './errors/codes.js'
export type { ErrorCode } from './errors/codes.js'
export { WeftError } from './errors/weft-error.js'
export type { WireError } from './errors/weft-error.js'
export type { Manifest, ModuleEntry, SiteSignature, SymDim, TokenizerInfo } from './manifest/manifest.js'
export type { BackendV1, ModelHandleV1, ModelSource, BatchJob, JobResult, JobStats, ScanEntry, RunOptions, AbortOptions, TrainingReport, TrainingCheckpoint, CheckpointCadence } from './plugin/backend-v1.js'
export { TRAIN_CHECKPOINT_STAGE } from './plugin/backend-v1.js'
export type { PolicyV1, PolicySummary, AdmissionRequest, DownloadRequest, Decision } from './plugin/policy-v1.js'
export type { ParamEntry } from './manifest/manifest.js'
export { familyAliases, resolveAlias, type FamilyAliases } from './manifest/aliases.js'

// tensors
export { tensor, toNested, isTensor, getNumber } from './tensor/create.js'
export { halfToNumber } from './tensor/half.js'
export type { NestedArray } from './tensor/create.js'

// op table
export { OPS, OP_NAMES, getOp, isOpName, isModelOp, isTensorOp } from './ops/table.js'
export type { OpName, TensorOpName } from './ops/table.js'
export { SYMBOLIC_DIM_ESTIMATE } from './ops/types.js'
export type { OpDef, TensorOpDef, Kernel, OpFlag, OpExample, AttrSchema, AttrKind, ValueType, Dim, InferContext, Nested } from './ops/types.js'
export { sliceRange } from './ops/index-spec.js'
export { DTYPES } from './ops/elementwise.js'
export { promote, normAxis, wrapAxis } from './ops/rules.js'
export { cacheProgram, cachePaths, type CacheOptions } from './ir/cache-program.js'
export { prependNodes, instanceFragments, type NodePrefix } from './ir/prepend.js'
export { textTokenizer, type TextTokenizer, type TokenizerFile } from './tokenizer/text-tokenizer.js'

// validation
export { validateProgram, assertValidProgram, inferProgramTypes, analyzeProgram, analyzeValidProgram, programCost, trainingCost, inferContext } from './ir/validate.js'
export type { ValidationIssue, ProgramAnalysis } from './ir/validate.js'
export { siteTimes } from './ir/causality.js'
export { programStructureProblems } from './ir/structure.js'

// CBOR
export { encodeCbor, CborTag } from './cbor/encode.js'
export { decodeCbor, DEFAULT_DECODE_LIMITS } from './cbor/decode.js'
export type { DecodeLimits } from './cbor/decode.js'
export { encodeProgram, decodeProgram, programDigest, sha256Digest } from './cbor/program-codec.js'
export { toHex, fromHex, bytesEqual } from './cbor/hex.js'

// COSE_Sign1 envelopes, keys, receipts
export { generateKeyPair, keyPairFromSeed, publicKeyOf, keyId, signBytes, verifyBytes, keyCacheSizes, KEY_CACHE_LIMITS } from './cose/keys.js'
export type { KeyPair } from './cose/keys.js'
export { signEnvelope, verifyEnvelope, sigStructure, protectedHeaderBytes, ALG_EDDSA } from './cose/sign1.js'
export type { SignInput, VerifyOptions, VerifiedEnvelope, ProtectedHeader } from './cose/sign1.js'
export { createRequestEnvelope, openRequestEnvelope, requestDigest, REQUEST_CONTENT_TYPE, DEFAULT_TTL_SECONDS } from './cose/request.js'
export type { RequestInput, OpenedRequest, OpenRequestOptions } from './cose/request.js'
export { signReceipt, verifyReceipt, resultDigest, RECEIPT_CONTENT_TYPE } from './cose/receipt.js'
export type { Receipt } from './cose/receipt.js'
export { signRequest, requestSignatureMessage, parseRequestSignature, REQUEST_SIGNATURE_HEADERS } from './cose/signed-request.js'
export type { RequestSignaturePurpose, RequestSignatureInput, ParsedRequestSignature } from './cose/signed-request.js'

// reference interpreter
export { evalOp, interpretProgram } from './reference/interpret.js'
export type { AccessResolver } from './reference/interpret.js'
export { toJsonForm, fromJsonForm } from './cbor/json-form.js'

// Files on disk: key files, the Hugging Face hub cache
export { newKeyFile, writeKeyFile, loadKey, resolveKey, keyFileModeWarning, onKeyFileWarning } from './files/key-file.js'
export type { KeyFile, LoadedKey, KeyInput } from './files/key-file.js'
export { hubCacheDir, parseHubName, resolveHubModel, isHubName } from './files/hf-cache.js'
export type { HubModel } from './files/hf-cache.js'
export { saveTensors, encodeSafetensors, encodeNpy, flattenTensors, writeParts } from './files/tensor-files.js'
export type { SavedValues } from './files/tensor-files.js'
export { UsageError, usageErrorFrom, intFlag } from './cli/usage.js'
export { progress } from './cli/progress.js'
export type { Progress, ProgressOptions } from './cli/progress.js'
