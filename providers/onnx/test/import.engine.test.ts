/**
 * importOnnx on the real dynamo export of demo-gpt2: module tree, scopes, and logits / module outputs /
 * attention probabilities under onnxruntime-node against the transformers references; the TorchScript-style
 * node-name path and external-data weights on files derived from the same export.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fromBinary, toBinary } from '@bufbuild/protobuf'
import * as ort from 'onnxruntime-node'
import { WeftError } from '@weft/core'
import { onnx } from '../src/graph/onnx.js'
import { SCOPE_KEY, type ModelGraph } from '../src/graph/model-graph.js'
import { importOnnx } from '../src/import/index.js'
import { tensorValueInfo } from '../src/import/values.js'
import { readSafetensors, type Tensor64 } from './reference/safetensors.js'
import { relativeError } from './reference/math.js'

const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url))
const FILE = join(MODELS, 'demo-gpt2-onnx/model.onnx')
const PROMPTS = JSON.parse(readFileSync(join(MODELS, 'demo-gpt2/reference_activations.json'), 'utf8')).token_ids as number[][]

/** onnxruntime options used throughout: intra/inter-op spinning off (the binding flattens `extra` to `session.intra_op.allow_spinning`). */
function sessionOptions (externalDir: string | null): ort.InferenceSession.SessionOptions {
  const session: Record<string, unknown> = { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } }
  if (externalDir !== null) session.model_external_initializers_file_folder_path = externalDir
  return { extra: { session }, graphOptimizationLevel: 'all' } as ort.InferenceSession.SessionOptions
}

/** A session whose outputs are the logits plus every bound site output (deduplicated). */
async function siteSession (graph: ModelGraph): Promise<ort.InferenceSession> {
  const values = [...new Set([graph.logits, ...[...graph.sites.values()].flatMap((site) => (site.output === undefined ? [] : [site.output]))])]
  const model = { ...graph.model, graph: { ...graph.model.graph!, output: values.map((value) => tensorValueInfo(value, 1, [])) } }
  for (const output of model.graph.output) { if (output.type?.value.case === 'tensorType') output.type.value.value.shape = undefined }
  return ort.InferenceSession.create(toBinary(onnx.ModelProtoSchema, model), sessionOptions(graph.externalDataDir))
}

