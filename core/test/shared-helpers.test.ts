// Helpers that several packages used to write for themselves, now core's one copy: dtype promotion and axis
// normalisation (op table, ONNX lowering and gradients, the SDK's eager tensor), the cache-everything Program
// (`weft cache`, `model.cache`), placing edit nodes before a Program's own (the host's edit fragments, the SDK's
// `model.edit`) and the text tokenizer (engine, host tokenizer thread, SDK).
import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import {
  WeftError, cachePaths, cacheProgram, instanceFragments, normAxis, prependNodes, promote, textTokenizer, validateProgram, wrapAxis,
  type Program, type ProgramNode,
} from '@weft/core'
import { demoGpt2Manifest } from '@weft/core/testing'

const DEMO = new URL('../../models/demo-gpt2/', import.meta.url)

describe('dtype promotion', () => {
  test('the widest float wins over integers; float16 with bfloat16 computes in float32', () => {
    expect(promote(['int64', 'float16'], true)).toBe('float16')
    expect(promote(['float16', 'bfloat16'], false)).toBe('float32')
    expect(promote(['float16', 'bfloat16', 'float64'], false)).toBe('float64') // the ONNX lowering's copy said float32
    expect(promote(['float32', 'float64'], true)).toBe('float64')
  })

  test('among integers the widest wins; uint8 with int8 needs int32; bool stays bool unless arithmetic', () => {
    expect(promote(['uint8', 'int8'], false)).toBe('int32')
    expect(promote(['int8', 'int32'], true)).toBe('int32')
    expect(promote(['bool', 'bool'], false)).toBe('bool')
    expect(promote(['bool', 'bool'], true)).toBe('int64')
    expect(promote(['bool', 'uint8'], false)).toBe('uint8')
  })
})

describe('axis normalisation', () => {
  test('wrapAxis counts a negative axis from the end and checks nothing', () => {
    expect([-1, -3, 0, 2].map(a => wrapAxis(a, 3))).toEqual([2, 0, 0, 2])
    expect(wrapAxis(3, 3)).toBe(3) // an ONNX end index may equal the rank
  })

  test('normAxis refuses an axis out of range with a typed error naming the op', () => {
    expect(normAxis('softmax', -1, 4)).toBe(3)
    expect(normAxis('stack', 3, 4)).toBe(3)
    let error: unknown
    try { normAxis('softmax', -5, 4) } catch (e) { error = e }
    expect(WeftError.is(error, 'PROGRAM_INVALID')).toBe(true)
    expect((error as WeftError).message).toBe('softmax: axis -5 out of range for rank 4')
    expect(() => normAxis('topk', 1.5, 4)).toThrow('topk: axis 1.5 out of range for rank 4')
  })
})

describe('the cache-everything Program', () => {
  const manifest = demoGpt2Manifest()

  test('reads and saves the output of every real module, in forward order, under its path; it validates', () => {
    const paths = cachePaths(manifest)
    const modules = manifest.modules.filter(m => m.kind === 'module' && m.output !== undefined)
    expect(paths).toEqual(modules.map(m => m.path))
    expect(paths).not.toContain('transformer.h') // a ModuleList has no output
    expect(paths[0]).toBe('transformer')
    expect(paths).toContain('transformer.h.3.mlp')
    const program = cacheProgram(manifest, { ids: [1, 2, 3] })
    expect(program.model).toEqual({ name: 'demo-gpt2', revision: manifest.revision })
    expect(program.invokes).toEqual([{ ids: [1, 2, 3] }])
    expect(program.nodes.slice(0, 2)).toEqual([['read', { site: 'transformer', port: 'output', invoke: 0 }, []], ['save', { name: 'transformer' }, [0]]])
    expect(program.nodes).toHaveLength(2 * paths.length)
    expect(validateProgram(program, manifest)).toEqual([])
  })

  test('with sites it reads the finer sites too; listed modules and the input port are honoured', () => {
    const sites = manifest.modules.filter(m => m.kind === 'site' && m.output !== undefined).map(m => m.path)
    expect(sites.length).toBeGreaterThan(0)
    expect(cachePaths(manifest, { sites: true })).toEqual(manifest.modules.filter(m => m.output !== undefined).map(m => m.path))
    const inputs = cacheProgram(manifest, { ids: [5] }, { modules: ['transformer.h.1.mlp', 'lm_head'], port: 'input' })
    expect(inputs.nodes).toEqual([
      ['read', { site: 'transformer.h.1.mlp', port: 'input', invoke: 0 }, []], ['save', { name: 'transformer.h.1.mlp' }, [0]],
      ['read', { site: 'lm_head', port: 'input', invoke: 0 }, []], ['save', { name: 'lm_head' }, [2]],
    ])
    expect(validateProgram(inputs, manifest)).toEqual([])
  })

  test('an unknown module, or one without the port, is refused by name', () => {
    expect(() => cacheProgram(manifest, { ids: [1] }, { modules: ['transformer.h.9'] })).toThrow("cache: 'transformer.h.9' is not a module of demo-gpt2")
    expect(() => cacheProgram(manifest, { ids: [1] }, { modules: ['transformer.h'] })).toThrow("cache: 'transformer.h' has no output")
  })
})

