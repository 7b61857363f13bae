/**
 * onnxruntime-node sessions for Weft graphs: spinning off (idle sessions must not burn cores), prepacking only when
 * asked (onnxBackend's 'auto' rule decides per model), external data resolved in the graph's folder; ORT ⇄ Weft tensors.
 */
import { toBinary } from '@bufbuild/protobuf'
import * as ort from 'onnxruntime-node'
import { WeftError, type DType, type Tensor } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import type { ModelGraph } from '../graph/model-graph.js'
import { sessionBytesEstimate } from './session-memory.js'

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all'

export interface SessionInit {
  /** ORT graph optimization level; default 'all' (see docs/decisions/2026-11-27-onnx-engine.md) */
  optimization?: OptimizationLevel
  /** let ORT repack MatMul weights at creation (faster at short sequences, slower creation, private copy); default false */
  prepacking?: boolean
  /** intra-op threads; default ORT's choice (one per core) */
  intraOpThreads?: number
  executionProviders?: string[]
  /**
   * onnxruntime's CPU arena (default true): each session holds the peak activation memory of its largest run for its
   * life, which the session cache charges through the RSS it measures. false frees activations after each run (flatter
   * RSS under churn, but large batches measured markedly slower; docs/decisions/2026-12-05-session-memory.md)
   */
  cpuMemArena?: boolean
}

export function sessionOptions (externalDataDir: string | null, init: SessionInit = {}): ort.InferenceSession.SessionOptions {
  const session: Record<string, string> = {
    'intra_op.allow_spinning': '0',
    'inter_op.allow_spinning': '0',
    disable_prepacking: init.prepacking === true ? '0' : '1',
  }
  if (externalDataDir !== null) session.model_external_initializers_file_folder_path = externalDataDir
  return {
    graphOptimizationLevel: init.optimization ?? 'all',
    enableCpuMemArena: init.cpuMemArena ?? true,
    executionProviders: init.executionProviders ?? ['cpu'],
    ...(init.intraOpThreads !== undefined ? { intraOpNumThreads: init.intraOpThreads } : {}),
    extra: { session },
  }
}

/** Creates a session for `model` (a ModelProto or its bytes) whose external data lives in `graph.externalDataDir`. */
export async function createSession (graph: Pick<ModelGraph, 'externalDataDir'>, model: onnx.ModelProto | Uint8Array,
  init: SessionInit = {}): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : toBinary(onnx.ModelProtoSchema, model)
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions(graph.externalDataDir, init))
  } catch (error) {
    throw new WeftError('MODEL_LOAD_FAILED', `onnxruntime could not create a session: ${String(error)}`, {}, { cause: error })
  }
}

/** `createSession` plus the session's estimated memory (runtime/session-memory.ts). */
export async function createSessionSized (graph: Pick<ModelGraph, 'externalDataDir'>, model: onnx.ModelProto,
  init: SessionInit = {}): Promise<{ session: ort.InferenceSession; bytes: number }> {
  const serialized = toBinary(onnx.ModelProtoSchema, model)
  const session = await createSession(graph, serialized, init)
  return { session, bytes: sessionBytesEstimate(model, serialized.byteLength, init.prepacking === true) }
}

const ORT_TO_WEFT: Record<string, DType> = {
  float32: 'float32', float64: 'float64', float16: 'float16', int64: 'int64', int32: 'int32', int8: 'int8', uint8: 'uint8', bool: 'bool',
}

export function fromOrt (tensor: ort.Tensor): Tensor {
  const dtype = ORT_TO_WEFT[tensor.type]
  if (dtype === undefined) throw new WeftError('EXECUTION_FAILED', `output dtype ${tensor.type} has no Weft equivalent`)
  // float16 comes back as Uint16Array (or Float16Array where it exists): view exactly its bytes as bit patterns
  const half = tensor.data as Uint16Array
  const data = dtype === 'float16' ? new Uint16Array(half.buffer, half.byteOffset, half.byteLength / 2) : tensor.data
  return { dtype, shape: [...tensor.dims], data: data as Tensor['data'] }
}

export function toOrt (tensor: Tensor): ort.Tensor {
  const type = tensor.dtype === 'bfloat16' ? undefined : tensor.dtype
  if (type === undefined) throw new WeftError('EXECUTION_FAILED', 'bfloat16 inputs are not supported by onnxruntime-node')
  return new ort.Tensor(type, tensor.data as never, [...tensor.shape])
}

/** Runs `session` on Weft tensors, fetching `outputs` (value names) only. */
export async function runGraph (session: ort.InferenceSession, feeds: Record<string, Tensor>, outputs: string[]): Promise<Record<string, Tensor>> {
  const ortFeeds: Record<string, ort.Tensor> = {}
  for (const [name, tensor] of Object.entries(feeds)) ortFeeds[name] = toOrt(tensor)
  let result: ort.InferenceSession.ReturnType
  try {
    result = await session.run(ortFeeds, outputs)
  } catch (error) {
    throw new WeftError('EXECUTION_FAILED', `onnxruntime run failed: ${String(error)}`, {}, { cause: error })
  }
  const out: Record<string, Tensor> = {}
  for (const name of outputs) out[name] = fromOrt(result[name] as ort.Tensor)
  return out
}
