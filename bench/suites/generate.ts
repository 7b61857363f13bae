/**
 * Generation throughput: `mode: 'generate'` jobs on the KV-cache graph (plain, steered at every step, reading the
 * logits at every step) against greedy decoding by repeated plain forwards over the whole context (no cache).
 */
import { loadavg } from 'node:os'
import path from 'node:path'
import { PROGRAM_VERSION, WeftError, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../../providers/onnx/src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../../providers/onnx/src/backend/model-handle.js'
import { ROOT, benchIds, fmt, gpt2Small, timeIt, type BenchSuite, type BenchTable } from '../harness.js'

const prompt = (seq: number): number[] => benchIds(seq)

function generate (name: string, ids: number[], n: number, nodes: ProgramNode[]): Program {
  return { version: PROGRAM_VERSION, model: { name, revision: null }, mode: 'generate', generate: { maxNewTokens: n, strategy: 'greedy' }, invokes: [{ ids }], nodes }
}

function variants (name: string, d: number, ids: number[], n: number): [string, Program][] {
  const steer: ProgramNode[] = [
    ['read', { site: 'transformer.h.1', port: 'output', invoke: 0, step: 'all' }, []],
    ['const', { value: { dtype: 'float32', shape: [d], data: new Float32Array(d).fill(0.1) } as never }, []],
    ['add', {}, [0, 1]],
    ['write', { site: 'transformer.h.1', port: 'output', invoke: 0, step: 'all' }, [2]],
  ]
  const perStep: ProgramNode[] = []
  for (let s = 0; s < n; s++) {
    const base = perStep.length
    perStep.push(['read', { site: 'lm_head', port: 'output', invoke: 0, step: s }, []], ['index', { index: [0, -1] }, [base]], ['save', { name: `l${s}` }, [base + 1]])
  }
  return [['KV cache, no edits', generate(name, ids, n, [])], ["KV cache, steering at every step ('all')", generate(name, ids, n, steer)],
    ['KV cache, last logits saved every step', generate(name, ids, n, perStep)]]
}

async function measure (model: string, dir: string, seq: number, n: number, reps: number): Promise<BenchTable> {
  const load = loadavg()[0]!
  const handle = await onnxBackend({ sessionCacheSize: 32 }).loadModel({ name: model, path: dir }) as OnnxModelHandle
  const d = Number(handle.manifest.config.n_embd)
  const ids = prompt(seq)
  const vocab = handle.manifest.vocabSize
  const noCache = async (): Promise<void> => {
    const context = [...ids]
    for (let s = 0; s < n; s++) {
      const logits = (await handle.loaded.forward([context])).logits!.data as Float32Array
      const last = logits.subarray((context.length - 1) * vocab)
      let best = 0
      for (let v = 1; v < vocab; v++) if (last[v]! > last[best]!) best = v
      context.push(best)
    }
  }
  const baseline = await timeIt(noCache, { warmup: 1, reps })
  const rows: (string | number)[][] = [['no cache: plain forward over the whole context per token', fmt(baseline.p50), (n / baseline.p50 * 1000).toFixed(0), '1.00×']]
  for (const [label, program] of variants(model, d, ids, n)) {
    const run = async (): Promise<void> => {
      const [result] = await handle.run([{ id: 'g', program }])
      if (!result!.ok) throw WeftError.fromWire(result!.error)
    }
    const t = await timeIt(run, { warmup: 1, reps })
    rows.push([label, fmt(t.p50), (n / t.p50 * 1000).toFixed(0), (baseline.p50 / t.p50).toFixed(2) + '×'])
  }
  await handle.dispose()
  return {
    title: `generate: ${model}, prompt ${seq} tokens, ${n} new tokens (greedy, batch 1)`,
    columns: ['variant', 'p50 ms / generation', 'tokens/s', 'speed-up vs no cache'],
    rows,
    note: `Warm (compiled step graphs cached), median of ${reps}; load average ${load.toFixed(1)} at the start.`,
  }
}

const suite: BenchSuite = {
  name: 'generate',
  async run () {
    return [
      await measure('demo-gpt2', path.join(ROOT, 'models', 'demo-gpt2'), 16, 32, 7),
      await measure('gpt2-small', gpt2Small(), 16, 16, 3),
    ]
  },
}
export default suite
