/**
 * Gradient cost: forward + backward (Programs with `grad` nodes) against the same Program's forward alone (the
 * scalar computed, no grad), in interleaved pairs on session-cache hits, for demo-gpt2 and a GPT-2-small-sized model.
 */
import { loadavg } from 'node:os'
import path from 'node:path'
import { PROGRAM_VERSION, type Program, type ProgramNode } from '@weft/core'
import { onnxBackend } from '../../providers/onnx/src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../../providers/onnx/src/backend/model-handle.js'
import { compile } from '../../providers/onnx/src/compile/compile.js'
import { batchLayout } from '../../providers/onnx/src/compile/layout.js'
import { ROOT, benchIds, fmt, gpt2Small, loadNote, paired, ratioCI, type BenchSuite, type BenchTable, type PairedOptions } from '../harness.js'

const ids = (seq: number): number[] => benchIds(seq)

/** of = mean over positions of log p(token 42): every logit takes part through the softmax, like a cross-entropy. */
function scalar (): ProgramNode[] {
  return [['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['log_softmax', { axis: -1 }, [0]],
    ['index', { index: [0, null, 42] }, [1]], ['mean', { axes: null }, [2]], ['save', { name: 'of' }, [3]]]
}

function variants (name: string, layers: number, seq: number): { label: string; program: Program }[] {
  const make = (wrt: ProgramNode[]): Program => {
    const nodes = scalar()
    for (const [k, node] of wrt.entries()) nodes.push(node, ['grad', {}, [3, nodes.length]], ['save', { name: `g${k}` }, [nodes.length + 1]])
    return { version: PROGRAM_VERSION, model: { name, revision: null }, mode: 'trace', invokes: [{ ids: ids(seq) }], nodes }
  }
  const site = (l: number): ProgramNode => ['read', { site: `transformer.h.${l}`, port: 'input', invoke: 0 }, []]
  const param = (p: string): ProgramNode => ['param', { name: p }, []]
  return [
    { label: 'forward only (the scalar)', program: make([]) },
    { label: `d/d input of block ${layers - 1}`, program: make([site(layers - 1)]) },
    { label: 'd/d input of block 0 (full backward)', program: make([site(0)]) },
    { label: 'every block input (one shared pass)', program: make(Array.from({ length: layers }, (_, l) => site(l))) },
    { label: 'block-0 weights + tied wte', program: make([param('transformer.h.0.attn.c_attn.weight'), param('transformer.h.0.mlp.c_fc.weight'), param('transformer.wte.weight')]) },
  ]
}

async function measure (model: string, dir: string, seqs: number[], options: PairedOptions): Promise<BenchTable> {
  const load = loadavg()[0]!
  const handle = await onnxBackend({ sessionCacheSize: 32 }).loadModel({ name: model, path: dir }) as OnnxModelHandle
  const layers = Number(handle.manifest.config.n_layer)
  const rows: (string | number)[][] = []
  const runner = (program: Program, label: string) => async (): Promise<void> => {
    const [result] = await handle.run([{ id: label, program }])
    if (!result!.ok) throw new Error(`${label}: ${result!.error.message}`)
  }
  for (const seq of seqs) {
    const [base, ...rest] = variants(model, layers, seq)
    const forward = runner(base!.program, base!.label)
    await forward()
    for (const v of rest) {
      const t0 = performance.now()
      const compiled = compile(handle.loaded.graph, [{ program: v.program }], batchLayout([{ program: v.program }], () => ids(seq)))
      const compileMs = performance.now() - t0
      const withGrad = runner(v.program, v.label)
      await withGrad()
      const s = await paired(forward, withGrad, options)
      rows.push([model, seq, v.label, fmt(s.aP50), fmt(s.bP50), ratioCI(s), compiled.model.graph!.node.length, fmt(compileMs), s.n])
    }
  }
  await handle.dispose()
  return {
    title: `gradients: ${model}`,
    columns: ['model', 'seq', 'gradient', 'forward p50 ms', 'fwd+bwd p50 ms', 'paired ratio [95% CI]', 'graph nodes', 'compile ms', 'pairs'],
    rows,
    note: loadNote(load),
  }
}

const NOTE = [
  'forward = handle.run of the Program computing only the scalar (mean log-probability of one token over all positions);',
  'fwd+bwd = the same Program plus grad nodes and their saves (session-cache hits both). Pairs alternate AB/BA; paired ratio =',
  'median of per-pair ratios with an order-statistic 95% CI. compile ms = TypeScript compile of the grad Program (shape',
  'inference + backward emission), session creation excluded. The backward is standard ONNX ops (no training kernels).',
].join(' ')

const suite: BenchSuite = {
  name: 'grad',
  async run () {
    const demo = await measure('demo-gpt2', path.join(ROOT, 'models', 'demo-gpt2'), [32, 256], { minPairs: 10, maxPairs: 200, budgetMs: 4000 })
    const small = await measure('gpt2-small', gpt2Small(), [32, 256], { minPairs: 6, maxPairs: 60, budgetMs: 12_000 })
    return [demo, { ...small, note: `${small.note} ${NOTE}` }]
  },
}
export default suite
