// `model.edit()` end to end on demo-gpt2 (wire round trip through Weft.simulate): edited models' traces, invokes, cache,
// composition, in-place edits and generation against the float64 oracle with the same hook (unedited: transformers).
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Weft, Tensor, type GPT2, type Model } from '../src/index.js'
import { MODELS_DIR, maxAbsDiff, reference, referencePrompts } from './fixtures/reference.js'
import { loadOracle, maxRelError, oracleForward, oracleGreedy, type Oracle, type RowEdit } from '../../providers/onnx/test/generate-oracle.js'

const MODEL = 'demo-gpt2'
const { token_ids: tokenIds } = referencePrompts(MODEL)
const [P0, P4] = [tokenIds[0]!, tokenIds[4]!]
const STEER = Tensor.of(Array.from({ length: 256 }, (_, i) => 2 * Math.sin(0.37 * i + 1)))

/** Oracle row edits (applied to every position of every forward): zero a module output, scale one, add a vector. */
const zero = (path: string): RowEdit => (p, _s, row) => { if (p !== path) return false; row.fill(0); return true }
const scale = (path: string, by: number): RowEdit => (p, _s, row) => { if (p !== path) return false; row.forEach((v, i) => { row[i] = v * by }); return true }
const steer = (path: string): RowEdit => (p, _s, row) => { if (p !== path) return false; row.forEach((v, i) => { row[i] = v + STEER.get(i) }); return true }
const both = (...edits: RowEdit[]): RowEdit => (p, s, row) => edits.map((e) => e(p, s, row)).some(Boolean)

let weft: Weft
let model: Model<GPT2>
let oracle: Oracle
const logitsOf = (ids: number[], edit?: RowEdit): Float64Array => oracleForward(oracle, ids, ids.length, edit).get('logits')!.data

beforeAll(async () => {
  weft = await Weft.simulate({ modelsDir: MODELS_DIR })
  model = await weft.model<GPT2>(MODEL)
  oracle = await loadOracle(`${MODELS_DIR}/${MODEL}/`)
})
afterAll(async () => { await weft.close() })

describe('edited models trace with the edit', () => {
  test('zeroing transformer.h.2.mlp: the edited model matches the hooked oracle, the original still matches transformers', async () => {
    const edited = model.edit((m) => { m.transformer.h[2].mlp.output.set(0) })
    expect(edited).not.toBe(model)
    const out = await edited.trace(P0, (m) => ({ logits: m.lm_head.output, mlp: m.transformer.h[2].mlp.output }))
    expect(maxAbsDiff(out.logits.toFlat(), logitsOf(P0, zero('transformer.h.2.mlp')))).toBeLessThan(1e-4)
    expect(out.mlp.toFlat().every((v) => v === 0)).toBe(true)            // the trace's read sees the edited value
    const plain = await model.trace(P0, (m) => m.lm_head.output)
    expect(maxAbsDiff(plain.toFlat(), reference(MODEL, 'p0.logits').data)).toBeLessThan(1e-3)
    expect(maxAbsDiff(plain.toFlat(), logitsOf(P0))).toBeLessThan(1e-4)
    expect(maxAbsDiff(plain.toFlat(), out.logits.toFlat())).toBeGreaterThan(1)          // the edit matters
  })

  test("the edit's nodes come first in the recorded Program; scan and cache see the edited model", async () => {
    const edited = model.edit((m) => { m.transformer.h[2].mlp.output.set(0) })
    const { program } = edited.record(P0, (m) => m.transformer.h[2].mlp.output)
    expect(program.nodes.slice(0, 2).map(([op]) => op)).toEqual(['const', 'write'])
    expect(program.nodes[1]![1]).toMatchObject({ site: 'transformer.h.2.mlp', port: 'output', invoke: 0 })
    expect(program.nodes.slice(2).map(([op]) => op)).toEqual(['read', 'save'])
    expect(model.record(P0, (m) => m.transformer.h[2].mlp.output).program.nodes.map(([op]) => op)).toEqual(['read', 'save'])
    expect(edited.scan(P0, (m) => ({ h: m.transformer.h[2].output }))).toEqual({ h: { shape: [1, 5, 256], dtype: 'float32' } })
    const cache = await edited.cache(P4, { modules: ['transformer.h.2.mlp', 'transformer.h.5'] })
    expect(cache['transformer.h.2.mlp']!.toFlat().every((v) => v === 0)).toBe(true)
    const expected = oracleForward(oracle, P4, P4.length, zero('transformer.h.2.mlp')).get('transformer.h.5')!.data
    expect(maxAbsDiff(cache['transformer.h.5']!.toFlat(), expected)).toBeLessThan(1e-4)
  })

  test('an edit reading a site: attention output of block 2 scaled by 0.5', async () => {
    const edited = model.edit((m) => {
      const attn = m.transformer.h[2].attn.output
      attn.set(attn.mul(0.5))
    })
    const logits = await edited.trace(P4, (m) => m.lm_head.output)
    expect(maxAbsDiff(logits.toFlat(), logitsOf(P4, scale('transformer.h.2.attn', 0.5)))).toBeLessThan(1e-4)
  })

  test('every invoke gets the edit (a steering Tensor added to block 1), values still cross invokes', async () => {
    const edited = model.edit((m) => {
      const h = m.transformer.h[1].output
      h.set(h.add(STEER))
    })
    const out = await edited.trace((t) => {
      const a = t.invoke(P0, (m) => ({ logits: m.lm_head.output, h5: m.transformer.h[5].output }))
      const b = t.invoke(P4, (m) => m.lm_head.output)
      const patched = t.invoke(P4, (m) => { m.transformer.h[5].output.set(a.h5); return m.lm_head.output })
      return { a: a.logits, b, patched }
    })
    const edit = steer('transformer.h.1')
    expect(maxAbsDiff(out.a.toFlat(), logitsOf(P0, edit))).toBeLessThan(1e-4)
    expect(maxAbsDiff(out.b.toFlat(), logitsOf(P4, edit))).toBeLessThan(1e-4)
    expect(maxAbsDiff(out.patched.toFlat(), logitsOf(P0, edit))).toBeLessThan(1e-4)   // same length: h5 decides the logits
    const { program } = edited.record((t) => { t.invoke(P0, (m) => m.lm_head.output); t.invoke(P4, (m) => m.lm_head.output) })
    expect(program.nodes.filter(([op]) => op === 'write').map(([, attrs]) => attrs.invoke)).toEqual([0, 1])
  })
})

