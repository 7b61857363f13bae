/**
 * @weft/sdk — NNsight-style tracing in TypeScript. A trace callback records a signed-able, declarative Program
 * through proxies that mirror the model's module tree; an Executor (embedded or remote) runs it.
 *
 * @example
 * ```ts
 * import { Weft, type GPT2 } from '@weft/sdk'
 * const weft = await Weft.local()
 * const model = await weft.model<GPT2>('demo-gpt2')
 * const out = await model.trace('The capital of France is', (m) => ({
 *   logits: m.lm_head.output.at(0, -1).save(),
 * }))
 * console.log(model.topTokens(out.logits, 3))      // [{ token: ' Paris', … }, …]
 * await weft.close()
 * ```
 */
export { Weft } from './weft.js'
export { loadKey, resolveKey, newKeyFile, writeKeyFile } from '@weft/core'
export type { KeyInput, LoadedKey, KeyFile } from '@weft/core'
export { saveTensors } from '@weft/core'
export type { SavedValues } from '@weft/core'
export type { RemoteConnectOptions } from './weft.js'
export { Model } from './model.js'
export type { TraceOptions, TraceResult, Recorded, SingleFn, MultiFn, TopToken, SessionResult } from './model.js'
export { SessionBuilder, ParamRef, lossCurve } from './session/session.js'
export type { ParamOptions, ParamInitOption, TrainOptions } from './session/session.js'
export { AppliedAdapter, Probe, crossEntropy, mse } from './session/adapters.js'
export type { Lora, LoraOptions, SteerOptions, ProbeOptions } from './session/session.js'
export type { AdapterInfo } from './executor.js'
export type { EditFn, EditOptions } from './edit/edit.js'
export { Tensor } from './tensor/tensor.js'
export { Steps, GenerateTracer } from './generate/steps.js'
export type { GenerateOptions, Generated, GeneratedBatch, GenerateFn, GenerateBatchFn, GeneratedToken } from './generate/generate.js'
export type { NestedArray } from './tensor/tensor.js'
export type { IndexArg } from './tensor/indexing.js'
export { ValueProxy, concat, stack, where } from './trace/value-proxy.js'
export { einsum, exp, log, sin, cos, tanh, sigmoid, erf, gelu, silu } from './trace/value-proxy.js'
export type { Operand, ReduceOptions, GradTargets, Gradients } from './trace/value-proxy.js'
export { SiteProxy, SiteSlice } from './trace/site-proxy.js'
export type { SiteAddress } from './trace/site-proxy.js'
export type { Envoy, ModuleEnvoy, ListEnvoy, InputSites } from './trace/envoy.js'
export { Tracer } from './trace/tracer.js'
export type { Resolved, Scanned, TraceInput } from './trace/tracer.js'
export type { GPT2, GPT2Block, GPT2Attention, GPT2MLP, Llama, LlamaDecoderLayer, LlamaAttention, LlamaMLP, StandardNames, AttentionInputs, RotaryAttentionInputs, HiddenInputs, TokenEmbeddingInputs, PositionEmbeddingInputs, RotaryEmbeddingInputs, Qwen2, GPTNeoX, GPTNeoXLayer, GPTNeoXAttention, GPTNeoXMLP } from './families/model-trees.js'
export { LocalExecutor } from './local/local-executor.js'
export type { LocalOptions } from './local/local-executor.js'
export { defaultModelsDir } from './local/model-files.js'
export type { Executor, RunResult, RunOptions, RunProgress, ModelInfo, SyncTokenizer, TrainingOutcome, KeptAdapter } from './executor.js'
export { connectRemote, RemoteExecutor } from './remote/index.js'
export type { ConnectOptions, AdapterValues, EgressStatus } from './remote/index.js'
export { connectRouted, RoutingExecutor, shouldFailover } from './routing/index.js'
export type { DiscoverOptions, DirectoryLike, RoutingOptions, RouteEvent, ProviderChoice, RouteChoice, TrustOptions } from './routing/index.js'
