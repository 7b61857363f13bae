/**
 * Intervention overhead: a traced forward (compiled Program, session-cache hit) against a plain forward of the
 * same rows in the same run, for demo-gpt2 and a GPT-2-small-sized random checkpoint, plus compile time on a miss.
 */
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { PROGRAM_VERSION, type Program, type ProgramNode, type Tensor } from '@weft/core'
import { onnxBackend } from '../../providers/onnx/src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../../providers/onnx/src/backend/model-handle.js'
import { compile } from '../../providers/onnx/src/compile/compile.js'
import { batchLayout } from '../../providers/onnx/src/compile/layout.js'
import { createSession } from '../../providers/onnx/src/runtime/session.js'
import { writePresetCheckpoint } from '../../providers/onnx/scripts/presets.js'
import { fmt, ratio, type BenchSuite, type BenchTable } from '../harness.js'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')

function gpt2Small (): string {
  const dir = path.join(ROOT, '.weft', 'bench', 'gpt2-small')
  if (!existsSync(path.join(dir, 'config.json'))) { mkdirSync(dir, { recursive: true }); writePresetCheckpoint(dir, 'gpt2-small', 0) }
  return dir
}

const ids = (seq: number, seed: number): number[] => Array.from({ length: seq }, (_, i) => (i * 7919 + seed * 104729) % 4000 + 10)
const f32 = (v: number): Tensor => ({ dtype: 'float32', shape: [], data: Float32Array.of(v) })

function program (name: string, invokes: number[][], nodes: ProgramNode[]): Program {
  return { version: PROGRAM_VERSION, model: { name, revision: null }, mode: 'trace', invokes: invokes.map(i => ({ ids: i })), nodes }
}

/** The traced variants; every one also returns the full logits, like the plain forward it is compared with. */
function variants (name: string, layers: number, seq: number): { label: string; rows: number; program: Program }[] {
  const a = ids(seq, 1)
  const b = ids(seq, 2)
  const mid = Math.floor(layers / 2)
  const logits = (invoke = 0): ProgramNode[] => [['read', { site: 'lm_head', port: 'output', invoke }, []]]
  const withLogits = (nodes: ProgramNode[], invoke = 0): ProgramNode[] => [...nodes, ...logits(invoke), ['save', { name: 'logits' }, [nodes.length]]]
  const allLayers: ProgramNode[] = []
  const lens: ProgramNode[] = []
  for (let l = 0; l < layers; l++) {
    allLayers.push(['read', { site: `transformer.h.${l}`, port: 'output', invoke: 0 }, []], ['save', { name: `h${l}` }, [allLayers.length]])
    const base = lens.length
    lens.push(['read', { site: `transformer.h.${l}`, port: 'output', invoke: 0 }, []], ['index', { index: [0, -1] }, [base]],
      ['module_call', { module: 'transformer.ln_f' }, [base + 1]], ['module_call', { module: 'lm_head' }, [base + 2]], ['save', { name: `lens${l}` }, [base + 3]])
  }
  return [
    { label: 'no intervention', rows: 1, program: program(name, [a], withLogits([])) },
    { label: 'one save', rows: 1, program: program(name, [a], withLogits([['read', { site: `transformer.h.${mid}`, port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]])) },
    { label: 'all layer outputs', rows: 1, program: program(name, [a], withLogits(allLayers)) },
    {
      label: 'one write + logits', rows: 1, program: program(name, [a], withLogits([
        ['read', { site: `transformer.h.${mid}.mlp`, port: 'output', invoke: 0 }, []], ['const', { value: f32(0.5) as never }, []],
        ['mul', {}, [0, 1]], ['write', { site: `transformer.h.${mid}.mlp`, port: 'output', invoke: 0 }, [2]],
      ])),
    },
    {
      label: 'two-invoke patching', rows: 2, program: program(name, [a, b], withLogits([
        ['read', { site: `transformer.h.${mid}`, port: 'output', invoke: 0 }, []], ['index', { index: [null, -1] }, [0]],
        ['write', { site: `transformer.h.${mid}`, port: 'output', invoke: 1, index: [null, -1] }, [1]],
      ], 1)),
    },
    { label: 'logit lens (all layers, last position)', rows: 1, program: program(name, [a], withLogits(lens)) },
  ]
}

/** Medians of plain and traced runs taken alternately, so load from other processes hits both alike. */
async function interleaved (plain: () => Promise<void>, traced: () => Promise<void>, reps: number): Promise<{ plainMs: number; tracedMs: number }> {
  for (let i = 0; i < 2; i++) { await plain(); await traced() }
  const a: number[] = []
  const b: number[] = []
  for (let i = 0; i < reps; i++) {
    let t = performance.now(); await plain(); a.push(performance.now() - t)
    t = performance.now(); await traced(); b.push(performance.now() - t)
  }
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
  return { plainMs: median(a), tracedMs: median(b) }
}

async function measure (model: string, dir: string, seqs: number[], reps: number): Promise<BenchTable> {
  const handle = await onnxBackend({ sessionCacheSize: 32 }).loadModel({ name: model, path: dir }) as OnnxModelHandle
  const layers = Number(handle.manifest.config.n_layer)
  const rows: (string | number)[][] = []
  for (const seq of seqs) {
    for (const v of variants(model, layers, seq)) {
      const batch = Array.from({ length: v.rows }, (_, i) => ids(seq, i + 1))
      const plain = async (): Promise<void> => { await handle.loaded.forward(batch, ['logits']) }
      const traced = async (): Promise<void> => {
        const [result] = await handle.run([{ id: v.label, program: v.program }])
        if (!result!.ok) throw new Error(`${v.label}: ${result!.error.message}`)
      }
      const { plainMs, tracedMs } = await interleaved(plain, traced, reps)
      rows.push([model, seq, v.label, fmt(plainMs), fmt(tracedMs), ratio(tracedMs, plainMs)])
    }
    const write = variants(model, layers, seq)[3]!.program
    const t0 = performance.now()
    const compiled = compile(handle.loaded.graph, [{ program: write }], batchLayout([{ program: write }], () => ids(seq, 1)))
    const t1 = performance.now()
    const session = await createSession(handle.loaded.graph, compiled.model)
    const t2 = performance.now()
    await session.release()
    rows.push([model, seq, 'compile on a miss (compile + session)', '', `${fmt(t1 - t0)} + ${fmt(t2 - t1)}`, ''])
  }
  await handle.dispose()
  return { title: `interventions: ${model}`, columns: ['model', 'seq', 'variant', 'plain ms', 'traced ms', 'ratio'], rows }
}

const suite: BenchSuite = {
  name: 'interventions',
  async run () {
    return [
      await measure('demo-gpt2', path.join(ROOT, 'models', 'demo-gpt2'), [32, 256], 20),
      { ...await measure('gpt2-small', gpt2Small(), [32, 256], 8), note: 'traced = handle.run() on a session-cache hit (feeds built, outputs copied); plain = the base graph with logits as its only output. Targets: ≤1.05× one save, ≤1.15× the others.' },
    ]
  },
}
export default suite
