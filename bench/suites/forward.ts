/**
 * Plain forward latency (batch 1, seq 32 / 256) of built graphs, and load time + peak RSS of checkpoint loading
 * (GPT-2-small-sized and ~1B Llama-shaped random checkpoints generated once into .weft/bench/, gitignored).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { writePresetCheckpoint } from '../../providers/onnx/scripts/presets.js'
import { loadModel } from '../../providers/onnx/src/load.js'
import { fmt, timeIt, type BenchSuite, type BenchTable } from '../harness.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const benchDir = path.join(root, '.weft', 'bench')
const cacheDir = path.join(benchDir, 'cache')

function checkpoint (preset: string): string {
  const dir = path.join(benchDir, preset)
  if (!existsSync(path.join(dir, 'config.json'))) writePresetCheckpoint(dir, preset, 0)
  return dir
}

const row = (seq: number): number[] => Array.from({ length: seq }, (_, i) => (i * 37 + 11) % 4096)

async function latency (dir: string, label: string): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = []
  for (const prepacking of [false, true]) {
    const model = await loadModel(dir, { cacheDir, session: { prepacking } })
    for (const seq of [32, 256]) {
      const ids = [row(seq)]
      const t = await timeIt(() => model.forward(ids, ['logits']), { warmup: 3, reps: seq === 256 ? 10 : 20 })
      rows.push([label, seq, prepacking ? 'on' : 'off', fmt(t.p50), fmt(t.p99)])
    }
    await model.dispose()
  }
  return rows
}

interface LoadStats { buildMs: number; sessionMs: number; forwardMs: number; maxRssMiB: number }

/** Loads `dir` in a fresh process (so RSS is the load's own) and reports timings and peak RSS. */
function loadInChild (dir: string, cache: string): LoadStats {
  const script = `
    const { loadModel } = await import(${JSON.stringify(pathToFileURL(path.join(root, 'providers/onnx/src/load.ts')).href)})
    const t0 = performance.now()
    const model = await loadModel(${JSON.stringify(dir)}, { cacheDir: ${JSON.stringify(cache)} })
    const t1 = performance.now()
    await model.sessions.get(['logits'])
    const t2 = performance.now()
    await model.forward([Array.from({ length: 32 }, (_, i) => i + 1)], ['logits'])
    const t3 = performance.now()
    console.log(JSON.stringify({ buildMs: t1 - t0, sessionMs: t2 - t1, forwardMs: t3 - t2, maxRssMiB: process.resourceUsage().maxRSS / 1024 }))`
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out.trim().split('\n').at(-1)!) as LoadStats
}

function loadRows (preset: string): (string | number)[][] {
  const dir = checkpoint(preset)
  const coldCache = path.join(benchDir, `cache-cold-${process.pid}`)
  try {
    const cold = loadInChild(dir, coldCache)
    const warm = loadInChild(dir, coldCache)
    return [cold, warm].map((s, i) => [preset, i === 0 ? 'cold (writes derived weights)' : 'warm (cached)', fmt(s.buildMs), fmt(s.sessionMs), fmt(s.forwardMs), s.maxRssMiB.toFixed(0)])
  } finally { rmSync(coldCache, { recursive: true, force: true }) }
}

const suite: BenchSuite = {
  name: 'forward',
  run: async () => {
    const forward: BenchTable = {
      title: 'Plain forward latency, batch 1 (ms, logits only)',
      columns: ['model', 'seq', 'prepacking', 'p50', 'p99'],
      rows: [...await latency(path.join(root, 'models', 'demo-gpt2'), 'demo-gpt2'), ...await latency(checkpoint('gpt2-small'), 'gpt2-small (random)')],
      note: 'Sessions: spinning off, graph optimisation "all". Prepacking off is the default (fast creation, one shared weight mapping).',
    }
    const load: BenchTable = {
      title: 'Checkpoint load: build graph + place weights, create session, first forward (seq 32), peak RSS',
      columns: ['checkpoint', 'cache', 'build ms', 'session ms', 'first forward ms', 'peak RSS MiB'],
      rows: [...loadRows('gpt2-small'), ...loadRows('llama-1b')],
      note: 'Each load runs in a fresh process. Cold includes hashing the weights and writing transposed Linear weights once.',
    }
    return [forward, load]
  },
}

export default suite
