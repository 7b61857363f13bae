/**
 * What a family builder carries while it builds: the graph, the weight plan, the module table and, for the KV-cache
 * variant, the collector of the cache inputs/outputs. A leaf of build/ (types and the collector only), so layers.ts
 * and kv-cache.ts can both use it without importing each other's context.
 */
import type { ModuleTable } from '../manifest/modules.js'
import type { KvLayer, KvSpec } from '../graph/model-graph.js'
import type { GraphBuilder } from './graph-builder.js'
import type { WeightPlan } from './weights.js'

export interface BuildContext {
  g: GraphBuilder; w: WeightPlan; m: ModuleTable
  /** set when building the KV-cache variant (build/kv-cache.ts) */
  kv?: KvCollector
}

/** Collects the cache inputs/outputs while a family builder runs with `ctx.kv` set. */
export class KvCollector {
  readonly layers: KvLayer[] = []
  kvHeads = 0
  headDim = 0
  constructor (readonly positions = 'position_ids') {}
  spec (): KvSpec { return { layers: this.layers, kvHeads: this.kvHeads, headDim: this.headDim } }
}
