/** `weft cache` / `weft inspect`: run the commands, read the written safetensors back, compare with the references. */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { cacheCommand, inspectCommand } from '../src/cli/index.js'
import { readSafetensors } from '../src/safetensors/write.js'
import { readSafetensorsHeader } from '../src/safetensors/read.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const gpt2 = path.join(root, 'models', 'demo-gpt2')
const cacheDir = path.join(tmpdir(), 'weft-test-cache')
const reference = readSafetensors(path.join(gpt2, 'reference_activations.safetensors'))

let logs: string[] = []; let errors: string[] = []
beforeEach(() => {
  logs = []; errors = []
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { logs.push(a.join(' ')) })
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { errors.push(a.join(' ')) })
})
afterEach(() => { vi.restoreAllMocks() })

function relError (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0; let den = 0
  for (let i = 0; i < b.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2 }
  return Math.sqrt(num / den)
}

test('weft cache --text writes module outputs, attention maps and logits matching the reference', async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'weft-cli-')), 'acts.safetensors')
  const code = await cacheCommand.run([gpt2, '--text', 'The capital of France is', '--out', out, '--cache-dir', cacheDir])
  expect(errors).toEqual([])
  expect(code).toBe(0)
  const acts = readSafetensors(out)
  const pairs: [string, string][] = [['transformer.h.3.attn', 'p0.module.transformer.h.3.attn'], ['transformer.h.5.mlp.c_fc', 'p0.module.transformer.h.5.mlp.c_fc'],
    ['transformer.h.2.attn.probs', 'p0.attentions.2'], ['logits', 'p0.logits'], ['transformer.ln_f', 'p0.hidden_states.6']]
  for (const [ours, theirs] of pairs) {
    expect(acts.get(ours)!.shape).toEqual(reference.get(theirs)!.shape)
    expect(relError(acts.get(ours)!.data as Float32Array, reference.get(theirs)!.data as Float32Array)).toBeLessThan(1e-4)
  }
  expect(acts.has('transformer.h.0.mlp.act')).toBe(true)
  expect(JSON.parse(readSafetensorsHeader(out).metadata.token_ids!)).toEqual([328, 370, 293, 3606, 297])
})

test('weft cache --ids matches the reference for given token ids', async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'weft-cli-')), 'acts.safetensors')
  const ids = '631,1070,302,966,680,285,266,854,12,966,685,260,912,285'
  expect(await cacheCommand.run([gpt2, '--ids', ids, '--out', out, '--cache-dir', cacheDir])).toBe(0)
  const acts = readSafetensors(out)
  expect(relError(acts.get('lm_head')!.data as Float32Array, reference.get('p1.logits')!.data as Float32Array)).toBeLessThan(1e-4)
})

test('usage errors exit with code 2 and say what is wrong', async () => {
  expect(await cacheCommand.run([gpt2, '--out', 'x.safetensors'])).toBe(2)
  expect(errors.join('\n')).toMatch(/exactly one of --text or --ids/)
  expect(await cacheCommand.run([gpt2, '--ids', '1,x', '--out', 'x.safetensors'])).toBe(2)
  expect(await cacheCommand.run([gpt2, '--ids', '1', '--bogus', '1', '--out', 'x'])).toBe(2)
  expect(await inspectCommand.run([])).toBe(2)
  expect(errors.join('\n')).toMatch(/usage: weft inspect/)
  expect(await inspectCommand.run([path.join(root, 'no-such-model')])).toBe(1)
  expect(errors.at(-1)).toMatch(/MODEL_NOT_FOUND/)
})

test('weft inspect prints the module tree with shapes; --json prints the manifest', async () => {
  expect(await inspectCommand.run([gpt2, '--cache-dir', cacheDir])).toBe(0)
  expect(logs[0]).toMatch(/demo-gpt2\s+gpt2\s+5,853,184 parameters/)
  expect(logs).toContain('    0  GPT2Block  → [batch, seq, 256]  789,760 params')
  logs = []
  expect(await inspectCommand.run([gpt2, '--json', '--cache-dir', cacheDir])).toBe(0)
  const manifest = JSON.parse(logs.join('\n'))
  expect(manifest.family).toBe('gpt2')
  expect(manifest.modules.find((m: { path: string }) => m.path === 'transformer.h.0.attn.probs').output.shape).toEqual(['batch', 8, 'seq', 'seq'])
})

test('the weft binary dispatches to the engine commands', () => {
  const output = execFileSync(path.join(root, 'node_modules', '.bin', 'weft'), ['inspect', path.join(root, 'models', 'tiny-llama'), '--cache-dir', cacheDir],
    { encoding: 'utf8', cwd: root })
  expect(output).toMatch(/self_attn\s+LlamaAttention/)
})

test('weft cache on an exported .onnx file goes through the importer', async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'weft-cli-')), 'acts.safetensors')
  expect(await cacheCommand.run([path.join(root, 'models', 'demo-gpt2-onnx', 'model.onnx'), '--ids', '328,370,293,3606,297', '--out', out])).toBe(0)
  const acts = readSafetensors(out)
  expect(relError(acts.get('logits')!.data as Float32Array, reference.get('p0.logits')!.data as Float32Array)).toBeLessThan(1e-4)
  expect(relError(acts.get('transformer.h.4.mlp')!.data as Float32Array, reference.get('p0.module.transformer.h.4.mlp')!.data as Float32Array)).toBeLessThan(1e-4)
})
