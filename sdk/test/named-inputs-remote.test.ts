/**
 * Module inputs by HF argument name over the remote path: `model.generate` on a real provider (127.0.0.1) reading
 * `.inputs.position_ids` and the rotary `.inputs.position_embeddings` at every step. With the KV cache, step 0 sees
 * the prompt's positions 0…n−1 and step k ≥ 1 the single position n−1+k, as transformers' generate passes them;
 * cos/sin are checked against float64 tables from config.json at those positions.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { toHex, WeftError } from '@weft/core'
import { Weft, type GPT2, type Llama, type SiteProxy, type Tensor } from '../src/index.js'
import { closedModelPolicy, createHost, type Host } from '@weft/host'
import { DEMO, newUser, onnxBackendInline, tempDb } from '../../providers/host/test/helpers.js'
import { MODELS_DIR } from './fixtures/reference.js'
import { ropeTables, relativeError } from '../../providers/onnx/test/reference/math.js'

const PROMPT = [328, 370, 293, 3606, 297]
const STEPS = 4
const LLAMA = path.join(MODELS_DIR, 'tiny-llama')

let host: Host
let weft: Weft
const user = newUser()

beforeAll(async () => {
  host = await createHost({
    dbPath: tempDb('sdk-named-inputs'), backends: { onnx: await onnxBackendInline() },
    models: [{ name: 'demo-gpt2', path: DEMO }, { name: 'tiny-llama', path: LLAMA }],
    policies: [closedModelPolicy({ egressPerKeyPerDay: '1MB' })], selfRegistration: true, limits: { batchWindowMs: 0 },
  })
  const { url } = await host.listen({ port: 0, hostname: '127.0.0.1' })
  weft = await Weft.connect({ provider: url, key: toHex(user.secretKey), providerId: host.providerId })
})
afterAll(async () => { await weft.close(); await host.close() })

const numbers = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number | bigint>, Number)
/** The positions transformers' generate feeds at each step with a KV cache: the prompt, then one new position per step. */
const expectedPositions = (step: number): number[] => step === 0 ? PROMPT.map((_, i) => i) : [PROMPT.length - 1 + step]

test('tiny-llama remote generate: position_ids per step (prompt, then n−1+k), cos/sin at those positions against float64 tables', async () => {
  const model = await weft.model<Llama>('tiny-llama')
  const out = await model.generate(PROMPT, { maxNewTokens: STEPS }, (_m, steps) => ({
    steps: steps.iter((m) => ({
      layer: m.layers[0].inputs.position_ids.save(),
      rotary: m.model.rotary_emb.inputs.position_ids.save(),
      cos: m.layers[1].attn.inputs.position_embeddings[0].save(),
      sin: m.layers[1].attn.inputs.position_embeddings[1].save(),
    })),
  }))
  expect(out.tokens).toHaveLength(STEPS)
  const config = JSON.parse(readFileSync(path.join(LLAMA, 'config.json'), 'utf8')) as Record<string, any>
  const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads
  const theta = config.rope_parameters?.rope_theta ?? config.rope_theta ?? 10000
  out.steps.forEach((step, k) => {
    const positions = expectedPositions(k)
    expect(numbers(step.layer), `step ${k}`).toEqual(positions)
    expect(numbers(step.rotary), `step ${k}`).toEqual(positions)
    expect(step.cos.shape).toEqual([1, positions.length, headDim])
    const { cos, sin } = ropeTables(positions.length, headDim, theta, positions)
    expect(relativeError(step.cos.data as Float32Array, cos.data), `step ${k}`).toBeLessThanOrEqual(1e-6)
    expect(relativeError(step.sin.data as Float32Array, sin.data), `step ${k}`).toBeLessThanOrEqual(1e-6)
  })
})

