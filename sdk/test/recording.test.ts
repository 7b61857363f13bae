// Recording without an engine: the Program a trace callback builds, its shapes, and errors at the right line.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { WeftError, resolveAlias, type Manifest, type Program } from '@weft/core'
import { Model, ValueProxy, type Executor, type GPT2 } from '../src/index.js'
import { gpt2Manifest } from './fixtures/gpt2-manifest.js'

const PARIS = [328, 370, 293, 3606, 297] // "The capital of France is" (reference token_ids, prompt 0)
const JAPAN = [328, 370, 293, 3430, 297]

const noRun = { kind: 'local', run: async () => { throw new Error('recording tests never run') } } as unknown as Executor
const model = new Model<GPT2>(noRun, 'demo-gpt2', gpt2Manifest(), null)
const loose = new Model(noRun, 'demo-gpt2', gpt2Manifest(), null)

function thrown (fn: () => unknown): WeftError {
  try { fn() } catch (error) { if (WeftError.is(error)) return error; throw error }
  throw new Error('expected a WeftError')
}

const ops = (program: Program): string[] => program.nodes.map(([op]) => op)

describe('recording a Program', () => {
  test('the brief example records reads, an indexed write, a lens and named saves', () => {
    const { program, types } = model.record(PARIS, (m) => {
      const h = m.transformer.h[3].output
      m.transformer.h[4].mlp.output.set(h.at(':', -1).mul(0))
      return { h: h.save(), logits: m.lm_head.output.save(), lens: m.lm_head.call(m.transformer.ln_f.call(h)).argmax(-1).save() }
    })
    expect(program.invokes).toEqual([{ ids: PARIS }])
    expect(program.model).toEqual({ name: 'demo-gpt2', revision: gpt2Manifest().revision })
    expect(ops(program)).toEqual(['read', 'index', 'const', 'mul', 'write', 'save', 'read', 'save', 'module_call', 'module_call', 'argmax', 'save'])
    expect(program.nodes[0]).toEqual(['read', { site: 'transformer.h.3', port: 'output', invoke: 0 }, []])
    expect(program.nodes[4]).toEqual(['write', { site: 'transformer.h.4.mlp', port: 'output', invoke: 0 }, [3]])
    expect(program.nodes[1]![1]).toEqual({ index: [null, -1] })
    expect(types).toEqual({
      h: { shape: [1, 5, 256], dtype: 'float32' },
      logits: { shape: [1, 5, 4096], dtype: 'float32' },
      lens: { shape: [1, 5], dtype: 'int64' },
    })
    expect(program.locations).toHaveLength(program.nodes.length)
    expect(program.locations![0]!.file).toMatch(/recording\.test\.ts$/)
  })

  test('slice assignment records write with index; a read that is only set is dropped', () => {
    const { program } = model.record(PARIS, (m) => { m.transformer.h[2].output.at(0, '1:3').set(0) })
    expect(ops(program)).toEqual(['const', 'write'])
    expect(program.nodes[1]![1]).toEqual({ site: 'transformer.h.2', port: 'output', invoke: 0, index: [0, [1, 3, null]] })
  })

  test('lists: negative indices, at(), iteration, length', () => {
    model.record(PARIS, (m) => {
      expect(m.transformer.h.length).toBe(6)
      expect(m.transformer.h.at(-1).path).toBe('transformer.h.5')
      expect((loose as Model).manifest).toBeDefined()
      expect([...m.transformer.h].map((b) => b.path)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `transformer.h.${i}`))
      expect(m.transformer.h[0].attn.probs.output.shape).toEqual([1, 8, 5, 5])
      expect(m.transformer.h[0].mlp.act.output.shape).toEqual([1, 5, 1024])
      expect(m.transformer.wte.input.dtype).toBe('int64')
      return undefined
    })
    loose.record(PARIS, (m) => { expect(m.transformer.h[-2]!.path).toBe('transformer.h.4') })
  })

  test('invokes: values cross invokes (activation patching) and unnamed saves take their key names', () => {
    const { program } = model.record((t) => {
      const clean = t.invoke(PARIS, (m) => m.transformer.h[2].output.at(0, -1))
      return t.invoke(JAPAN, (m) => {
        m.transformer.h[2].output.at(0, -1).set(clean)
        return { patched: m.lm_head.output.at(0, -1).softmax(-1) }
      })
    })
    expect(program.invokes).toHaveLength(2)
    const write = program.nodes.find(([op]) => op === 'write')!
    expect(write[1]).toMatchObject({ site: 'transformer.h.2', invoke: 1, index: [0, -1] })
    expect(program.nodes[write[2][0]!]![0]).toBe('index')
    expect(program.nodes.filter(([op]) => op === 'save').map(([, attrs]) => attrs.name)).toEqual(['patched'])
  })

  test('scan reports shapes without running; stop is recorded', () => {
    const shapes = model.scan(PARIS, (m, t) => {
      const top = m.lm_head.output.at(0, -1).topk(5)
      t.stop()
      return { values: top.values, ids: top.indices, mean: m.transformer.h[1].output.mean(-1, { keepdims: true }) }
    })
    expect(shapes).toEqual({
      values: { shape: [5], dtype: 'float32' }, ids: { shape: [5], dtype: 'int64' },
      mean: { shape: [1, 5, 1], dtype: 'float32' },
    })
    const { program } = model.record(PARIS, (m, t) => { const x = m.lm_head.output.save('x'); t.stop(); return x })
    expect(ops(program)).toEqual(['read', 'save', 'stop'])
  })

  test('text invokes without a tokenizer stay text with a symbolic sequence length', () => {
    const { program, types } = model.record('The capital of France is', (m) => ({ h: m.transformer.h[0].output }))
    expect(program.invokes).toEqual([{ text: 'The capital of France is' }])
    expect(types.h!.shape).toEqual([1, 'seq@0', 256])
  })
})

