/**
 * The random checkpoint writer: HF layouts identical to real checkpoints, deterministic values, faithful
 * float16/bfloat16 rounding, sharding that changes nothing, and the oracle running on every tiny preset.
 */
import { describe, expect, test } from 'vitest'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkpointConfig, checkpointParams } from '../scripts/checkpoint-layout.js'
import { configJson, pythonFloat, writeRandomCheckpoint } from '../scripts/checkpoint.js'
import { CHECKPOINT_PRESETS, ensurePresetCheckpoint } from '../scripts/presets.js'
import { float32ToBfloat16Bits, float32ToHalfBits } from '../scripts/safetensors-writer.js'
import { halfToNumber, parseSafetensorsHeader, readCheckpointWeights } from './reference/safetensors.js'
import { referenceForward } from './reference/forward.js'

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url))

function headerShapes (file: string): Record<string, number[]> {
  const { entries } = parseSafetensorsHeader(new Uint8Array(readFileSync(file)), file)
  return Object.fromEntries([...entries].map(([name, entry]) => [name, entry.shape]))
}

describe('checkpoint layout', () => {
  test('gpt2 and llama configs are byte-identical to the transformers-written demo configs', () => {
    expect(configJson(checkpointConfig('gpt2', { layers: 6, hidden: 256, heads: 8 }, 'float32')))
      .toBe(readFileSync(join(MODELS, 'demo-gpt2/config.json'), 'utf8'))
    expect(configJson(checkpointConfig('llama', { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176 }, 'float32')))
      .toBe(readFileSync(join(MODELS, 'tiny-llama/config.json'), 'utf8'))
  })

  test('parameter names and shapes equal the real checkpoints', () => {
    const gpt2 = Object.fromEntries(checkpointParams('gpt2', { layers: 6, hidden: 256, heads: 8 }).map((p) => [p.name, p.shape]))
    expect(gpt2).toEqual(headerShapes(join(MODELS, 'demo-gpt2/model.safetensors')))
    const llama = Object.fromEntries(checkpointParams('llama', { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176 }).map((p) => [p.name, p.shape]))
    expect(llama).toEqual(headerShapes(join(MODELS, 'tiny-llama/model.safetensors')))
  })

  test('python float formatting', () => {
    expect([0, 1e-5, 1e-6, 10000, 0.1, 0.02, 1e-4, 1234.5].map(pythonFloat)).toEqual(['0.0', '1e-05', '1e-06', '10000.0', '0.1', '0.02', '0.0001', '1234.5'])
  })

  test('half and bfloat16 rounding (nearest even, overflow, subnormals)', () => {
    expect(float32ToHalfBits(1)).toBe(0x3c00)
    expect(float32ToHalfBits(-2)).toBe(0xc000)
    expect(float32ToHalfBits(65504)).toBe(0x7bff)
    expect(float32ToHalfBits(70000)).toBe(0x7c00)
    expect(float32ToHalfBits(2 ** -24)).toBe(0x0001)
    expect(float32ToHalfBits(1 + 2 ** -11)).toBe(0x3c00) // tie → even
    expect(float32ToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02) // tie → even (up)
    expect(halfToNumber(float32ToHalfBits(0.1))).toBe(0.0999755859375)
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80)
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80) // tie → even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82)
  })
})

describe('random checkpoints', () => {
  test('deterministic in the seed; sharded and half-precision variants hold the same values', async () => {
    const root = mkdtempSync(join(tmpdir(), 'weft-ck-'))
    try {
      const dims = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176 }
      const digest = (dir: string): string => createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex')
      writeRandomCheckpoint(join(root, 'a'), 'llama', dims, 7, { tokenizer: false })
      writeRandomCheckpoint(join(root, 'b'), 'llama', dims, 7, { tokenizer: false })
      writeRandomCheckpoint(join(root, 'c'), 'llama', dims, 8, { tokenizer: false })
      expect(digest(join(root, 'a'))).toBe(digest(join(root, 'b')))
      expect(digest(join(root, 'a'))).not.toBe(digest(join(root, 'c')))
      writeRandomCheckpoint(join(root, 's'), 'llama', dims, 7, { tokenizer: false, shards: 3 })
      writeRandomCheckpoint(join(root, 'h'), 'llama', dims, 7, { tokenizer: false, dtype: 'float16' })
      writeRandomCheckpoint(join(root, 'bf'), 'llama', dims, 7, { tokenizer: false, dtype: 'bfloat16' })
      const full = await readCheckpointWeights(join(root, 'a'))
      const sharded = await readCheckpointWeights(join(root, 's'))
      const half = await readCheckpointWeights(join(root, 'h'))
      const brain = await readCheckpointWeights(join(root, 'bf'))
      expect(JSON.parse(readFileSync(join(root, 'h/config.json'), 'utf8')).dtype).toBe('float16')
      expect([...sharded.keys()].sort()).toEqual([...full.keys()].sort())
      const violations: string[] = []
      for (const [name, tensor] of full) {
        if (Buffer.compare(Buffer.from(sharded.get(name)!.data.buffer), Buffer.from(tensor.data.buffer)) !== 0) violations.push(`shard ${name}`)
        tensor.data.forEach((v, i) => {
          if (Math.abs(half.get(name)!.data[i] - v) > Math.abs(v) * 2 ** -11 + 2 ** -25) violations.push(`f16 ${name}[${i}]`)
          if (Math.abs(brain.get(name)!.data[i] - v) > Math.abs(v) * 2 ** -8) violations.push(`bf16 ${name}[${i}]`)
        })
      }
      expect(violations).toEqual([])
      const norm = full.get('model.layers.0.input_layernorm.weight')!.data
      expect(norm.every((v) => Math.abs(v - 1) < 0.1)).toBe(true)
      const matrix = full.get('model.layers.0.mlp.up_proj.weight')!.data
      const std = Math.sqrt(matrix.reduce((a, v) => a + v * v, 0) / matrix.length)
      expect(std).toBeGreaterThan(0.019)
      expect(std).toBeLessThan(0.021)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

  test('the oracle runs on every tiny preset and gives finite logits of the right shape', async () => {
    for (const preset of Object.keys(CHECKPOINT_PRESETS).filter((name) => name.includes('tiny'))) {
      const out = await referenceForward(ensurePresetCheckpoint(preset), [1, 2, 3, 4])
      const logits = out.get('logits')!
      expect(logits.shape, preset).toEqual([4, 4096])
      expect(logits.data.every(Number.isFinite)).toBe(true)
    }
  })
})