test('tiny-llama remote generate with every step\'s rotary position_ids shifted by 100: the same tokens (rotary is relative), shifted positions read back', async () => {
  const model = await weft.model<Llama>('tiny-llama')
  const plain = await model.generate(PROMPT, { maxNewTokens: STEPS })
  const shifted = await model.generate(PROMPT, { maxNewTokens: STEPS }, (_m, steps) => {
    steps.all((m) => { const ids = m.model.rotary_emb.inputs.position_ids; ids.set(ids.add(100)) })
    return { seen: steps.step(2, (m) => m.model.rotary_emb.inputs.position_ids.save()), layer: steps.step(2, (m) => m.layers[1].inputs.position_ids.save()) }
  })
  expect(shifted.tokens).toEqual(plain.tokens)
  expect(numbers(shifted.seen)).toEqual([100 + PROMPT.length + 1])
  // the layers still receive the real positions (the rotary module's input was written, not the model's)
  expect(numbers(shifted.layer)).toEqual([PROMPT.length + 1])
})

test('demo-gpt2 remote generate: wpe\'s position_ids and a block\'s position_ids per step', async () => {
  const model = await weft.model<GPT2>('demo-gpt2')
  const out = await model.generate(PROMPT, { maxNewTokens: STEPS }, (_m, steps) => ({
    steps: steps.iter((m) => ({ wpe: m.transformer.wpe.inputs.position_ids.save(), block: m.transformer.h[2].inputs.position_ids.save() })),
  }))
  expect(out.text.startsWith(' Paris')).toBe(true)
  out.steps.forEach((step, k) => {
    expect(numbers(step.wpe), `step ${k}`).toEqual(expectedPositions(k))
    expect(numbers(step.block), `step ${k}`).toEqual(expectedPositions(k))
  })
})

test('untyped envoys (the served manifest): the inputs each module lists, the (cos, sin) pair indexes and destructures, misuse throws naming the fix', async () => {
  const model = await weft.model('tiny-llama')
  const a = 'model.layers.0.self_attn'
  model.record(PROMPT, (m) => {
    expect(Object.keys(m.model.layers[0]!.self_attn!.inputs)).toEqual(['hidden_states', 'attention_mask', 'position_ids', 'position_embeddings'])
    expect(Object.keys(m.model.rotary_emb!.inputs)).toEqual(['x', 'position_ids'])
    expect(Object.keys(m.model.embed_tokens!.inputs)).toEqual(['input', 'input_ids'])
    expect(Object.keys(m.model.layers[0]!.mlp!.inputs)).toEqual(['hidden_states'])
    return m.lm_head.output
  })
  const { program, types } = model.record(PROMPT, (m) => {
    const pair = m.model.layers[0]!.self_attn!.inputs.position_embeddings
    const [cos, sin] = pair as unknown as Iterable<SiteProxy>
    return { cos: cos!, sin: sin! }
  })
  expect(program.nodes.filter(([op]) => op === 'read').map(([, attrs]) => attrs.site)).toEqual([`${a}.inputs.position_embeddings.0`, `${a}.inputs.position_embeddings.1`])
  expect(types.cos).toEqual({ shape: [1, 5, 16], dtype: 'float32' })
  const misuse = (fn: () => unknown): WeftError => { try { fn() } catch (e) { return e as WeftError } throw new Error('did not throw') }
  const pair = misuse(() => model.record(PROMPT, (m) => m.model.layers[0]!.self_attn!.inputs.position_embeddings.save()))
  expect(pair).toBeInstanceOf(WeftError)
  expect(pair.message).toContain(`'${a}.inputs.position_embeddings' is the pair (cos, sin): write .position_embeddings[0] or [1] (cos, sin); 'save' does not exist on it`)
  expect(pair.message).toContain('named-inputs-remote.test.ts:')
  const unknown = misuse(() => model.record(PROMPT, (m) => m.model.layers[0]!.inputs.cache_position))
  expect(unknown.message).toContain("'model.layers.0' has no input 'cache_position' (inputs: hidden_states, attention_mask, position_ids, position_embeddings)")
})
