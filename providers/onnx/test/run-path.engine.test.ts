/**
 * The cached per-run path of the onnx backend: Program fingerprints, the validation cache (a hit still checks
 * token ids and locations), the shared session LRU with leases, and int64 feeds written through int32 views.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { PROGRAM_VERSION, type Program, type ProgramNode, type Tensor } from '@weft/core'
import { onnxBackend } from '../src/backend/onnx-backend.js'
import type { OnnxModelHandle } from '../src/backend/model-handle.js'
import { programFingerprint } from '../src/compile/structure-key.js'
import { SessionCache } from '../src/runtime/session-cache.js'
import { tokenFeeds } from '../src/runtime/forward.js'

const DIR = new URL('../../../models/demo-gpt2/', import.meta.url).pathname
let handle: OnnxModelHandle

beforeAll(async () => {
  handle = await onnxBackend({ sessionCacheSize: 4 }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
})
afterAll(async () => { await handle.dispose() })

const f32 = (values: number[], shape: number[]): Tensor => ({ dtype: 'float32', shape, data: Float32Array.from(values) })

function program (ids: number[][], nodes: ProgramNode[], locations?: Program['locations']): Program {
  return {
    version: PROGRAM_VERSION, model: { name: 'demo-gpt2', revision: null }, mode: 'trace',
    invokes: ids.map(i => ({ ids: i })), nodes, ...(locations === undefined ? {} : { locations }),
  }
}

const scaled = (c: Tensor): ProgramNode[] => [
  ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []], ['const', { value: c as never }, []],
  ['mul', {}, [0, 1]], ['save', { name: 'h' }, [2]],
]

describe('programFingerprint', () => {
  test('ignores ids, constant values and locations; separates sizes from structure', () => {
    const a = programFingerprint(program([[1, 2, 3]], scaled(f32([2], [1]))))!
    const b = programFingerprint(program([[7, 8, 9]], scaled(f32([5], [1])), [null, null, { file: 'x.ts', line: 3 }, null]))!
    expect(b).toEqual(a)
    const longer = programFingerprint(program([[1, 2, 3, 4]], scaled(f32([2], [1]))))!
    expect(longer.structure).toBe(a.structure)
    expect(longer.sizes).not.toBe(a.sizes)
    const wider = programFingerprint(program([[1, 2, 3]], scaled(f32(new Array(256).fill(1), [256]))))!
    expect(wider.structure).toBe(a.structure)
    expect(wider.sizes).not.toBe(a.sizes)
    const rank2 = programFingerprint(program([[1, 2, 3]], scaled(f32([2], [1, 1]))))!
    expect(rank2.structure).not.toBe(a.structure)
  })

  test('distinguishes values JSON would merge, and refuses non-data', () => {
    const at = (index: unknown): string => programFingerprint(program([[1, 2]], [
      ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []], ['index', { index: index as never }, [0]], ['save', { name: 'h' }, [1]],
    ]))!.structure
    expect(at([null, -1])).not.toBe(at([Number.NaN, -1]))
    expect(at([0, -1])).not.toBe(at(['0', -1]))
    expect(at([0, -1])).not.toBe(at([-0, -1]))
    expect(programFingerprint(program([[1]], [['read', { site: 'x', when: new Date(0) as never }, []]]))).toBeNull()
    expect(programFingerprint(program([[1]], [['read', { site: 'x', raw: new Uint8Array(2) as never }, []]]))).toBeNull()
  })
})

describe('validation cache', () => {
  test('a hit skips validation but still refuses ids outside the vocabulary and bad locations', async () => {
    const nodes = scaled(f32([2], [1]))
    const good = await handle.run([{ id: 'a', program: program([[5, 6, 7]], nodes) }])
    expect(good[0]!.ok).toBe(true)
    const hits = handle.plans.hits
    const again = await handle.run([{ id: 'b', program: program([[9, 10, 11]], nodes) }])
    expect(again[0]!.ok).toBe(true)
    expect(handle.plans.hits).toBe(hits + 1)
    const [badId] = await handle.run([{ id: 'c', program: program([[9, 99999, 11]], nodes) }])
    expect(badId!.ok).toBe(false)
    if (!badId!.ok) expect(badId!.error.code).toBe('PROGRAM_INVALID')
    const [badLoc] = await handle.run([{ id: 'd', program: program([[9, 10, 11]], nodes, [null] as never) }])
    expect(badLoc!.ok).toBe(false)
    const [fraction] = await handle.run([{ id: 'e', program: program([[9, 10.5, 11]], nodes) }])
    expect(fraction!.ok).toBe(false)
  })

  test('a new length is validated again (an index past the end is refused, not served from the cache)', async () => {
    const nodes: ProgramNode[] = [
      ['read', { site: 'transformer.h.1', port: 'output', invoke: 0 }, []], ['index', { index: [0, 4] }, [0]], ['save', { name: 'h' }, [1]],
    ]
    expect((await handle.run([{ id: 'a', program: program([[1, 2, 3, 4, 5, 6]], nodes) }]))[0]!.ok).toBe(true)
    const [short] = await handle.run([{ id: 'b', program: program([[1, 2, 3]], nodes) }])
    expect(short!.ok).toBe(false)
    if (!short!.ok) expect(short!.error.code).toBe('PROGRAM_INVALID')
  })

  test('results on a hit equal a fresh handle\'s', async () => {
    const p = program([[3, 1, 4, 1, 5]], scaled(f32([0.5], [1])))
    await handle.run([{ id: 'warm', program: p }])
    const [hit] = await handle.run([{ id: 'hit', program: p }])
    const fresh = await onnxBackend().loadModel({ name: 'demo-gpt2', path: DIR })
    const [cold] = await fresh.run([{ id: 'cold', program: p }])
    await fresh.dispose?.()
    if (!hit!.ok || !cold!.ok) throw new Error('run failed')
    expect(hit!.stats.cacheHit).toBe(true)
    expect(Array.from(hit!.saves.h!.data as Float32Array)).toEqual(Array.from(cold!.saves.h!.data as Float32Array))
  })
})

describe('SessionCache', () => {
  test('LRU eviction releases entries, but not under a run that still uses them', async () => {
    const released: string[] = []
    const cache = new SessionCache<{ name: string; release: () => void }>(1)
    const make = (name: string) => async () => ({ name, release: () => { released.push(name) } })
    let inside = ''
    await cache.use('a', make('a'), async value => {
      await cache.get('b', make('b'))
      inside = released.join(',')
      return value
    })
    expect(inside).toBe('')
    expect(released).toEqual(['a'])
    expect((await cache.get('b', make('b2'))).hit).toBe(true)
    await cache.clear()
    expect(released).toEqual(['a', 'b'])
  })
})

test('tokenFeeds writes int64 ids, mask and positions with right padding', () => {
  const { ids, mask, positions } = tokenFeeds([[3, 4095, 7], [9]], 3)
  expect(Array.from(ids)).toEqual([3n, 4095n, 7n, 9n, 0n, 0n])
  expect(Array.from(mask)).toEqual([1n, 1n, 1n, 1n, 0n, 0n])
  expect(Array.from(positions)).toEqual([0n, 1n, 2n, 0n, 0n, 0n])
  expect(Array.from(tokenFeeds([[1]], 3, 50256).ids)).toEqual([1n, 50256n, 50256n])
})

describe('shared module calls (one call over the rows of several arguments)', () => {
  const mlp = (l: number): string => `transformer.h.${l}.mlp`
  const read = (l: number, invoke = 0): ProgramNode => ['read', { site: `transformer.h.${l}`, port: 'output', invoke }, []]

  /** Node `node` of `nodes` computed by a Program holding only its ancestors and the earlier writes (so no sharing). */
  async function alone (ids: number[][], nodes: ProgramNode[], node: number): Promise<Float32Array> {
    const keep: ProgramNode[] = []
    const map = new Map<number, number>()
    const visit = (n: number): number => {
      const known = map.get(n)
      if (known !== undefined) return known
      const [op, attrs, inputs] = nodes[n]!
      const mapped = inputs.map(visit)
      keep.push([op, attrs, mapped])
      map.set(n, keep.length - 1)
      return keep.length - 1
    }
    nodes.forEach(([op], n) => { if (op === 'write' && n < node) visit(n) }) // writes change what later reads see
    const last = visit(node)
    keep.push(['save', { name: 'x' }, [last]])
    const [result] = await handle.run([{ id: 'alone', program: program(ids, keep) }])
    if (!result!.ok) throw new Error(result!.error.message)
    return result!.saves.x!.data as Float32Array
  }

  async function check (ids: number[][], nodes: ProgramNode[], expectShared: boolean): Promise<void> {
    const calls = nodes.flatMap(([op], i) => op === 'module_call' ? [i] : [])
    const saved: ProgramNode[] = [...nodes, ...calls.map((n, k): ProgramNode => ['save', { name: `c${k}` }, [n]])]
    const [result] = await handle.run([{ id: 'shared', program: program(ids, saved) }])
    if (!result!.ok) throw new Error(result!.error.message)
    const { compile } = await import('../src/compile/compile.js')
    const { batchLayout } = await import('../src/compile/layout.js')
    const p = program(ids, saved)
    const compiled = compile(handle.loaded.graph, [{ program: p }], batchLayout([{ program: p }], (_, k) => ids[k]!))
    expect(compiled.model.graph!.node.some(n => n.output.some(o => o.startsWith('weft.rows.')))).toBe(expectShared)
    for (const [k, n] of calls.entries()) {
      const want = await alone(ids, nodes, n)
      const got = result!.saves[`c${k}`]!.data as Float32Array
      expect(got.length).toBe(want.length)
      let diff = 0
      let scale = 0
      for (let i = 0; i < got.length; i++) { diff = Math.max(diff, Math.abs(got[i]! - want[i]!)); scale = Math.max(scale, Math.abs(want[i]!)) }
      expect(diff / scale).toBeLessThan(1e-5) // summation order differs between one [n, d] GEMM and n GEMVs
    }
  }

  test('logit lens: ln_f and lm_head over every layer (mixed ranks) equal the calls one by one', async () => {
    const nodes: ProgramNode[] = []
    for (let l = 0; l < 6; l++) {
      nodes.push(read(l))
      if (l % 2 === 0) nodes.push(['index', { index: [0, -1] }, [nodes.length - 1]])
      nodes.push(['module_call', { module: 'transformer.ln_f' }, [nodes.length - 1]], ['module_call', { module: 'lm_head' }, [nodes.length]])
    }
    await check([[5, 9, 200, 31, 7]], nodes, true)
    await check([[5, 9, 200]], nodes, true) // same structure, other length: same session
  })

  test('joined to the forward\'s own ln_f and lm_head when the logits are read: logits unchanged, lens equal', async () => {
    const ids = [[5, 9, 200, 31, 7, 77]]
    const nodes: ProgramNode[] = []
    for (let l = 0; l < 6; l++) {
      nodes.push(read(l), ['index', { index: [0, -1] }, [nodes.length]])
      nodes.push(['module_call', { module: 'transformer.ln_f' }, [nodes.length - 1]], ['module_call', { module: 'lm_head' }, [nodes.length]])
    }
    nodes.push(['read', { site: 'lm_head', port: 'output', invoke: 0 }, []])
    const logitsNode = nodes.length - 1
    await check(ids, nodes, true)
    const [result] = await handle.run([{ id: 'logits', program: program(ids, [...nodes, ['save', { name: 'logits' }, [logitsNode]]]) }])
    if (!result!.ok) throw new Error(result!.error.message)
    const plain = (await handle.loaded.forward(ids, ['logits'])).logits!.data as Float32Array
    const got = result!.saves.logits!.data as Float32Array
    let diff = 0
    for (let i = 0; i < plain.length; i++) diff = Math.max(diff, Math.abs(got[i]! - plain[i]!))
    expect(diff).toBeLessThan(1e-4)
    const { compile } = await import('../src/compile/compile.js')
    const { batchLayout } = await import('../src/compile/layout.js')
    const p = program(ids, [...nodes, ['save', { name: 'logits' }, [logitsNode]]])
    const compiled = compile(handle.loaded.graph, [{ program: p }], batchLayout([{ program: p }], () => ids[0]!))
    const matmulsOnHead = compiled.model.graph!.node.filter(n => n.opType === 'MatMul' && n.input[1] === 'transformer.wte.weight:T')
    expect(matmulsOnHead.length).toBe(1) // one pass over the head serves the logits and all six lens rows
  })

  test('dependent calls are not shared; crossing chains do not close a cycle', async () => {
    const chain: ProgramNode[] = [read(1), ['module_call', { module: mlp(2) }, [0]], ['module_call', { module: mlp(2) }, [1]]]
    await check([[1, 2, 3, 4]], chain, false)
    const crossing: ProgramNode[] = [
      read(1), read(3),
      ['module_call', { module: mlp(1) }, [0]], ['module_call', { module: mlp(2) }, [2]],
      ['module_call', { module: mlp(2) }, [1]], ['module_call', { module: mlp(1) }, [4]],
    ]
    await check([[1, 2, 3, 4]], crossing, true)
  })

  test('calls on two invokes are shared; a write that depends on a call turns sharing off', async () => {
    const two: ProgramNode[] = [read(2, 0), read(2, 1), ['module_call', { module: 'transformer.ln_f' }, [0]], ['module_call', { module: 'transformer.ln_f' }, [1]]]
    await check([[1, 2, 3, 4], [9, 8, 7]], two, true)
    const writes: ProgramNode[] = [
      read(1), ['module_call', { module: mlp(1) }, [0]], ['write', { site: 'transformer.h.2', port: 'output', invoke: 0 }, [1]],
      read(3), ['module_call', { module: mlp(1) }, [3]],
    ]
    await check([[1, 2, 3, 4]], writes, false)
  })
})

describe('prepacking default', () => {
  test("'auto' prepacks when weights × live sessions fit the budget; explicit settings win", async () => {
    const { autoPrepacking, weightBytes } = await import('../src/backend/onnx-backend.js')
    const bytes = weightBytes(handle.loaded.graph)
    expect(bytes).toBeGreaterThan(20e6) // demo-gpt2: 26 MiB of float32 initializers
    expect(bytes).toBeLessThan(40e6)
    expect(handle.loaded.sessions.init.prepacking).toBe(true)
    expect(autoPrepacking(622 * 2 ** 20, 17, 2 * 2 ** 30)).toBe(false) // gpt2-small with 16 cached sessions
    expect(autoPrepacking(622 * 2 ** 20, 3, 2 * 2 ** 30)).toBe(true)
    const off = await onnxBackend({ prepacking: false }).loadModel({ name: 'demo-gpt2', path: DIR }) as OnnxModelHandle
    expect(off.loaded.sessions.init.prepacking).toBe(false)
    await off.dispose()
  })
})