describe('recording errors throw at the line that made them', () => {
  test('unknown module names the path and what exists', () => {
    const error = thrown(() => loose.record(PARIS, (m) => m.transformer.h[3].mlpp!.output)) // unknown-module-line
    const line = lineOf('// unknown-module-line')
    expect(error.code).toBe('PROGRAM_INVALID')
    expect(error.message).toContain("unknown module 'transformer.h.3.mlpp'")
    expect(error.message).toContain('ln_1, attn, ln_2, mlp')
    expect(error.message).toContain(`recording.test.ts:${line}:`)
  })

  test('out-of-range layer index', () => {
    const error = thrown(() => model.record(PARIS, (m) => m.transformer.h[6]!.output))
    expect(error.message).toContain("unknown module 'transformer.h.6'")
    expect(error.message).toContain('list of 6')
  })

  test('shape mismatch in a write names the site and both shapes', () => {
    const error = thrown(() => model.record(PARIS, (m) => {
      m.transformer.h[1].output.set(m.transformer.h[0].mlp.c_fc.output) // shape-mismatch-line
    }))
    expect(error.message).toContain("'transformer.h.1'")
    expect(error.message).toContain('[1,5,1024]')
    expect(error.message).toContain('[1,5,256]')
    expect(error.message).toContain(`recording.test.ts:${lineOf('// shape-mismatch-line')}:`)
    expect(error.details.location).toMatchObject({ line: lineOf('// shape-mismatch-line') })
  })

  test('module call with the wrong input width gives the expected shape', () => {
    const error = thrown(() => model.record(PARIS, (m) => m.lm_head.call(m.transformer.h[0].mlp.c_fc.output)))
    expect(error.message).toContain("'lm_head' expects [..., 256]")
  })

  test('out-of-range sequence index and bad slice strings', () => {
    expect(thrown(() => model.record(PARIS, (m) => m.transformer.h[0].output.at(0, 7))).message).toContain('out of range')
    expect(thrown(() => model.record(PARIS, (m) => m.transformer.h[0].output.at('1:x'))).message).toContain("non-integer bound 'x'")
    expect(thrown(() => model.record(PARIS, (m) => m.transformer.h[0].output.matmul([[1, 2]]))).code).toBe('PROGRAM_INVALID')
  })

  test('bad token ids and duplicate save names', () => {
    expect(thrown(() => model.record([1, 99999], (m) => m.lm_head.output)).message).toContain('outside the vocabulary')
    expect(thrown(() => model.record(PARIS, (m) => [m.lm_head.output.save('a'), m.transformer.ln_f.output.save('a')])).message)
      .toContain("already saved as 'a'")
  })
})

