/** `onnxBackend()`: the BackendV1 plugin that runs Programs on onnxruntime-node by compiling them into the model graph. */
import type { AbortOptions, BackendV1, ModelHandleV1, ModelSource } from '@weft/core'
import { OPS } from '@weft/core'
import { loadModel } from '../load.js'
import { SessionCache } from '../runtime/session-cache.js'
import type { SessionInit } from '../runtime/session.js'
import { OnnxModelHandle, type CompiledSession } from './model-handle.js'

export interface OnnxBackendInit {
  /** compiled sessions kept per model (LRU); default 16 */
  sessionCacheSize?: number
  /** onnxruntime intra-op threads per session; default one per core */
  intraOpThreads?: number
  /** let onnxruntime prepack weights (faster at short sequences, slower compile); default false */
  prepacking?: boolean
}

export function onnxBackend (init: OnnxBackendInit = {}): BackendV1 {
  const session: SessionInit = {
    ...(init.intraOpThreads === undefined ? {} : { intraOpThreads: init.intraOpThreads }),
    ...(init.prepacking === undefined ? {} : { prepacking: init.prepacking }),
  }
  const handles = new Set<ModelHandleV1>()
  return {
    specificationVersion: 'v1',
    name: 'onnx',
    capabilities: new Set(['trace', ...Object.keys(OPS).map(op => `op:${op}`)]),
    async loadModel (source: ModelSource, options?: AbortOptions): Promise<OnnxModelHandle> {
      if (options?.signal?.aborted === true) throw new Error('aborted')
      const loaded = await loadModel(source.path, { session, name: source.name })
      const handle = new OnnxModelHandle(loaded, new SessionCache<CompiledSession>(init.sessionCacheSize ?? 16), session)
      handles.add(handle)
      return handle
    },
    async close (): Promise<void> {
      await Promise.all([...handles].map(h => h.dispose()))
      handles.clear()
    },
  }
}
