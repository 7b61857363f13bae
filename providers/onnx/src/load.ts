/**
 * loadModel: a Hugging Face checkpoint folder (built in TypeScript), an exported .onnx file (imported), or a
 * hub name `org/name[@revision]` read from the Hugging Face cache (offline) →
 * a LoadedModel with its ModelGraph, tokenizer and forward helpers.
 */
import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { WeftError, isHubName, resolveHubModel, type Tensor } from '@weft/core'
import type { ModelGraph } from './graph/model-graph.js'
import { buildModelGraph, type BuildOptions } from './build/checkpoint.js'
import { importOnnx } from './import/index.js'
import { forwardBatch, ForwardSessions } from './runtime/forward.js'
import type { SessionInit } from './runtime/session.js'
import { loadTokenizer, type TextTokenizer } from './tokenizer/tokenizer.js'

export interface LoadOptions extends BuildOptions { session?: SessionInit }

export interface LoadedModel {
  graph: ModelGraph
  tokenizer: TextTokenizer | null
  /** sessions of this graph keyed by output set (prepacking/optimisation from `options.session`) */
  sessions: ForwardSessions
  /** one right-padded batch; outputs are site names (`transformer.h.0.attn`, `…:input`, `logits`) */
  forward (rows: number[][], outputs?: string[]): Promise<Record<string, Tensor>>
  /** builds the KV-cache variant of the graph, for generation (null for imported graphs) */
  buildKvGraph: (() => ModelGraph) | null
  dispose (): Promise<void>
}

export async function loadModel (source: string, options: LoadOptions = {}): Promise<LoadedModel> {
  if (!existsSync(source) && isHubName(source)) {
    // `org/name[@revision]`: the snapshot folder in the Hugging Face cache, named after the repo
    const hub = resolveHubModel(source)
    return await loadModel(hub.path, { ...options, name: options.name ?? hub.repo })
  }
  if (!existsSync(source)) throw new WeftError('MODEL_NOT_FOUND', `no such model file or folder: ${source}`, { path: source })
  const isFolder = statSync(source).isDirectory()
  let graph: ModelGraph
  let tokenizer: TextTokenizer | null = null
  if (isFolder) {
    graph = buildModelGraph(source, options)
    tokenizer = loadTokenizer(source)
  } else if (source.endsWith('.onnx')) {
    graph = await importOnnx(source, options.name !== undefined ? { name: options.name } : {})
    tokenizer = loadTokenizer(path.dirname(source))
  } else {
    throw new WeftError('MODEL_LOAD_FAILED', `${source} is neither a checkpoint folder nor an .onnx file`, { path: source })
  }
  const sessions = new ForwardSessions(graph, options.session)
  return {
    graph, tokenizer, sessions,
    forward: (rows, outputs = ['logits']) => forwardBatch(graph, sessions, rows, outputs),
    buildKvGraph: isFolder ? () => buildModelGraph(source, { ...options, kvCache: true }) : null,
    dispose: () => sessions.dispose(),
  }
}
