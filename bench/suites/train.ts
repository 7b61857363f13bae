/**
 * Training cost (issue #11): one Program training a steering vector for 30 Adam steps on the host, against the same
 * 30 forward+backward passes run back to back embedded as separate Programs (what a client-driven loop would send,
 * the optimizer update aside). Target: ≤ 1.2×.
 */
import { loadavg } from 'node:os'
import path from 'node:path'
import { PROGRAM_VERSION, Optimizer, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../../providers/onnx/src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../../providers/onnx/src/backend/model-handle.js'
import { steeredLossNodes } from '../../providers/onnx/test/steering-program.js'
import { ROOT, fmt, loadNote, paired, ratioCI, type BenchSuite } from '../harness.js'

const PROMPTS = ['The capital of France is', 'The capital of Japan is', 'The capital of Germany is', 'The capital of Spain is']
const ROME = 3654
const STEPS = 30

const suite: BenchSuite = {
  name: 'train',
  async run () {
    const load = loadavg()[0]!
    const handle = await onnxBackend({ sessionCacheSize: 16 }).loadModel({ name: 'demo-gpt2', path: path.join(ROOT, 'models', 'demo-gpt2') }) as OnnxModelHandle
    const invokes = PROMPTS.map(p => ({ ids: handle.tokenize(p) }))
    const { nodes, loss } = steeredLossNodes(PROMPTS.length, ROME)
    const base = { version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace' as const, invokes }
    const training: Program = {
      ...base, nodes, params: { v: { shape: [256], dtype: 'float32', init: { zeros: true } } },
      train: { params: ['v'], loss, optimizer: { kind: 'adam', lr: 0.05 }, steps: STEPS },
    }
    const check = (r: Awaited<ReturnType<typeof handle.run>>[number]): typeof r & { ok: true } => { if (!r.ok) throw new Error(r.error.message); return r }
    const onHost = async (): Promise<void> => { check((await handle.run([{ id: 'train', program: training }]))[0]!) }
    // the client-driven loop: 30 separate Programs (loss + gradient saved), the Adam update between them
    const stepNodes: ProgramNode[] = [...nodes, ['grad', {}, [loss, 0]], ['save', { name: 'g' }, [nodes.length]], ['save', { name: 'loss' }, [loss]]]
    const backToBack = async (): Promise<void> => {
      const v = new Float32Array(256)
      const adam = new Optimizer({ kind: 'adam', lr: 0.05 })
      for (let s = 0; s < STEPS; s++) {
        const program: Program = { ...base, nodes: stepNodes, params: { v: { shape: [256], dtype: 'float32', init: { tensor: { dtype: 'float32', shape: [256], data: v } } } } }
        const r = check((await handle.run([{ id: `step${s}`, program }]))[0]!)
        adam.update({ v }, { v: r.saves.g!.data as Float32Array })
      }
    }
    await onHost(); await backToBack()
    const s = await paired(backToBack, onHost, { minPairs: 3, maxPairs: 10, budgetMs: 30_000 })
    await handle.dispose()
    return [{
      title: 'training: 30 Adam steps of a steering vector (demo-gpt2, 4 prompts)',
      columns: ['variant', 'p50 ms', 'per step ms', 'paired ratio [95% CI]', 'pairs'],
      rows: [
        ['30 fwd+bwd Programs back to back (client loop, embedded)', fmt(s.aP50), fmt(s.aP50 / STEPS), '1.000×', s.n],
        ['one training Program (train: 30 steps on the host)', fmt(s.bP50), fmt(s.bP50 / STEPS), ratioCI(s), s.n],
      ],
      note: `${loadNote(load)} Ratio = training Program / back-to-back passes (target ≤ 1.2×). Both run on session-cache hits; ` +
        'the back-to-back loop also validates and compiles-from-cache each Program, which the training loop shares across steps.',
    }]
  },
}
export default suite