async function run (session: ort.InferenceSession, graph: ModelGraph, ids: number[]): Promise<ort.InferenceSession.ReturnType> {
  return session.run({
    [graph.inputs.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
    [graph.inputs.attentionMask]: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
  })
}

let graph: ModelGraph
let reference: Map<string, Tensor64>
let scratch: string

beforeAll(async () => {
  graph = await importOnnx(FILE)
  reference = await readSafetensors(join(MODELS, 'demo-gpt2/reference_activations.safetensors'))
  scratch = mkdtempSync(join(tmpdir(), 'weft-import-'))
})
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe('importOnnx: demo-gpt2 dynamo export', () => {
  test('module tree, manifest and scopes', () => {
    const paths = graph.manifest.modules.map((module) => module.path)
    for (let layer = 0; layer < 6; layer++) {
      for (const child of ['', '.ln_1', '.attn', '.attn.c_attn', '.attn.c_proj', '.attn.probs', '.ln_2', '.mlp', '.mlp.c_fc', '.mlp.act', '.mlp.c_proj']) {
        expect(paths, `transformer.h.${layer}${child}`).toContain(`transformer.h.${layer}${child}`)
      }
    }
    expect(paths).toEqual(expect.arrayContaining(['transformer', 'transformer.wte', 'transformer.wpe', 'transformer.h', 'transformer.ln_f', 'lm_head']))
    // forward order: children before parents, blocks in sequence
    expect(paths.indexOf('transformer.h.0.attn.c_proj')).toBeLessThan(paths.indexOf('transformer.h.0.attn'))
    expect(paths.indexOf('transformer.h.0')).toBeLessThan(paths.indexOf('transformer.h.1.ln_1'))
    const byPath = new Map(graph.manifest.modules.map((module) => [module.path, module]))
    expect(byPath.get('transformer.h.2.attn')).toMatchObject({ type: 'GPT2Attention', output: { shape: ['batch', 'seq', 256], dtype: 'float32' } })
    expect(byPath.get('transformer.h.2.mlp.c_fc')).toMatchObject({ type: 'Conv1D', output: { shape: ['batch', 'seq', 1024] }, parameters: 256 * 1024 + 1024 })
    expect(byPath.get('transformer.h.2.attn.probs')).toMatchObject({ kind: 'site', output: { shape: ['batch', 8, 'seq', 'seq'] } })
    expect(byPath.get('transformer.wte')).toMatchObject({ type: 'Embedding', input: { shape: ['batch', 'seq'], dtype: 'int64' } })
    expect(graph.manifest).toMatchObject({ family: 'onnx', vocabSize: 4096, maxPositions: 256, parameters: 5_853_184, config: { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' } })
    expect(graph.manifest.revision).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(graph.params.get('transformer.wte.weight')).toMatchObject({ shape: [4096, 256], dtype: 'float32' })
    expect(graph.params.get('transformer.h.0.attn.c_attn.weight')?.shape).toEqual([256, 768])
    expect(graph.inputs).toEqual({ inputIds: 'input_ids', attentionMask: 'attention_mask' })
    expect(graph.maxBatch).toBe(1)
    const known = new Set(['', ...paths])
    for (const node of graph.model.graph!.node) {
      const scope = node.metadataProps.find((entry) => entry.key === SCOPE_KEY)?.value
      expect(scope !== undefined && known.has(scope), `${node.name}: ${scope}`).toBe(true)
    }
  })

  test('logits, every module output and attention probabilities match transformers, all 6 prompts', async () => {
    const session = await siteSession(graph)
    try {
      const compared = new Set<string>()
      for (const [p, ids] of PROMPTS.entries()) {
        const result = await run(session, graph, ids)
        expect(relativeError(result[graph.logits].data as Float32Array, reference.get(`p${p}.logits`)!.data)).toBeLessThanOrEqual(1e-4)
        for (const [key, expected] of reference) {
          if (!key.startsWith(`p${p}.module.`) && !key.startsWith(`p${p}.attentions.`)) continue
          const path = key.startsWith(`p${p}.module.`) ? key.slice(`p${p}.module.`.length) : `transformer.h.${key.split('.').at(-1)}.attn.probs`
          const value = graph.sites.get(path)?.output
          expect(value, `no site for ${path}`).toBeDefined()
          expect(relativeError(result[value!].data as Float32Array, expected.data), key).toBeLessThanOrEqual(1e-4)
          compared.add(path)
        }
      }
      expect(compared.size).toBe(6 * 9 + 4 + 6) // per block: itself, ln_1/2, attn(+c_attn, c_proj), mlp(+c_fc, c_proj); wte, wpe, ln_f, lm_head; probs
    } finally {
      await session.release()
    }
  })
})

/** The same export in TorchScript style: no metadata, scopes encoded in node names `/transformer/h.0/attn/Op_12`. */
function asNodeNameExport (model: onnx.ModelProto, imported: ModelGraph): onnx.ModelProto {
  const copy = fromBinary(onnx.ModelProtoSchema, toBinary(onnx.ModelProtoSchema, model))
  copy.graph!.node.forEach((node, index) => {
    const scope = imported.model.graph!.node[index].metadataProps.find((entry) => entry.key === SCOPE_KEY)!.value
    const segments = scope === '' ? [] : scope.split('.').reduce<string[]>((acc, part) => (/^\d+$/.test(part) ? [...acc.slice(0, -1), `${acc.at(-1)}.${part}`] : [...acc, part]), [])
    node.name = `/${[...segments, `${node.opType}_${index}`].join('/')}`
    node.metadataProps = []
  })
  return copy
}

describe('importOnnx: other export layouts', () => {
  test('TorchScript-style node names give the same module tree and bindings', async () => {
    const original = fromBinary(onnx.ModelProtoSchema, readFileSync(FILE))
    const file = join(scratch, 'names', 'model.onnx')
    mkdirSync(join(scratch, 'names'), { recursive: true })
    writeFileSync(file, toBinary(onnx.ModelProtoSchema, asNodeNameExport(original, graph)))
    const named = await importOnnx(file, { stripPrefix: '' })
    expect(named.manifest.config).toMatchObject({ weft_import: { exporter: 'node-names' } })
    const tree = (g: ModelGraph): string[] => g.manifest.modules.filter((module) => module.kind === 'module').map((module) => module.path)
    expect(tree(named)).toEqual(tree(graph))
    for (const [path, site] of graph.sites) {
      if (path.endsWith('.probs')) continue // needs the class name to know a module is an attention
      expect(named.sites.get(path)?.output, path).toBe(site.output)
    }
  })

  test('external-data weights next to the model are found and give the same logits', async () => {
    const model = fromBinary(onnx.ModelProtoSchema, readFileSync(FILE))
    const chunks: Uint8Array[] = []
    let offset = 0
    for (const tensor of model.graph!.initializer) {
      if (tensor.rawData.length < 1024) continue
      chunks.push(tensor.rawData)
      tensor.externalData = [['location', 'weights.bin'], ['offset', String(offset)], ['length', String(tensor.rawData.length)]]
        .map(([key, value]) => ({ $typeName: 'onnx.StringStringEntryProto', key, value }) as onnx.StringStringEntryProto)
      tensor.dataLocation = 1
      offset += tensor.rawData.length
      tensor.rawData = new Uint8Array(0)
    }
    const dir = join(scratch, 'external')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'weights.bin'), Buffer.concat(chunks))
    writeFileSync(join(dir, 'model.onnx'), toBinary(onnx.ModelProtoSchema, model))
    const external = await importOnnx(join(dir, 'model.onnx'))
    expect(external.externalDataDir).toBe(dir)
    const session = await ort.InferenceSession.create(toBinary(onnx.ModelProtoSchema, external.model), sessionOptions(dir))
    try {
      const result = await run(session, external, PROMPTS[1])
      expect(relativeError(result[external.logits].data as Float32Array, reference.get('p1.logits')!.data)).toBeLessThanOrEqual(1e-4)
    } finally {
      await session.release()
    }
    rmSync(join(dir, 'weights.bin'))
    await expect(importOnnx(join(dir, 'model.onnx'))).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED', message: expect.stringContaining('weights.bin') })
  })

  test('bad paths and bad bytes are typed errors', async () => {
    await expect(importOnnx(join(scratch, 'missing.onnx'))).rejects.toSatisfy((error: unknown) => WeftError.is(error, 'MODEL_NOT_FOUND'))
    writeFileSync(join(scratch, 'garbage.onnx'), Buffer.from('not an onnx file at all'))
    await expect(importOnnx(join(scratch, 'garbage.onnx'))).rejects.toSatisfy((error: unknown) => WeftError.is(error, 'MODEL_LOAD_FAILED'))
  })
})
