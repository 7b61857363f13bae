/** `onnxBackend()`: the BackendV1 plugin that runs Programs on onnxruntime-node by compiling them into the model graph. */
import type { AbortOptions, BackendV1, ModelHandleV1, ModelSource } from '@weft/core'
import { OPS, WeftError } from '@weft/core'
import { loadModel } from '../load.js'
import { SessionCache } from '../runtime/session-cache.js'
import { initializerBytes } from '../runtime/session-memory.js'
import type { SessionInit } from '../runtime/session.js'
import type { ModelGraph } from '../graph/model-graph.js'
import { OnnxModelHandle, type CompiledSession } from './model-handle.js'

export interface OnnxBackendInit {
  /** compiled sessions kept per model (LRU); default 16 */
  sessionCacheSize?: number
  /**
   * memory the compiled sessions of one model may hold together (trace and generation caches each), in bytes: each
   * is charged max(its estimate — graph + weights it loads + prepacked copy —, the RSS growth of its creation and
   * first run); least recently used sessions are released beyond it. Default 2 GiB (DEFAULT_SESSION_CACHE_BYTES)
   */
  sessionCacheBytes?: number
  /** onnxruntime's CPU arena per session (default true; see SessionInit.cpuMemArena) */
  cpuMemArena?: boolean
  /** onnxruntime intra-op threads per session; default one per core */
  intraOpThreads?: number
  /**
   * let onnxruntime prepack MatMul weights in every session: 1.1–1.8× faster forwards, but 4× slower session
   * creation and a private copy of the weights per session. Default 'auto': on when the weights times the sessions
   * that may be alive (`sessionCacheSize` + the plain forward's) fit in `prepackingBudgetBytes`
   * (docs/decisions/2026-11-27-onnx-engine.md)
   */
  prepacking?: boolean | 'auto'
  /** memory the 'auto' rule may spend on prepacked weight copies per model; default 2 GiB */
  prepackingBudgetBytes?: number
}

export const DEFAULT_PREPACKING_BUDGET = 2 * 2 ** 30
export const DEFAULT_SESSION_CACHE_BYTES = 2 * 2 ** 30

export function onnxBackend (init: OnnxBackendInit = {}): BackendV1 {
  const capacity = init.sessionCacheSize ?? 16
  const maxBytes = init.sessionCacheBytes ?? DEFAULT_SESSION_CACHE_BYTES
  if (!(maxBytes > 0)) throw new WeftError('BACKEND_CAPABILITY_MISSING', `sessionCacheBytes must be a positive number of bytes, got ${maxBytes}`)
  const handles = new Set<ModelHandleV1>()
  return {
    specificationVersion: 'v1',
    name: 'onnx',
    capabilities: new Set(['trace', 'generate', 'grad', ...Object.keys(OPS).map(op => `op:${op}`)]),
    async loadModel (source: ModelSource, options?: AbortOptions): Promise<OnnxModelHandle> {
      if (options?.signal?.aborted === true) throw new WeftError('JOB_CANCELLED', 'model load aborted before it started')
      const base: SessionInit = { ...(init.intraOpThreads === undefined ? {} : { intraOpThreads: init.intraOpThreads }), ...(init.cpuMemArena === undefined ? {} : { cpuMemArena: init.cpuMemArena }) }
      const loaded = await loadModel(source.path, { session: base, name: source.name })
      const prepacking = init.prepacking === undefined || init.prepacking === 'auto'
        ? autoPrepacking(weightBytes(loaded.graph), capacity + 1, init.prepackingBudgetBytes ?? DEFAULT_PREPACKING_BUDGET)
        : init.prepacking
      const session: SessionInit = { ...base, prepacking }
      loaded.sessions.init = session
      const handle = new OnnxModelHandle(loaded, new SessionCache<CompiledSession>({ capacity, maxBytes }), session, () => handles.delete(handle), { capacity, maxBytes })
      handles.add(handle)
      return handle
    },
    async close (): Promise<void> {
      await Promise.all([...handles].map(h => h.dispose()))
      handles.clear()
    },
  }
}

/** Prepacking keeps one private copy of (about) every weight per session: allow it while the worst case fits the budget. */
export function autoPrepacking (bytes: number, sessions: number, budget: number): boolean {
  return bytes * sessions <= budget
}

/** Bytes of the graph's initializers (what prepacking would copy per session). */
export function weightBytes (graph: ModelGraph): number { return initializerBytes(graph.model) }
