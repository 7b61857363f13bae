/**
 * A rank-4 LoRA on transformer.h.3.mlp.c_fc (y += (x @ A) @ B · alpha/rank) trained by SGD through the acceptance
 * loss (mean over four prompts of −log_softmax(last logits)[" Rome"]), against a float64 oracle: the float64 GPT-2
 * forward (test/reference) with the same LoRA gives every step's loss, and float64 central differences of that loss
 * give the gradient the engine's step applied (recovered from the params: g_k = (θ_k − θ_{k+1}) / lr) along the
 * gradient itself and a random direction.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { readFile } from 'node:fs/promises'
import { PROGRAM_VERSION, WeftError, normalInit, type JobResult, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { readCheckpointWeights, type Tensor64 } from './reference/safetensors.js'
import { referenceForwardWeights } from './reference/forward.js'
import { mat, type Mat } from './reference/math.js'

const DIR = new URL('../../../models/demo-gpt2/', import.meta.url).pathname
const SITE = 'transformer.h.3.mlp.c_fc'
const [D, INNER, RANK, ALPHA, LR, STEPS] = [256, 1024, 4, 8, 0.1, 3]
const SCALE = ALPHA / RANK

let handle: OnnxModelHandle
let weights: Map<string, Tensor64>
let config: Record<string, any>
let prompts: number[][]
let target: number

beforeAll(async () => {
  handle = await onnxBackend({ sessionCacheSize: 16 }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
  weights = await readCheckpointWeights(DIR)
  config = JSON.parse(await readFile(DIR + 'config.json', 'utf8'))
  const ref = JSON.parse(await readFile(DIR + 'reference_training.json', 'utf8')) as { prompts: string[]; target_id: number }
  prompts = ref.prompts.map(p => handle.tokenize(p))
  target = ref.target_id
})
afterAll(async () => { await handle.dispose() })

function loraProgram (steps: number): Program {
  const nodes: ProgramNode[] = [['trainable', { name: 'A' }, []], ['trainable', { name: 'B' }, []],
    ['const', { value: { dtype: 'float32', shape: [], data: Float32Array.of(SCALE) } as never }, []]]
  const nll: number[] = []
  prompts.forEach((_, k) => {
    const x = nodes.push(['read', { site: SITE, port: 'input', invoke: k }, []]) - 1
    nodes.push(['matmul', {}, [x, 0]], ['matmul', {}, [x + 1, 1]], ['mul', {}, [x + 2, 2]])
    const y = nodes.push(['read', { site: SITE, port: 'output', invoke: k }, []]) - 1
    nodes.push(['add', {}, [y, x + 3]], ['write', { site: SITE, port: 'output', invoke: k }, [y + 1]])
    const logits = nodes.push(['read', { site: 'lm_head', port: 'output', invoke: k }, []]) - 1
    nodes.push(['index', { index: [0, -1] }, [logits]], ['log_softmax', { axis: -1 }, [logits + 1]], ['index', { index: [target] }, [logits + 2]])
    nll.push(nodes.push(['neg', {}, [logits + 3]]) - 1)
  })
  nodes.push(['stack', { axis: 0 }, nll])
  const loss = nodes.push(['mean', { axes: null, keepdims: false }, [nodes.length - 1]]) - 1
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: prompts.map(ids => ({ ids })), nodes,
    params: {
      A: { shape: [D, RANK], dtype: 'float32', init: { normal: { mean: 0, std: 0.05, seed: 1 } } },
      B: { shape: [RANK, INNER], dtype: 'float32', init: { normal: { mean: 0, std: 0.05, seed: 2 } } },
    },
    train: { params: ['A', 'B'], loss, optimizer: { kind: 'sgd', lr: LR }, steps },
  }
}

/** The float64 oracle: the acceptance loss of the model with the LoRA (A, B as float64 row-major). */
function loss64 (A: Float64Array, B: Float64Array): number {
  let total = 0
  for (const ids of prompts) {
    let x: Mat | null = null
    const acts = referenceForwardWeights(config, weights, ids, {
      hook: (path, value) => {
        if (path === 'transformer.h.3.ln_2') { x = value; return undefined }
        if (path !== SITE) return undefined
        const out = mat(value.rows, value.cols, Float64Array.from(value.data))
        for (let t = 0; t < value.rows; t++) {
          const xa = new Float64Array(RANK)
          for (let r = 0; r < RANK; r++) { let s = 0; for (let i = 0; i < D; i++) s += x!.data[t * D + i]! * A[i * RANK + r]!; xa[r] = s }
          for (let j = 0; j < INNER; j++) { let s = 0; for (let r = 0; r < RANK; r++) s += xa[r]! * B[r * INNER + j]!; out.data[t * INNER + j] += SCALE * s }
        }
        return out
      },
    })
    const logits = acts.get('logits')!
    const row = logits.data.subarray((ids.length - 1) * logits.shape[1]!, ids.length * logits.shape[1]!)
    const max = Math.max(...row)
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0))
    total += lse - row[target]!
  }
  return total / prompts.length
}

const ok = (r: JobResult): Extract<JobResult, { ok: true }> => { if (!r.ok) throw WeftError.fromWire(r.error); return r }

test('rank-4 LoRA on c_fc trained by SGD: every step\'s loss and applied gradient equal the float64 oracle', async () => {
  // θ_0 from the specified generator; θ_k from runs of k steps (a k-step run's params are step k's)
  const thetas: { A: Float64Array; B: Float64Array }[] = [{ A: Float64Array.from(normalInit([D, RANK], 0, 0.05, 1)), B: Float64Array.from(normalInit([RANK, INNER], 0, 0.05, 2)) }]
  let losses: number[] = []
  for (let k = 1; k <= STEPS; k++) {
    const r = ok((await handle.run([{ id: `lora${k}`, program: loraProgram(k) }]))[0]!)
    thetas.push({ A: Float64Array.from(r.params!.A!.data as Float32Array), B: Float64Array.from(r.params!.B!.data as Float32Array) })
    losses = r.training!.losses
  }
  expect(losses).toHaveLength(STEPS)
  let seed = 7
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 - 0.5 }
  for (let k = 0; k < STEPS; k++) {
    const { A, B } = thetas[k]!
    const want = loss64(A, B)
    expect(Math.abs(losses[k]! - want) / want, `step ${k} loss ${losses[k]} vs float64 ${want}`).toBeLessThan(1e-4)
    // the gradient the step applied
    const gA = A.map((a, i) => (a - thetas[k + 1]!.A[i]!) / LR)
    const gB = B.map((b, i) => (b - thetas[k + 1]!.B[i]!) / LR)
    const norm = Math.sqrt([...gA, ...gB].reduce((s, g) => s + g * g, 0))
    expect(norm).toBeGreaterThan(1e-3)
    for (const [name, uA, uB] of [
      ['gradient', gA.map(g => g / norm), gB.map(g => g / norm)],
      ['random', A.map(() => random()), B.map(() => random())],
    ] as const) {
      const eps = 1e-4
      const at = (e: number): number => loss64(A.map((a, i) => a + e * uA[i]!), B.map((b, i) => b + e * uB[i]!))
      const numeric = (at(eps) - at(-eps)) / (2 * eps)
      let dot = 0
      gA.forEach((g, i) => { dot += g * uA[i]! }); gB.forEach((g, i) => { dot += g * uB[i]! })
      const size = Math.sqrt([...uA, ...uB].reduce((s, u) => s + u * u, 0))
      expect(Math.abs(dot - numeric), `step ${k} ${name}: engine ${dot} vs float64 ${numeric}`).toBeLessThan(1e-3 * norm * size)
    }
  }
})
