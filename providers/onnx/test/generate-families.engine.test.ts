/**
 * Generation on the KV-cache variant of the GPT-NeoX (parallel and sequential residual) and Qwen2 builders: greedy
 * tokens of a padded two-prompt batch equal the float64 oracle's repeated full forwards on seeded random checkpoints.
 */
import { describe, expect, test } from 'vitest'
import { WeftError, type Tensor } from '@weft/core'
import { ensurePresetCheckpoint } from '../scripts/presets.js'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import { generateProgram, loadOracle, oracleGreedy } from './generate-oracle.js'

const prompts = [[328, 370, 293, 3606, 297], [631, 1070, 302, 966, 680, 285, 266, 854, 12, 966, 685, 260, 912, 285]]
const tokens = (t: Tensor): number[] => [...(t.data as BigInt64Array)].map(Number)

describe.each(['neox-tiny', 'neox-tiny-sequential', 'qwen2-tiny'])('%s', (preset) => {
  test('greedy tokens of a padded batch equal the oracle per prompt', async () => {
    const dir = ensurePresetCheckpoint(preset)
    const backend = onnxBackend()
    const handle = await backend.loadModel({ name: preset, path: dir })
    try {
      const [result] = await handle.run([{ id: 'g', program: generateProgram(preset, prompts, [], { maxNewTokens: 5, strategy: 'greedy' }) }])
      if (!result!.ok) throw WeftError.fromWire(result!.error)
      const oracle = await loadOracle(dir.endsWith('/') ? dir : dir + '/')
      prompts.forEach((ids, k) => expect(tokens(result!.saves[`generated.${k}`]!)).toEqual(oracleGreedy(oracle, ids, 5).tokens))
    } finally { await backend.close?.() }
  })
})
