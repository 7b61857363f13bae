/**
 * Training checkpoints (docs/decisions/2026-12-06-training-checkpoints.md): what one checkpoint write costs the
 * host's main thread (encode the TrainingCheckpoint as CBOR + one upsert in a real SQLite file, WAL, durability
 * normal) for params of growing size with Adam state, and what reporting a checkpoint after EVERY step costs the
 * engine (30 Adam steps of the acceptance steering vector, checkpoint every step vs none, paired).
 */
import { loadavg, tmpdir } from 'node:os'
import { mkdtempSync } from 'node:fs'
import path from 'node:path'
import { PROGRAM_VERSION, TRAIN_CHECKPOINT_STAGE, type Program, type ProgramNode, type TrainingCheckpoint } from '@weft/core'
import { onnxBackend } from '../../providers/onnx/src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../../providers/onnx/src/backend/model-handle.js'
import { SqliteStore } from '../../providers/host/src/store/store.js'
import { encodeCheckpoint } from '../../providers/host/src/jobs/train-checkpoints.js'
import { steeredLossNodes } from '../../providers/onnx/test/steering-program.js'
import { ROOT, fmt, loadNote, paired, ratioCI, timeIt, type BenchSuite } from '../harness.js'

const PROMPTS = ['The capital of France is', 'The capital of Japan is', 'The capital of Germany is', 'The capital of Spain is']
const ROME = 3654

function checkpointOf (params: number, step = 10): TrainingCheckpoint {
  const values = (seed: number): Float32Array => Float32Array.from({ length: params }, (_, i) => Math.sin(i * 0.37 + seed))
  return {
    step, steps: 1000, losses: Array.from({ length: step }, (_, k) => Math.fround(10 / (k + 1))),
    params: { w: { dtype: 'float32', shape: [params], data: values(1) } },
    optimizer: { step, slots: { w: { m: values(2), v: values(3).map(Math.abs) } } },
  }
}

function steeringProgram (handle: OnnxModelHandle): Program {
  const { nodes, loss } = steeredLossNodes(PROMPTS.length, ROME)
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: PROMPTS.map(p => ({ ids: handle.tokenize(p) })),
    nodes, params: { v: { shape: [256], dtype: 'float32', init: { zeros: true } } },
    train: { params: ['v'], loss, optimizer: { kind: 'adam', lr: 0.05 }, steps: 30 },
  }
}

const suite: BenchSuite = {
  name: 'train-checkpoint',
  async run () {
    const load = loadavg()[0]!
    // 1. one write on the host: encode + upsert (the job row exists and runs, as in a provider)
    const store = new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'weft-bench-')), 'ckpt.db'))
    store.insertJob({
      id: 'job_bench', kid: 'k', model: 'demo-gpt2', revision: 'r', programDigest: 'p', requestDigest: 'q', program: Buffer.from([0]), state: 'running',
      attempts: 1, error: null, estimatedEgress: 0, maxEgress: null, timeoutMs: 60_000, submittedAt: 0, startedAt: 0, endedAt: null, node: null, leaseUntil: null,
    })
    const rows: (string | number)[][] = []
    for (const [label, params] of [['steering vector (256)', 256], ['LoRA r4 on c_fc of demo-gpt2 (5 120)', 5_120], ['1 M params', 1_000_000], ['16 M params', 16_000_000]] as const) {
      const checkpoint = checkpointOf(params)
      const bytes = encodeCheckpoint(checkpoint).byteLength
      const encode = await timeIt(() => encodeCheckpoint(checkpoint), { warmup: 2, reps: params > 1e6 ? 5 : 20 })
      const write = await timeIt(() => store.putTrainCheckpoint({ jobId: 'job_bench', step: 10, state: encodeCheckpoint(checkpoint), now: Date.now() }), { warmup: 2, reps: params > 1e6 ? 5 : 20 })
      rows.push([label, (bytes / 2 ** 20).toFixed(3), fmt(encode.p50), fmt(write.p50), fmt(write.p99)])
    }
    store.close()

    // 2. the engine's side: 30 steps reporting a checkpoint after every step vs none
    const handle = await onnxBackend({ sessionCacheSize: 16 }).loadModel({ name: 'demo-gpt2', path: path.join(ROOT, 'models', 'demo-gpt2') }) as OnnxModelHandle
    const program = steeringProgram(handle)
    let reported = 0
    const run = async (checkpoint: boolean): Promise<void> => {
      const [r] = await handle.run([{ id: 't', program, ...(checkpoint ? { checkpoint: { everySteps: 1, everyMs: 0 } } : {}) }],
        { onProgress: e => { if (e.stage === TRAIN_CHECKPOINT_STAGE) reported++ } })
      if (!r!.ok) throw new Error(r!.error.message)
    }
    const s = await paired(() => run(false), () => run(true), { minPairs: 3, maxPairs: 10, budgetMs: 30_000 })
    await handle.dispose()
    return [{
      title: 'training checkpoints: one write on the host (encode + SQLite upsert, Adam state)',
      columns: ['trained params', 'MiB stored', 'encode p50 ms', 'encode + write p50 ms', 'p99 ms'],
      rows,
      note: `${loadNote(load)} The write runs on the host's main thread while the engine (its own thread) keeps training; at the default cadence (every 10 steps and 30 s) it happens at most twice a minute.`,
    }, {
      title: 'training checkpoints: engine cost of reporting one after every step (30 Adam steps, steering vector)',
      columns: ['variant', 'p50 ms', 'paired ratio [95% CI]', 'pairs'],
      rows: [
        ['no checkpoints', fmt(s.aP50), '1.000×', s.n],
        ['a checkpoint after every step (29 per run)', fmt(s.bP50), ratioCI(s), s.n],
      ],
      note: `${reported} checkpoints reported in all. The engine copies the trained params and optimizer state at each one (no store access on the engine thread).`,
    }]
  },
}
export default suite
