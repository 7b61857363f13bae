/**
 * Builds a ModelGraph from a Hugging Face checkpoint folder (config.json + safetensors + tokenizer.json):
 * picks the family builder from `model_type`, places the weights, assembles the manifest.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { WeftError, type Manifest } from '@weft/core'
import type { ModelGraph } from '../graph/model-graph.js'
import { ModuleTable } from '../manifest/modules.js'
import { revisionDigest } from '../manifest/revision.js'
import { openCheckpoint } from '../safetensors/read.js'
import { tokenizerInfo } from '../tokenizer/tokenizer.js'
import type { FamilyBuild } from './family.js'
import { GraphBuilder } from './graph-builder.js'
import { buildGpt2 } from './gpt2.js'
import { buildGptNeox } from './gpt_neox.js'
import { buildLlama } from './llama.js'
import { buildQwen2 } from './qwen2.js'
import type { BuildContext } from './layers.js'
import { WeightPlan } from './weights.js'
import { KvCollector } from './context.js'

type Builder = (ctx: BuildContext, config: Record<string, unknown>) => FamilyBuild

const FAMILIES: Record<string, Builder> = {
  gpt2: buildGpt2,
  gpt_neox: buildGptNeox,
  llama: buildLlama,
  qwen2: buildQwen2,
}

export const supportedFamilies = (): string[] => Object.keys(FAMILIES).sort()

export interface BuildOptions {
  /** folder for derived weight files and memoised digests; default `.weft/cache` under the working directory */
  cacheDir?: string
  /** manifest name; default the folder name */
  name?: string
  /** build the KV-cache variant used for generation (build/kv-cache.ts); the manifest is the same */
  kvCache?: boolean
}

function defaultCacheDir (): string {
  return process.env.WEFT_CACHE_DIR ?? path.resolve('.weft', 'cache')
}

export function readConfig (dir: string): Record<string, unknown> {
  const file = path.join(dir, 'config.json')
  if (!existsSync(file)) throw new WeftError('MODEL_LOAD_FAILED', `no config.json in ${dir}`, { dir })
  try {
    const config = JSON.parse(readFileSync(file, 'utf8'))
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error('not an object')
    return config
  } catch (error) {
    throw new WeftError('MODEL_LOAD_FAILED', `config.json in ${dir} is not a JSON object`, { dir }, { cause: error })
  }
}

export function buildModelGraph (dir: string, options: BuildOptions = {}): ModelGraph {
  const config = readConfig(dir)
  const family = String(config.model_type ?? '')
  const builder = FAMILIES[family]
  if (builder === undefined) {
    throw new WeftError('MODEL_LOAD_FAILED',
      `model_type '${family}' is not supported; supported families: ${supportedFamilies().join(', ')}`,
      { modelType: family, supported: supportedFamilies() })
  }
  const cacheRoot = options.cacheDir ?? defaultCacheDir()
  const checkpoint = openCheckpoint(dir)
  const g = new GraphBuilder()
  const kv = options.kvCache === true ? new KvCollector() : undefined
  const ctx: BuildContext = { g, w: new WeightPlan(checkpoint, g), m: new ModuleTable(), ...(kv === undefined ? {} : { kv }) }
  const built = builder(ctx, config)
  const revision = revisionDigest(dir, checkpoint.files, cacheRoot)
  const externalDataDir = ctx.w.finalize(cacheRoot, revision)
  const parameters = ctx.m.countParameters(checkpoint, built.isParameter)
  const name = options.name ?? path.basename(path.resolve(dir))
  const manifest: Manifest = {
    name, revision, family, config, parameters, modules: ctx.m.entries,
    tokenizer: tokenizerInfo(dir), vocabSize: built.vocabSize, maxPositions: built.maxPositions,
    params: [...ctx.w.params].map(([paramName, p]) => ({ name: paramName, shape: p.shape, dtype: p.dtype })),
  }
  return {
    model: g.toModel(name, { 'weft.family': family, 'weft.revision': revision }),
    externalDataDir,
    inputs: { inputIds: 'input_ids', attentionMask: 'attention_mask', ...(built.hasPositionIds ? { positionIds: 'position_ids' } : {}) },
    logits: built.logits,
    sites: ctx.m.sites,
    manifest,
    params: ctx.w.params,
    ...(kv === undefined ? {} : { kv: kv.spec() }),
  }
}