describe('standard names and skip', () => {
  test('layers[i], .attn, .mlp, embed, ln_final and lm_head record the same Program as the HF paths', () => {
    const standard = model.record(PARIS, (m) => {
      m.layers[2].mlp.output.set(0)
      return { a: m.layers[-1].attn.probs.output, e: m.embed.output, f: m.ln_final.output, l: m.lm_head.call(m.layers[3].output) }
    }).program
    const hf = model.record(PARIS, (m) => {
      m.transformer.h[2].mlp.output.set(0)
      return { a: m.transformer.h[5].attn.probs.output, e: m.transformer.wte.output, f: m.transformer.ln_f.output, l: m.lm_head.call(m.transformer.h[3].output) }
    }).program
    expect(standard.nodes).toEqual(hf.nodes)
    expect(standard.nodes[0]).toEqual(['const', expect.anything(), []])
    expect(loose.record(PARIS, (m) => m.layers.length === 6 ? m.layers[0]!.output : m.lm_head.output).program.nodes[0]![1]).toMatchObject({ site: 'transformer.h.0' })
    // iteration and the error listing still show the HF names only
    expect(Object.keys(loose.record(PARIS, (m) => { expect(Object.keys(m)).toEqual(['transformer', 'lm_head']); return m.lm_head.output }).types)).toEqual(['result'])
  })

  test('core resolves standard names per family (GPT-NeoX: lm_head is embed_out)', () => {
    const neox = { family: 'gpt_neox', modules: ['gpt_neox.embed_in', 'gpt_neox.layers', 'gpt_neox.final_layer_norm', 'embed_out'].map((path) => ({ path })) } as unknown as Manifest
    expect(resolveAlias(neox, 'lm_head')).toBe('embed_out')
    expect(resolveAlias(neox, 'layers.3.attn.probs')).toBe('gpt_neox.layers.3.attention.probs')
    expect(resolveAlias(neox, 'embed_out')).toBe('embed_out')
    const llama = { family: 'llama', modules: ['model.embed_tokens', 'model.layers', 'model.norm', 'lm_head'].map((path) => ({ path })) } as unknown as Manifest
    expect(resolveAlias(llama, 'layers.0.attn')).toBe('model.layers.0.self_attn')
    expect(resolveAlias(llama, 'ln_final')).toBe('model.norm')
    expect(resolveAlias({ family: 'onnx', modules: [] } as unknown as Manifest, 'layers.0')).toBe('layers.0')
  })

  test('.inputs by HF argument name: hidden_states (the input port) and attention_mask; unknown names throw', () => {
    const { program, types } = model.record(PARIS, (m) => ({
      h: m.layers[1].attn.inputs.hidden_states, mask: m.layers[1].attn.inputs.attention_mask, x: m.transformer.h[0].attn.c_attn.inputs.x,
    }))
    expect(program.nodes[0]).toEqual(['read', { site: 'transformer.h.1.attn', port: 'input', invoke: 0 }, []])
    expect(program.nodes[1]).toEqual(['read', { site: 'transformer.h.1.attn.inputs.attention_mask', port: 'output', invoke: 0 }, []])
    expect(types.mask).toEqual({ shape: [1, 1, 5, 5], dtype: 'float32' })
    expect(Object.keys(loose.record(PARIS, (m) => { expect(Object.keys(m.transformer.h[1]!.attn!.inputs)).toEqual(['hidden_states', 'attention_mask', 'position_ids']); return m.lm_head.output }).types)).toEqual(['result'])
    // the inputs container is not a submodule
    expect(loose.record(PARIS, (m) => { expect(m.transformer.h[1]!.attn!.modules().map((e) => e.path)).not.toContain('transformer.h.1.attn.inputs'); return m.lm_head.output }).program.nodes.length).toBe(2)
    // @ts-expect-error: the typed tree names every input, so a misspelling fails tsc
    const error = thrown(() => model.record(PARIS, (m) => m.layers[1].attn.inputs.position_id)) // inputs-line
    expect(error.message).toContain("'transformer.h.1.attn' has no input 'position_id' (inputs: hidden_states, attention_mask, position_ids)")
    expect(error.message).toContain(`recording.test.ts:${lineOf('// inputs-line')}:`)
  })

  test('.inputs: position_ids of blocks and attention (int64), embeddings by the caller\'s name; integer inputs are not differentiable', () => {
    const { program, types } = model.record(PARIS, (m) => ({
      block: m.transformer.h[2].inputs.position_ids, attn: m.layers[2].attn.inputs.position_ids, blockMask: m.layers[2].inputs.attention_mask,
      ids: m.transformer.wte.inputs.input_ids, pos: m.transformer.wpe.inputs.position_ids, torch: m.embed.inputs.input,
    }))
    expect(program.nodes.filter(([op]) => op === 'read').map(([, a]) => `${String(a.site)}:${String(a.port)}`)).toEqual([
      'transformer.h.2.inputs.position_ids:output', 'transformer.h.2.attn.inputs.position_ids:output', 'transformer.h.2.inputs.attention_mask:output',
      'transformer.wte:input', 'transformer.wpe:input', 'transformer.wte:input',
    ])
    expect(types.block).toEqual({ shape: [1, 5], dtype: 'int64' })
    expect(types.pos).toEqual({ shape: [1, 5], dtype: 'int64' })
    expect(types.blockMask).toEqual({ shape: [1, 1, 5, 5], dtype: 'float32' })
    // writes cast to the site's dtype like any write
    expect(ops(model.record(PARIS, (m) => { m.transformer.wpe.inputs.position_ids.set(m.transformer.wpe.inputs.position_ids.add(3)); return m.lm_head.output }).program)).toContain('write')
    const grad = thrown(() => model.record(PARIS, (m) => m.transformer.wpe.inputs.position_ids.grad(m.lm_head.output.at(0, -1, 0)))) // int-grad-line
    expect(grad.code).toBe('PROGRAM_INVALID')
    expect(grad.message).toContain('wrt must be a float value, got int64')
    expect(grad.message).toContain(`recording.test.ts:${lineOf('// int-grad-line')}:`)
  })

  test('skip() records output.set(input); modules whose shape changes refuse it', () => {
    const { program } = model.record(PARIS, (m) => { m.layers[3].skip(); return m.lm_head.output })
    expect(ops(program).slice(0, 3)).toEqual(['read', 'write', 'read'])
    expect(program.nodes[0]).toEqual(['read', { site: 'transformer.h.3', port: 'input', invoke: 0 }, []])
    expect(program.nodes[1]).toEqual(['write', { site: 'transformer.h.3', port: 'output', invoke: 0 }, [0]])
    const error = thrown(() => model.record(PARIS, (m) => { m.transformer.h[0].mlp.c_fc.skip(); return m.lm_head.output })) // skip-line
    expect(error.message).toContain("cannot skip 'transformer.h.0.mlp.c_fc'")
    expect(error.message).toContain(`recording.test.ts:${lineOf('// skip-line')}:`)
    expect(thrown(() => model.record(PARIS, (m) => { m.transformer.h[0].attn.probs.skip(); return m.lm_head.output })).message).toContain('no input and output sites')
  })
})