describe('composition, in place, errors', () => {
  test('edits compose in order (the second reads what the first wrote); the first edited model is unaffected', async () => {
    const once = model.edit((m) => { const h = m.transformer.h[1].output; h.set(h.add(STEER)) })
    const twice = once.edit((m) => {
      const h = m.transformer.h[1].output
      h.set(h.mul(0.5))
      m.transformer.h[3].mlp.output.set(0)
    })
    const composed = both(steer('transformer.h.1'), scale('transformer.h.1', 0.5), zero('transformer.h.3.mlp'))
    expect(maxAbsDiff((await twice.trace(P0, (m) => m.lm_head.output)).toFlat(), logitsOf(P0, composed))).toBeLessThan(1e-4)
    expect(maxAbsDiff((await once.trace(P0, (m) => m.lm_head.output)).toFlat(), logitsOf(P0, steer('transformer.h.1')))).toBeLessThan(1e-4)
  })

  test('inplace edits the model itself; clearEdits removes them', async () => {
    const expected = logitsOf(P0, zero('transformer.h.2.mlp'))
    try {
      expect(model.edit((m) => { m.transformer.h[2].mlp.output.set(0) }, { inplace: true })).toBe(model)
      expect(maxAbsDiff((await model.trace(P0, (m) => m.lm_head.output)).toFlat(), expected)).toBeLessThan(1e-4)
      const same = await weft.model<GPT2>(MODEL)                       // the Weft hands out this same Model
      expect(maxAbsDiff((await same.trace(P0, (m) => m.lm_head.output)).toFlat(), expected)).toBeLessThan(1e-4)
    } finally {
      expect(model.clearEdits()).toBe(model)
    }
    expect(maxAbsDiff((await model.trace(P0, (m) => m.lm_head.output)).toFlat(), reference(MODEL, 'p0.logits').data)).toBeLessThan(1e-3)
  })

  test('an edit that saves, returns a value or names an unknown module throws at model.edit, naming the line', () => {
    expect(() => model.edit((m) => { m.transformer.h[0].output.save('h') }))
      .toThrow(/an edit cannot save values.*edit\.engine\.test\.ts/)
    expect(() => model.edit((m) => m.transformer.h[0].output as unknown as void))
      .toThrow(/an edit returns nothing.*edit\.engine\.test\.ts/)
    expect(() => model.edit((m) => { m.transformer.child('nope').output.set(0) }))
      .toThrow(/unknown module 'transformer.nope'.*edit\.engine\.test\.ts/)
    expect(model.record(P0, (m) => m.lm_head.output).program.nodes).toHaveLength(2)   // nothing leaked into the model
  })
})

describe('generate with an edited model', () => {
  test('the edit applies at every step: tokens and per-step logits equal the oracle hooked at every position', async () => {
    const edited = model.edit((m) => { m.transformer.h[2].mlp.output.set(0) })
    const out = await edited.generate(P0, { maxNewTokens: 4 }, (m, steps) => ({
      logits: steps.iter((m) => m.lm_head.output.at(0, -1)),
      prompt: m.transformer.h[2].mlp.output,
      mlp: steps.step(2, (m) => m.transformer.h[2].mlp.output),
    }))
    const hooked = oracleGreedy(oracle, P0, 4, zero('transformer.h.2.mlp'))
    expect(out.tokens).toEqual(hooked.tokens)
    out.logits.forEach((l, k) => expect(maxRelError(l.toFlat(), hooked.logits[k]!)).toBeLessThan(1e-4))
    expect([...out.prompt.toFlat(), ...out.mlp.toFlat()].every((v) => v === 0)).toBe(true)
    const plain = await model.generate(P0, { maxNewTokens: 4 })
    expect(plain.tokens).toEqual(oracleGreedy(oracle, P0, 4).tokens)
    expect(plain.tokens).not.toEqual(out.tokens)                                      // the edit matters
  })

  test('several prompts: every invoke generates with the edit', async () => {
    const edited = model.edit((m) => { const h = m.transformer.h[1].output; h.set(h.add(STEER)) })
    const out = await edited.generate({ maxNewTokens: 3 }, (g) => { g.invoke(P0, () => undefined); g.invoke(P4, () => undefined) })
    expect(out.tokens).toEqual([oracleGreedy(oracle, P0, 3, steer('transformer.h.1')).tokens, oracleGreedy(oracle, P4, 3, steer('transformer.h.1')).tokens])
  })
})
