/**
 * @weft/onnx — the onnxruntime-node engine: Hugging Face checkpoints (GPT-2, Llama, GPT-NeoX, Qwen2) and exported
 * .onnx files become graphs whose every module is a hook point; Programs are compiled into them and run.
 *
 * @example
 * ```ts
 * import { onnxBackend } from '@weft/onnx'
 * const backend = onnxBackend()
 * const model = await backend.loadModel({ name: 'demo-gpt2', path: 'models/demo-gpt2' })
 * const [result] = await model.run([{ id: 'job-1', program }])
 * ```
 */
export { onnxBackend } from './backend/onnx-backend.js'
export type { OnnxBackendInit } from './backend/onnx-backend.js'
export { loadModel } from './load.js'
export type { LoadOptions, LoadedModel } from './load.js'
export { buildModelGraph, supportedFamilies, readConfig } from './build/checkpoint.js'
export type { BuildOptions } from './build/checkpoint.js'
export { importOnnx } from './import/index.js'
export type { ImportOptions } from './import/index.js'
export { compile } from './compile/compile.js'
export type { CompiledProgram, CompileJob } from './compile/compile.js'
export { loadTokenizer, tokenizerInfo } from './tokenizer/tokenizer.js'
export type { TextTokenizer } from './tokenizer/tokenizer.js'
export { openCheckpoint, readSafetensorsHeader } from './safetensors/read.js'
export { writeSafetensors, readSafetensors } from './safetensors/write.js'
export { createSession, runGraph, sessionOptions } from './runtime/session.js'
export type { SessionInit, OptimizationLevel } from './runtime/session.js'
export { forwardBatch, padBatch } from './runtime/forward.js'
export type { ModelGraph, SiteBinding, GraphInputs } from './graph/model-graph.js'
export { SCOPE_KEY } from './graph/model-graph.js'
