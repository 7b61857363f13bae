/** Built graphs vs the transformers references: every module output, hidden state, attention map and logits. */
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, type Tensor } from '@weft/core'
import { loadModel, type LoadedModel } from '../src/load.js'
import { unpadRow } from '../src/runtime/forward.js'
import { readSafetensors } from '../src/safetensors/write.js'

const models = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models')
const cacheDir = path.join(tmpdir(), 'weft-test-cache')

function relError (actual: Tensor, expected: Tensor): number {
  const a = actual.data as Float32Array; const b = expected.data as Float32Array
  expect(a.length).toBe(b.length)
  let num = 0; let den = 0
  for (let i = 0; i < b.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2 }
  return Math.sqrt(num / den)
}

/** Reference key `pN.<rest>` → our output name, for keys we can compare. */
function siteFor (key: string, layers: number, blockPrefix: string, finalNorm: string): string | null {
  const rest = key.replace(/^p\d+\./, '')
  if (rest.startsWith('module.')) return rest.slice('module.'.length)
  if (rest === 'logits') return 'logits'
  const hidden = /^hidden_states\.(\d+)$/.exec(rest)
  if (hidden) return Number(hidden[1]) < layers ? `${blockPrefix}.${hidden[1]}:input` : finalNorm
  const attention = /^attentions\.(\d+)$/.exec(rest)
  if (attention) return `${blockPrefix}.${attention[1]}.${blockPrefix.startsWith('model') ? 'self_attn' : 'attn'}.probs`
  return null
}

function referenceSuite (folder: string, layers: number, blockPrefix: string, finalNorm: string): void {
  describe(folder, () => {
    const dir = path.join(models, folder)
    const reference = readSafetensors(path.join(dir, 'reference_activations.safetensors'))
    const { prompts, token_ids: tokenIds } = JSON.parse(readFileSync(path.join(dir, 'reference_activations.json'), 'utf8')) as { prompts: string[]; token_ids: number[][] }
    let model: LoadedModel
    beforeAll(async () => { model = await loadModel(dir, { cacheDir }) })
    afterAll(async () => { await model.dispose() })

    test('tokenizer reproduces the reference token ids', () => {
      prompts.forEach((prompt, i) => expect(model.tokenizer!.encode(prompt)).toEqual(tokenIds[i]))
    })

    test('every reference activation matches to 1e-4 relative error', async () => {
      const keys = [...reference.keys()].filter(k => k.startsWith('p0.'))
      const names = keys.map(k => siteFor(k, layers, blockPrefix, finalNorm)).filter((n): n is string => n !== null)
      expect(names.length).toBe(keys.length)
      let worst = 0
      for (let p = 0; p < tokenIds.length; p++) {
        const out = await model.forward([tokenIds[p]!], names)
        for (const key of keys) {
          const expected = reference.get(key.replace(/^p0\./, `p${p}.`))!
          const error = relError(out[siteFor(key, layers, blockPrefix, finalNorm)!]!, expected)
          if (!(error <= 1e-4)) throw new Error(`prompt ${p} ${key}: relative error ${error}`)
          worst = Math.max(worst, error)
        }
      }
      expect(worst).toBeLessThan(1e-4)
    })

    test('a right-padded batch gives every row the logits it gets alone', async () => {
      const batch = await model.forward(tokenIds, ['logits'])
      const seq = Math.max(...tokenIds.map(r => r.length))
      for (let p = 0; p < tokenIds.length; p++) {
        const alone = await model.forward([tokenIds[p]!], ['logits'])
        expect(relError(unpadRow(batch.logits!, p, tokenIds[p]!.length, seq), alone.logits!)).toBeLessThan(1e-5)
      }
    })

    test('the manifest names modules in forward order with bindings', () => {
      const { manifest, sites } = model.graph
      expect(manifest.revision).toMatch(/^sha256:[0-9a-f]{64}$/)
      for (const entry of manifest.modules) if (entry.output) expect(sites.get(entry.path)?.output).toBeDefined()
      const order = manifest.modules.map(m => m.path)
      expect(order.indexOf(`${blockPrefix}.0`)).toBeGreaterThan(order.indexOf(`${blockPrefix}.0.mlp`))
      expect(order.indexOf(`${blockPrefix}.1.mlp`)).toBeGreaterThan(order.indexOf(`${blockPrefix}.0`))
    })
  })
}

referenceSuite('demo-gpt2', 6, 'transformer.h', 'transformer.ln_f')
referenceSuite('tiny-llama', 2, 'model.layers', 'model.norm')

test('an unknown model_type is refused with MODEL_LOAD_FAILED listing the supported families', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-unknown-'))
  const config = JSON.parse(readFileSync(path.join(models, 'demo-gpt2', 'config.json'), 'utf8'))
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'mamba' }))
  const error = await loadModel(dir, { cacheDir }).catch(e => e)
  expect(WeftError.is(error, 'MODEL_LOAD_FAILED')).toBe(true)
  expect(error.message).toMatch(/mamba.*gpt2/)
})

test('a truncated weight file is refused with MODEL_LOAD_FAILED naming the tensor', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-truncated-'))
  mkdirSync(dir, { recursive: true })
  copyFileSync(path.join(models, 'demo-gpt2', 'config.json'), path.join(dir, 'config.json'))
  const bytes = readFileSync(path.join(models, 'demo-gpt2', 'model.safetensors'))
  writeFileSync(path.join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 1000))
  const error = await loadModel(dir, { cacheDir }).catch(e => e)
  expect(WeftError.is(error, 'MODEL_LOAD_FAILED')).toBe(true)
  expect(error.message).toMatch(/extends past the end/)
})
