/**
 * Built graphs for GPT-NeoX, Qwen2, f16/bf16 and sharded Llama and a small GPT-2, against the plain-TypeScript
 * float64 reference forward (providers/onnx/test/reference) on seeded random checkpoints.
 */
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { ensurePresetCheckpoint } from '../scripts/presets.js'
import { loadModel } from '../src/load.js'
import { referenceForward } from './reference/forward.js'
import { onnxOp } from '../src/compile/onnx-ops.js'

const cacheDir = path.join(tmpdir(), 'weft-test-cache')
const prompts = [[328, 370, 293, 3606, 297], [631, 1070, 302, 966, 680, 285, 266, 854, 12, 966, 685, 260, 912, 285]]

function relError (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0; let den = 0
  for (let i = 0; i < b.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2 }
  return Math.sqrt(num / den)
}

const presets = ['neox-tiny', 'neox-tiny-sequential', 'qwen2-tiny', 'llama-tiny-f16', 'llama-tiny-bf16', 'llama-tiny-sharded', 'gpt2-tiny']

describe.each(presets)('%s', (preset) => {
  test('every module output, attention map and the logits match the reference forward to 1e-4', async () => {
    const dir = ensurePresetCheckpoint(preset)
    const model = await loadModel(dir, { cacheDir })
    try {
      for (const ids of prompts) {
        const reference = await referenceForward(dir, ids)
        const names = [...reference.keys()]
        const missing = names.filter(n => n !== 'logits' && !model.graph.sites.has(n))
        expect(missing).toEqual([])
        // gradients can flow through the built graph: every ONNX op it uses has a row with a VJP (or no gradient)
        const ops = new Set(model.graph.model.graph!.node.map(n => n.opType))
        expect([...ops].filter(op => onnxOp(op) === undefined || onnxOp(op)!.vjp === 'none'), preset).toEqual([])
        const out = await model.forward([ids], names)
        for (const name of names) {
          const expected = reference.get(name)!
          expect(out[name]!.data.length, name).toBe(expected.data.length)
          const error = relError(out[name]!.data as Float32Array, expected.data)
          if (!(error <= 1e-4)) throw new Error(`${preset} ${name}: relative error ${error}`)
        }
      }
    } finally { await model.dispose() }
  })
})

test('the manifest counts parameters and records the family', async () => {
  const model = await loadModel(ensurePresetCheckpoint('qwen2-tiny'), { cacheDir })
  const { manifest } = model.graph
  expect(manifest.family).toBe('qwen2')
  expect(manifest.modules.find(m => m.path === 'model.layers.0.self_attn')?.type).toBe('Qwen2Attention')
  const q = manifest.modules.find(m => m.path === 'model.layers.0.self_attn.q_proj')!
  expect(q.parameters).toBe(64 * 64 + 64)
  const tied = manifest.config.tie_word_embeddings === true
  const owners = ['model.embed_tokens', 'model.norm', ...(tied ? [] : ['lm_head'])]
  expect(manifest.parameters).toBe(manifest.modules.filter(m => /^model\.layers\.\d+$/.test(m.path) || owners.includes(m.path))
    .reduce((sum, m) => sum + m.parameters, 0))
  expect(manifest.modules.find(m => m.path === 'lm_head')!.parameters).toBe(4096 * 64)
  await model.dispose()
})