describe('mistakes that used to pass silently throw at the line, saying what to write instead', () => {
  test('`if (proxy > 0)` (a proxy compared or converted to a number)', () => {
    const error = thrown(() => model.record(PARIS, (m) => {
      const h = m.transformer.h[0].output
      // @ts-expect-error comparing a proxy with a number is the mistake under test
      if (h > 0) h.save() // compare-line
    }))
    expect(error.code).toBe('PROGRAM_INVALID')
    expect(error.message).toContain('x.gt(0)')
    expect(error.message).toContain(`recording.test.ts:${lineOf('// compare-line')}:`)
    expect(thrown(() => model.record(PARIS, (m) => Number(m.lm_head.output))).message).toContain('cannot be compared or converted to a number')
    expect(thrown(() => model.record(PARIS, (m) => m.lm_head.output.valueOf())).message).toContain('x.add(1)')
    // string conversion stays allowed (error messages, logging)
    expect(model.record(PARIS, (m) => { expect(`${m.lm_head.output}`).toMatch(/^SiteProxy\(lm_head\.output@0/); return m.lm_head.output }).program.nodes.length).toBe(2)
  })

  test("NNsight's `output[0]` says to write `.output`", () => {
    const error = thrown(() => model.record(PARIS, (m) => {
      return (m.transformer.h[2].output as unknown as Record<number, unknown>)[0] // tuple-line
    }))
    expect(error.code).toBe('PROGRAM_INVALID')
    expect(error.message).toContain('write `.output` instead of `.output[0]`')
    expect(error.message).toContain('`.at(0)`')
    expect(error.message).toContain(`recording.test.ts:${lineOf('// tuple-line')}:`)
  })

  test('a proxy from an earlier trace is stale', () => {
    let kept: ValueProxy | undefined
    model.record(PARIS, (m) => { kept = m.transformer.h[0].output; return kept })
    const error = thrown(() => kept!.add(1)) // stale-line
    expect(error.code).toBe('PROGRAM_INVALID')
    expect(error.message).toContain('stale proxy')
    expect(error.message).toContain('save it there and use the resulting Tensor')
    expect(error.message).toContain(`recording.test.ts:${lineOf('// stale-line')}:`)
    // into another trace: still the cross-trace error
    expect(thrown(() => model.record(PARIS, (m) => m.transformer.h[1].output.add(kept!))).message).toContain('another trace')
  })

  test('`.item()` inside a trace', () => {
    const error = thrown(() => model.record(PARIS, (m) => m.lm_head.output.max().item())) // item-line
    expect(error.code).toBe('PROGRAM_INVALID')
    expect(error.message).toContain('call `.item()` on the resulting Tensor after the trace')
    expect(error.message).toContain(`recording.test.ts:${lineOf('// item-line')}:`)
  })
})

/** The 1-based line in this file containing `marker` (its first occurrence after this helper's own text). */
function lineOf (marker: string): number {
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n')
  return source.findIndex((line) => line.includes(marker) && !line.includes('lineOf(')) + 1
}
