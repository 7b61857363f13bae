/**
 * Seeded random Hugging Face checkpoints for tests and benchmarks: config.json, model.safetensors (or shards
 * + index), and the demo tokenizer. Values depend only on (seed, parameter name), never on dtype or sharding.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WeftError } from '@weft/core'
import { checkpointConfig, checkpointParams, type CheckpointDims, type CheckpointFamily, type ParamSpec } from './checkpoint-layout.js'
import { bytesPerElement, numelOf, writeSafetensors, type SafetensorsDType, type TensorSource } from './safetensors-writer.js'

export type { CheckpointDims, CheckpointFamily } from './checkpoint-layout.js'
export type { SafetensorsDType } from './safetensors-writer.js'

export interface CheckpointOptions {
  /** stored dtype; default float32 */
  dtype?: SafetensorsDType
  /** number of shards (>1 writes model-0000N-of-0000M.safetensors + model.safetensors.index.json); default 1 */
  shards?: number
  /** standard deviation of the random matrices/biases; norm scales are 1 + N(0, std/2). Default 0.02 */
  std?: number
  /** copy tokenizer.json + tokenizer_config.json from models/demo-gpt2 (vocab 4096); default true */
  tokenizer?: boolean
}

const DEMO_TOKENIZER_DIR = fileURLToPath(new URL('../../../models/demo-gpt2/', import.meta.url))
const CHUNK = 1 << 20

/** xoshiro128** seeded from sha256(seed, name): one independent stream per parameter. */
function streamFor (seed: number, name: string): () => number {
  const digest = createHash('sha256').update(`weft-checkpoint:${seed}:${name}`).digest()
  const s = new Uint32Array([digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)])
  return () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0
    const t = s[1] << 9
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11)
    return result
  }
}
function rotl (x: number, k: number): number { return (x << k) | (x >>> (32 - k)) }

/** Standard normal values via Box–Muller on 53-bit uniforms. */
function* normals (next: () => number, count: number, mean: number, std: number): Iterable<Float32Array> {
  const uniform = (): number => ((next() >>> 5) * 67108864 + (next() >>> 6) + 1) / 9007199254740993
  for (let start = 0; start < count; start += CHUNK) {
    const chunk = new Float32Array(Math.min(CHUNK, count - start))
    for (let i = 0; i < chunk.length; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(uniform()))
      const angle = 2 * Math.PI * uniform()
      chunk[i] = mean + std * radius * Math.cos(angle)
      if (i + 1 < chunk.length) chunk[i + 1] = mean + std * radius * Math.sin(angle)
    }
    yield chunk
  }
}

function sourceFor (spec: ParamSpec, seed: number, std: number): TensorSource {
  const [mean, sigma] = spec.init === 'norm_scale' ? [1, std / 2] : [0, std]
  return { name: spec.name, shape: spec.shape, chunks: () => normals(streamFor(seed, spec.name), numelOf(spec.shape), mean, sigma) }
}

/**
 * Splits parameters (in order) into at most `count` shards: a shard closes once adding the next tensor would
 * pass total/count bytes (the way transformers fills shards up to max_shard_size).
 */
function splitShards (specs: ParamSpec[], count: number, bytes: number): ParamSpec[][] {
  const size = (spec: ParamSpec): number => numelOf(spec.shape) * bytes
  const target = specs.reduce((sum, spec) => sum + size(spec), 0) / count
  const shards: ParamSpec[][] = [[]]
  let current = 0
  for (const spec of specs) {
    if (shards.at(-1)!.length > 0 && current + size(spec) > target && shards.length < count) {
      shards.push([])
      current = 0
    }
    shards.at(-1)!.push(spec)
    current += size(spec)
  }
  return shards
}

const FLOAT_KEYS = new Set(['attention_dropout', 'attn_pdrop', 'embd_pdrop', 'resid_pdrop', 'layer_norm_epsilon', 'layer_norm_eps',
  'rms_norm_eps', 'initializer_range', 'classifier_dropout', 'hidden_dropout', 'summary_first_dropout', 'rope_theta', 'partial_rotary_factor'])

/** A number as Python's repr(float) prints it (`0.0`, `1e-05`, `10000.0`), as json.dumps would. */
export function pythonFloat (value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return `${value}.0`
  const [mantissa, exponentText] = value.toExponential().split('e')
  const exponent = Number(exponentText)
  if (exponent >= -4 && exponent < 16) return String(value)
  return `${mantissa}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`
}

/** config.json text as transformers writes it: json.dumps(indent=2, sort_keys=True) + newline, floats Python-style. */
export function configJson (config: Record<string, unknown>): string {
  const text = JSON.stringify(config, (key, value) => (FLOAT_KEYS.has(key) && typeof value === 'number' ? `__pyfloat__${pythonFloat(value)}` : value), 2)
  return text.replace(/"__pyfloat__([^"]*)"/g, '$1') + '\n'
}

/**
 * Writes a random checkpoint of `family` with `dims` into `dir` (created if needed). Deterministic in `seed`.
 * Returns the parameter count.
 */
export function writeRandomCheckpoint (dir: string, family: CheckpointFamily, dims: CheckpointDims, seed: number, options: CheckpointOptions = {}): number {
  const dtype = options.dtype ?? 'float32'
  const shards = options.shards ?? 1
  const std = options.std ?? 0.02
  if (!['gpt2', 'llama', 'gpt_neox', 'qwen2'].includes(family)) {
    throw new WeftError('MODEL_LOAD_FAILED', `unknown checkpoint family ${family} (gpt2, llama, gpt_neox, qwen2)`, { family })
  }
  if (dims.hidden % dims.heads !== 0 || dims.heads % (dims.kvHeads ?? dims.heads) !== 0) {
    throw new WeftError('MODEL_LOAD_FAILED', `hidden ${dims.hidden} must divide by heads ${dims.heads}, and heads by kvHeads ${dims.kvHeads}`, { dims })
  }
  mkdirSync(dir, { recursive: true })
  const specs = checkpointParams(family, dims)
  writeFileSync(join(dir, 'config.json'), configJson(checkpointConfig(family, dims, dtype)))
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: 0, transformers_version: '5.17.0' }, null, 2) + '\n')
  if (options.tokenizer !== false) {
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO_TOKENIZER_DIR, file), join(dir, file))
  }
  const parameters = specs.reduce((sum, spec) => sum + numelOf(spec.shape), 0)
  if (shards <= 1) {
    writeSafetensors(join(dir, 'model.safetensors'), specs.map((spec) => sourceFor(spec, seed, std)), dtype)
    return parameters
  }
  const weightMap: Record<string, string> = {}
  const pad = (n: number): string => String(n).padStart(5, '0')
  const groups = splitShards(specs, shards, bytesPerElement(dtype))
  groups.forEach((shard, index) => {
    const file = `model-${pad(index + 1)}-of-${pad(groups.length)}.safetensors`
    writeSafetensors(join(dir, file), shard.map((spec) => sourceFor(spec, seed, std)), dtype)
    for (const spec of shard) weightMap[spec.name] = file
  })
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)))
  const index = { metadata: { total_parameters: parameters, total_size: parameters * bytesPerElement(dtype) }, weight_map: sortedMap }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n')
  return parameters
}
