/**
 * Plain forward latency (prepacking off vs on), compiled-session creation and memory, and checkpoint load time +
 * peak RSS (GPT-2-small-sized and ~1B Llama-shaped random checkpoints generated once into .weft/bench/, gitignored).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { writePresetCheckpoint } from '../../providers/onnx/scripts/presets.js'
import { loadModel } from '../../providers/onnx/src/load.js'
import { fmt, paired, ratioCI, type BenchSuite, type BenchTable, type PairedOptions } from '../harness.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const benchDir = path.join(root, '.weft', 'bench')
const cacheDir = path.join(benchDir, 'cache')

function checkpoint (preset: string): string {
  const dir = path.join(benchDir, preset)
  if (!existsSync(path.join(dir, 'config.json'))) writePresetCheckpoint(dir, preset, 0)
  return dir
}

const row = (seq: number): number[] => Array.from({ length: seq }, (_, i) => (i * 37 + 11) % 4096)

/** Plain forward with prepacking off vs on, the two sessions timed in interleaved pairs. */
async function latency (dir: string, label: string, options: PairedOptions): Promise<(string | number)[][]> {
  const off = await loadModel(dir, { cacheDir, session: { prepacking: false } })
  const on = await loadModel(dir, { cacheDir, session: { prepacking: true } })
  const rows: (string | number)[][] = []
  for (const seq of [1, 32, 256]) {
    const ids = [row(seq)]
    const s = await paired(() => on.forward(ids, ['logits']), () => off.forward(ids, ['logits']), options)
    rows.push([label, seq, fmt(s.bP50), fmt(s.aP50), ratioCI(s), s.n])
  }
  await off.dispose()
  await on.dispose()
  return rows
}

interface SessionStats { firstMs: number; extraMs: number[]; anonMiB: number[]; fileMiB: number[] }

/**
 * In a fresh process: loads the model, then creates four compiled sessions (four Program structures) with
 * prepacking on or off, recording each creation (compile + session + first run) and the growth of anonymous and
 * file-backed RSS (file pages are the shared weight mapping; anonymous ones are private to each session).
 */
export function sessionsInChild (dir: string, name: string, prepacking: boolean): SessionStats {
  const script = `
    const { onnxBackend } = await import(${JSON.stringify(pathToFileURL(path.join(root, 'providers/onnx/src/backend/onnx-backend.ts')).href)})
    const { readFileSync } = await import('node:fs')
    const status = key => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(key + ':[^0-9]*([0-9]+)'))[1]) / 1024
    const backend = onnxBackend({ prepacking: ${prepacking}, sessionCacheSize: 8 })
    const handle = await backend.loadModel({ name: ${JSON.stringify(name)}, path: ${JSON.stringify(dir)} })
    const ids = Array.from({ length: 32 }, (_, i) => i + 5)
    const out = { firstMs: 0, extraMs: [], anonMiB: [], fileMiB: [] }
    for (let l = 0; l < 5; l++) {
      const program = { version: 1, model: { name: ${JSON.stringify(name)}, revision: null }, mode: 'trace', invokes: [{ ids }],
        nodes: [['read', { site: 'transformer.h.' + l, port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]],
          ['read', { site: 'lm_head', port: 'output', invoke: 0 }, []], ['save', { name: 'logits' }, [2]]] }
      const anon = status('RssAnon'); const file = status('RssFile'); const t = performance.now()
      const [result] = await handle.run([{ id: 'x', program }])
      if (!result.ok) throw new Error(result.error.message)
      const ms = performance.now() - t
      if (l === 0) { out.firstMs = ms; continue }
      out.extraMs.push(ms); out.anonMiB.push(status('RssAnon') - anon); out.fileMiB.push(status('RssFile') - file)
    }
    console.log(JSON.stringify(out))
    await backend.close()`
  const out = execFileSync(process.execPath, ['--conditions=@weft/source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out.trim().split('\n').at(-1)!) as SessionStats
}

function sessionRows (dir: string, name: string): (string | number)[][] {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  return [false, true].map(prepacking => {
    const s = sessionsInChild(dir, name, prepacking)
    return [name, prepacking ? 'on' : 'off', fmt(s.firstMs), fmt(median(s.extraMs)), median(s.anonMiB).toFixed(0), median(s.fileMiB).toFixed(0)]
  })
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
  const out = execFileSync(process.execPath, ['--conditions=@weft/source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 })
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
    const load = loadavg()[0]!
    const demo = path.join(root, 'models', 'demo-gpt2')
    const small = checkpoint('gpt2-small')
    const forward: BenchTable = {
      title: 'Plain forward latency, batch 1, prepacking off vs on (ms, logits only)',
      columns: ['model', 'seq', 'off p50', 'on p50', 'off/on paired [95% CI]', 'pairs'],
      rows: [
        ...await latency(demo, 'demo-gpt2', { minPairs: 20, maxPairs: 300, budgetMs: 5000 }),
        ...await latency(small, 'gpt2-small (random)', { minPairs: 10, maxPairs: 100, budgetMs: 30_000 }),
      ],
      note: 'Sessions: spinning off, graph optimisation "all"; off and on run in interleaved AB/BA pairs in one process. ' +
        `Load average ${load.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end (2 cores).`,
    }
    const sessions: BenchTable = {
      title: 'Compiled sessions: creation (compile + session + first run, seq 32) and memory per extra session',
      columns: ['model', 'prepacking', 'first ms', 'extra session ms (median of 4)', 'anon RSS MiB / extra session', 'file RSS MiB / extra session'],
      rows: [...sessionRows(demo, 'demo-gpt2'), ...sessionRows(small, 'gpt2-small')],
      note: 'Each model runs in a fresh process. Anonymous RSS is private memory (prepacked weight copies, arenas); file RSS is ' +
        'the memory-mapped weights, counted once per mapping but backed by the same page-cache pages.',
    }
    const loadTable: BenchTable = {
      title: 'Checkpoint load: build graph + place weights, create session, first forward (seq 32), peak RSS',
      columns: ['checkpoint', 'cache', 'build ms', 'session ms', 'first forward ms', 'peak RSS MiB'],
      rows: [...loadRows('gpt2-small'), ...loadRows('llama-1b')],
      note: 'Each load runs in a fresh process. Cold includes hashing the weights and writing transposed Linear weights once.',
    }
    return [forward, sessions, loadTable]
  },
}

export default suite
