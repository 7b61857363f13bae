/**
 * The graph generation compiles step Programs against: the KV-cache variant of the model graph plus hidden,
 * batch-wide sites (the final logits, every layer's present keys/values) that step Programs read and save so the
 * loop gets them back. Hidden sites have no 'batch' dim, so a read returns the whole batch tensor.
 */
import { WeftError, type ModuleEntry } from '@weft/core'
import type { ModelGraph, SiteBinding } from '../graph/model-graph.js'
import type { KvSpec } from '../graph/model-graph.js'

const HIDDEN_PREFIX = 'weft.gen.'
export const LOGITS_SITE = `${HIDDEN_PREFIX}logits`
export const presentSite = (layer: number, part: 'key' | 'value'): string => `${HIDDEN_PREFIX}present_${part}.${layer}`

export interface GenerationGraph {
  graph: ModelGraph
  kv: KvSpec
  vocab: number
}

export function generationGraph (kvGraph: ModelGraph): GenerationGraph {
  const kv = kvGraph.kv
  if (kv === undefined || kv.layers.length === 0) throw new WeftError('INTERNAL', 'generationGraph needs a KV-cache graph (built with kvCache: true)')
  const vocab = kvGraph.manifest.vocabSize
  const entry = (path: string, shape: (number | string)[]): ModuleEntry =>
    ({ path, kind: 'site', type: 'generation_internal', callable: false, parameters: 0, output: { shape: shape as never, dtype: 'float32' } })
  const modules: ModuleEntry[] = [entry(LOGITS_SITE, ['rows', 'new', vocab])]
  const sites = new Map<string, SiteBinding>(kvGraph.sites)
  sites.set(LOGITS_SITE, { output: kvGraph.logits })
  kv.layers.forEach((layer, i) => {
    for (const part of ['key', 'value'] as const) {
      modules.push(entry(presentSite(i, part), ['rows', kv.kvHeads, 'ctx', kv.headDim]))
      sites.set(presentSite(i, part), { output: part === 'key' ? layer.presentKey : layer.presentValue })
    }
  })
  const manifest = { ...kvGraph.manifest, modules: [...kvGraph.manifest.modules, ...modules] }
  return { graph: { ...kvGraph, manifest, sites }, kv, vocab }
}
