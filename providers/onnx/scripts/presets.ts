/**
 * Named checkpoint presets: benchmark-size models (gpt2-small, llama-1b) and tiny ones that exercise the
 * loaders' family, dtype and sharding paths. Tiny presets use std 0.1 so attention patterns are far from uniform.
 */
import { existsSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WeftError } from '@weft/core'
import { writeRandomCheckpoint, type CheckpointDims, type CheckpointFamily, type CheckpointOptions } from './checkpoint.js'

export interface CheckpointPreset { family: CheckpointFamily; dims: CheckpointDims; options: CheckpointOptions; note?: string }

const tinyLlama: CheckpointDims = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176 }
const tinyNeox: CheckpointDims = { layers: 2, hidden: 64, heads: 4, rotaryPct: 0.25, parallelResidual: true }
const tiny: CheckpointOptions = { std: 0.1 }

export const CHECKPOINT_PRESETS: Record<string, CheckpointPreset> = {
  'gpt2-small': {
    family: 'gpt2', dims: { layers: 12, hidden: 768, heads: 12, vocab: 50257, maxPositions: 1024 }, options: {},
    note: 'vocab 50257 while the bundled tokenizer has 4096 tokens: fine for benchmarks, ids ≥ 4096 are never produced',
  },
  'llama-1b': {
    family: 'llama', dims: { layers: 22, hidden: 2048, heads: 32, kvHeads: 8, intermediate: 5632, vocab: 32000, maxPositions: 2048 }, options: {},
    note: 'TinyLlama-1.1B shape: 1,123,117,056 parameters, 4.5 GB as float32 (--dtype float16: 2.2 GB); streamed (RSS ~170 MB); vocab 32000 vs tokenizer 4096',
  },
  'gpt2-tiny': { family: 'gpt2', dims: { layers: 2, hidden: 64, heads: 4 }, options: tiny },
  'llama-tiny': { family: 'llama', dims: tinyLlama, options: tiny },
  'llama-tiny-f16': { family: 'llama', dims: tinyLlama, options: { ...tiny, dtype: 'float16' } },
  'llama-tiny-bf16': { family: 'llama', dims: tinyLlama, options: { ...tiny, dtype: 'bfloat16' } },
  'llama-tiny-sharded': { family: 'llama', dims: tinyLlama, options: { ...tiny, shards: 3 } },
  'neox-tiny': { family: 'gpt_neox', dims: tinyNeox, options: tiny },
  'neox-tiny-sequential': { family: 'gpt_neox', dims: { ...tinyNeox, parallelResidual: false }, options: tiny },
  'qwen2-tiny': { family: 'qwen2', dims: { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176 }, options: tiny },
}

/** Writes the named preset into `dir`; `overrides` replace the preset's options (e.g. `{ dtype: 'float16' }`). */
export function writePresetCheckpoint (dir: string, preset: string, seed = 0, overrides: CheckpointOptions = {}): number {
  const entry = CHECKPOINT_PRESETS[preset]
  if (entry === undefined) {
    throw new WeftError('MODEL_LOAD_FAILED', `unknown checkpoint preset ${preset}; known: ${Object.keys(CHECKPOINT_PRESETS).join(', ')}`, { preset })
  }
  return writeRandomCheckpoint(dir, entry.family, entry.dims, seed, { ...entry.options, ...overrides })
}

/**
 * Returns a folder holding `preset` written with `seed`, creating it once under the OS temp dir (atomically, so
 * parallel test workers can share it). Meant for tests: `const dir = ensurePresetCheckpoint('neox-tiny')`.
 */
export function ensurePresetCheckpoint (preset: string, seed = 0, overrides: CheckpointOptions = {}): string {
  const suffix = Object.entries(overrides).map(([key, value]) => `${key}=${String(value)}`).join(',')
  const dir = join(tmpdir(), 'weft-checkpoints', `${preset}-seed${seed}${suffix ? `-${suffix}` : ''}`)
  if (existsSync(join(dir, 'config.json'))) return dir
  const staging = `${dir}.tmp-${process.pid}-${Date.now()}`
  writePresetCheckpoint(staging, preset, seed, overrides)
  try {
    renameSync(staging, dir)
  } catch (error) {
    rmSync(staging, { recursive: true, force: true })
    if (!existsSync(join(dir, 'config.json'))) throw error
  }
  return dir
}