describe('placing edit nodes before a Program\'s own', () => {
  const mlp = 'transformer.h.1.mlp'
  const zero: ProgramNode[] = [['read', { site: mlp, port: 'output' }, []], ['sub', {}, [0, 0]], ['write', { site: mlp, port: 'output' }, [1]]]
  const scale: ProgramNode[] = [['read', { site: 'transformer.h.0', port: 'output' }, []], ['write', { site: 'transformer.h.0', port: 'output' }, [0]]]

  test('instanceFragments: every fragment once per invoke, invoke attrs set, inputs moved to each copy', () => {
    expect(instanceFragments([zero, scale], 2)).toEqual([
      ['read', { site: mlp, port: 'output', invoke: 0 }, []], ['sub', {}, [0, 0]], ['write', { site: mlp, port: 'output', invoke: 0 }, [1]],
      ['read', { site: 'transformer.h.0', port: 'output', invoke: 0 }, []], ['write', { site: 'transformer.h.0', port: 'output', invoke: 0 }, [3]],
      ['read', { site: mlp, port: 'output', invoke: 1 }, []], ['sub', {}, [5, 5]], ['write', { site: mlp, port: 'output', invoke: 1 }, [6]],
      ['read', { site: 'transformer.h.0', port: 'output', invoke: 1 }, []], ['write', { site: 'transformer.h.0', port: 'output', invoke: 1 }, [8]],
    ])
    expect(instanceFragments([zero], 0)).toEqual([])
  })

  test('prependNodes moves inputs, locations, train.loss and from nodes of later traces; the result validates', () => {
    const manifest = demoGpt2Manifest()
    const session: Program = {
      version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [1, 2] }, { ids: [3] }],
      nodes: [['read', { site: 'transformer.h.2', port: 'output', invoke: 0 }, []], ['mean', { axes: null }, [0]], ['save', { name: 'm' }, [1]]],
      locations: [{ line: 10 }, { line: 11 }, null],
      train: { params: [], loss: 1, optimizer: { kind: 'sgd', lr: 0.1 }, steps: 1 },
      then: [{ mode: 'trace', invokes: [{ ids: [4, 5, 6] }], nodes: [['from', { trace: 0, node: 1 }, []], ['save', { name: 'again' }, [0]]] }],
    }
    const prefixes: number[] = []
    const edited = prependNodes(session, (trace, t) => {
      prefixes.push(t)
      return { nodes: instanceFragments([zero], trace.invokes.length) }
    })
    expect(prefixes).toEqual([0, 1])
    expect(edited.nodes).toHaveLength(6 + 3)
    expect(edited.nodes.slice(6)).toEqual([['read', { site: 'transformer.h.2', port: 'output', invoke: 0 }, []], ['mean', { axes: null }, [6]], ['save', { name: 'm' }, [7]]])
    expect(edited.locations).toEqual([null, null, null, null, null, null, { line: 10 }, { line: 11 }, null])
    expect(edited.train!.loss).toBe(7)
    expect(edited.then![0]!.nodes).toEqual([...instanceFragments([zero], 1), ['from', { trace: 0, node: 7 }, []], ['save', { name: 'again' }, [3]]])
    expect(edited.then![0]!.locations).toBeUndefined()
    expect(session.nodes[1]).toEqual(['mean', { axes: null }, [0]]) // the input Program is not changed
    const plain: Program = { ...session, train: undefined, then: undefined }
    delete plain.train
    delete plain.then
    expect(validateProgram(prependNodes(plain, trace => ({ nodes: instanceFragments([zero], trace.invokes.length) })), manifest)).toEqual([])
  })

  test('a prefix with locations gives the result locations even when the Program has none', () => {
    const program: Program = { version: 1, model: { name: 'demo-gpt2', revision: null }, mode: 'trace', invokes: [{ ids: [1] }], nodes: [['read', { site: mlp, port: 'output', invoke: 0 }, []], ['save', { name: 'h' }, [0]]] }
    const edited = prependNodes(program, () => ({ nodes: [['read', { site: mlp, port: 'output', invoke: 0 }, []]], locations: [{ file: 'edit.ts', line: 3 }] }))
    expect(edited.locations).toEqual([{ file: 'edit.ts', line: 3 }, null, null])
    expect(edited.nodes[2]).toEqual(['save', { name: 'h' }, [1]])
  })
})

describe('the text tokenizer', () => {
  const json = readFileSync(new URL('tokenizer.json', DEMO))
  const config = readFileSync(new URL('tokenizer_config.json', DEMO))
  const reference = JSON.parse(readFileSync(new URL('reference_activations.json', DEMO), 'utf8')) as { prompts: string[]; token_ids: number[][] }

  test('from the bytes, text or parsed JSON of tokenizer.json it gives the token ids transformers gave, and decodes them back', () => {
    for (const tokenizer of [textTokenizer(json, config), textTokenizer(json.toString('utf8'), config.toString('utf8')), textTokenizer(JSON.parse(json.toString('utf8')) as Record<string, unknown>)]) {
      reference.prompts.forEach((prompt, i) => {
        expect(tokenizer.encode(prompt)).toEqual(reference.token_ids[i])
        expect(tokenizer.decode(reference.token_ids[i]!)).toBe(prompt)
      })
    }
  })

  test('a file that is not a JSON object, or not a tokenizer, is MODEL_LOAD_FAILED naming the file', () => {
    const refused = (fn: () => unknown): WeftError => { try { fn() } catch (e) { if (WeftError.is(e)) return e; throw e } throw new Error('not refused') }
    const notJson = refused(() => textTokenizer(new TextEncoder().encode('{"model": ')))
    expect(notJson.code).toBe('MODEL_LOAD_FAILED')
    expect(notJson.message).toMatch(/^tokenizer\.json is not a JSON object/)
    expect(refused(() => textTokenizer(json, '[1, 2]')).message).toMatch(/^tokenizer_config\.json is not a JSON object \(not a JSON object\)/)
    const notTokenizer = refused(() => textTokenizer({ hello: 'world' }))
    expect(notTokenizer.code).toBe('MODEL_LOAD_FAILED')
    expect(notTokenizer.message).toMatch(/^tokenizer\.json could not be loaded: /)
  })
})
