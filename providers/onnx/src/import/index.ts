/**
 * importOnnx: an exported `.onnx` file (torch dynamo or TorchScript exporter) → ModelGraph with the module
 * tree, site bindings, `weft.scope` on every node, parameters and a manifest. See sites.ts for the output rule.
 */
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { createHash } from 'node:crypto'
import { create, fromBinary } from '@bufbuild/protobuf'
import { WeftError, type Manifest, type ModuleEntry, type SymDim, type TokenizerInfo } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import { SCOPE_KEY, type GraphInputs, type ModelGraph, type SiteBinding } from '../graph/model-graph.js'
import { revisionDigest } from '../manifest/revision.js'
import { analyzeScopes, type ScopeAnalysis } from './scopes.js'
import { graphFacts, moduleSites, type ModuleSites } from './sites.js'
import { dtypeOf, externalDataFiles, symbolic, tensorValueInfo, valueTypes, type DimNames, type ValueType } from './values.js'
import { importParams, parametersUnder } from './params.js'
import { probeShapes } from './probe.js'

export interface ImportOptions {
  /** manifest name; default: the file's folder name */
  name?: string
  /** scope prefix of the HF root model to strip (default: detected from the class hierarchy) */
  stripPrefix?: string
}

const INT64 = 7

function readModel (path: string): onnx.ModelProto {
  if (!existsSync(path)) throw new WeftError('MODEL_NOT_FOUND', `no such ONNX file: ${path}`, { path })
  try {
    const model = fromBinary(onnx.ModelProtoSchema, readFileSync(path))
    if (model.graph === undefined || model.graph.node.length === 0) throw new Error('the model has no graph nodes')
    return model
  } catch (error) {
    throw new WeftError('MODEL_LOAD_FAILED', `${path} is not a readable ONNX model: ${String(error)}`, { path }, { cause: error })
  }
}

function setScopes (graph: onnx.GraphProto, analysis: ScopeAnalysis): void {
  graph.node.forEach((node, index) => {
    const scope = analysis.chains[index].at(-1) ?? ''
    node.metadataProps = node.metadataProps.filter((entry) => entry.key !== SCOPE_KEY)
    node.metadataProps.push(create(onnx.StringStringEntryProtoSchema, { key: SCOPE_KEY, value: scope }))
  })
}

/** Maps graph inputs to GraphInputs; adds an (unused) attention_mask input when the export has none. */
function mapInputs (graph: onnx.GraphProto, types: Map<string, ValueType>, path: string): GraphInputs {
  const initializers = new Set(graph.initializer.map((tensor) => tensor.name))
  const inputs = graph.input.filter((input) => !initializers.has(input.name))
  const ids = inputs.find((input) => input.name === 'input_ids') ?? inputs.find((input) => types.get(input.name)?.elemType === INT64)
  if (ids === undefined) throw new WeftError('MODEL_LOAD_FAILED', `${path}: no int64 input_ids input`, { path, inputs: inputs.map((i) => i.name) })
  const mask = inputs.find((input) => input.name === 'attention_mask')
  const positions = inputs.find((input) => input.name === 'position_ids')
  const known = new Set([ids.name, mask?.name, positions?.name])
  const extra = inputs.filter((input) => !known.has(input.name)).map((input) => input.name)
  if (extra.length > 0) {
    throw new WeftError('MODEL_LOAD_FAILED', `${path}: unsupported graph inputs ${extra.join(', ')} (only input_ids, attention_mask, position_ids; export without a KV cache)`, { path, inputs: extra })
  }
  if (mask === undefined) {
    const dims = (types.get(ids.name)?.dims ?? ['batch', 'sequence']).map((dim, axis) => dim ?? (axis === 0 ? 'batch' : 'sequence'))
    graph.input.push(tensorValueInfo('attention_mask', INT64, dims))
  }
  return { inputIds: ids.name, attentionMask: 'attention_mask', ...(positions !== undefined ? { positionIds: positions.name } : {}) }
}

function tokenizerInfo (dir: string): TokenizerInfo | null {
  const file = join(dir, 'tokenizer.json')
  if (!existsSync(file)) return null
  const bytes = readFileSync(file)
  const json = JSON.parse(bytes.toString('utf8')) as { model?: { vocab?: Record<string, number> }; added_tokens?: Array<{ id: number }> }
  const ids = [...Object.values(json.model?.vocab ?? {}), ...(json.added_tokens ?? []).map((token) => token.id)]
  return { digest: 'sha256:' + createHash('sha256').update(bytes).digest('hex'), vocabSize: ids.length === 0 ? 0 : Math.max(...ids) + 1, bosTokenId: null, eosTokenId: null }
}

async function resolveShapes (model: onnx.ModelProto, modules: ModuleSites[], types: Map<string, ValueType>, names: DimNames,
  inputs: GraphInputs, externalDataDir: string | null): Promise<Map<string, SymDim[]>> {
  const shapes = new Map<string, SymDim[]>()
  const missing = new Map<string, number>()
  for (const value of modules.flatMap((module) => [module.output, module.input])) {
    if (value === undefined || shapes.has(value)) continue
    const shape = symbolic(types.get(value)?.dims ?? null, names)
    if (shape !== null) shapes.set(value, shape)
    else missing.set(value, types.get(value)?.elemType ?? 1)
  }
  if (missing.size > 0) {
    for (const [value, shape] of await probeShapes(model, missing, inputs, externalDataDir)) shapes.set(value, shape)
  }
  return shapes
}

function modelType (rootClass: string | null): string | null {
  return /^transformers\.models\.([a-z0-9_]+)\./.exec(rootClass ?? '')?.[1] ?? null
}

/** Reads an exported ONNX file and derives everything the runner and the compiler need. */
export async function importOnnx (path: string, options: ImportOptions = {}): Promise<ModelGraph> {
  const model = readModel(path)
  const graph = model.graph!
  const dir = dirname(path)
  const external = externalDataFiles(graph, dir)
  const externalDataDir = external.length > 0 ? dir : null
  const analysis = analyzeScopes(graph, options.stripPrefix)
  if (analysis.exporter === 'none') {
    throw new WeftError('MODEL_LOAD_FAILED', `${path}: no module scopes found (neither ${'pkg.torch.onnx.name_scopes'} metadata nor /scope/ node names)`, { path })
  }
  setScopes(graph, analysis)
  const types = valueTypes(graph)
  const inputs = mapInputs(graph, types, path)
  const logits = graph.output.find((output) => output.name === 'logits')?.name ?? graph.output[0]?.name
  if (logits === undefined) throw new WeftError('MODEL_LOAD_FAILED', `${path}: the graph has no outputs`, { path })
  const inputDims = types.get(inputs.inputIds)?.dims ?? [null, null]
  const logitsDims = types.get(logits)?.dims ?? null
  const batchSpecialised = inputDims[0] === 1 || (typeof inputDims[0] === 'string' && logitsDims?.[0] === 1)
  const names: DimNames = { batch: inputDims[0] ?? null, seq: inputDims[1] ?? null, batchSpecialised }
  const facts = graphFacts(graph, (value) => types.get(value)?.elemType ?? 0)
  const modules = moduleSites(facts, analysis.chains, analysis.types)
  const shapes = await resolveShapes(model, modules, types, names, inputs, externalDataDir)
  const params = importParams(graph, analysis.root, modules)
  const sites = new Map<string, SiteBinding>()
  const entries: ModuleEntry[] = modules.map((module) => {
    const entry: ModuleEntry = { path: module.path, kind: module.kind, type: module.type, callable: false, parameters: module.kind === 'site' ? 0 : parametersUnder(params, module.path) }
    const signature = (value: string | undefined): ModuleEntry['output'] =>
      value === undefined ? undefined : { shape: shapes.get(value)!, dtype: dtypeOf(types.get(value)?.elemType ?? 1) ?? 'float32' }
    if (module.output !== undefined) entry.output = signature(module.output)
    if (module.input !== undefined) entry.input = signature(module.input)
    if (module.output !== undefined || module.input !== undefined) sites.set(module.path, { output: module.output, input: module.input })
    return entry
  })
  const vocabSize = typeof logitsDims?.at(-1) === 'number' ? logitsDims.at(-1) as number : 0
  const architecture = analysis.rootClass?.slice(analysis.rootClass.lastIndexOf('.') + 1)
  const manifest: Manifest = {
    name: options.name ?? basename(dir),
    revision: revisionDigest(dir, [basename(path), ...external]),
    family: 'onnx',
    config: {
      ...(architecture !== undefined ? { architectures: [architecture] } : {}),
      ...(modelType(analysis.rootClass) !== null ? { model_type: modelType(analysis.rootClass) } : {}),
      vocab_size: vocabSize,
      weft_import: {
        exporter: analysis.exporter, root_scope: analysis.root, max_batch: batchSpecialised ? 1 : null,
        padding: 'attention_mask is accepted but unused: right padding is exact for causal LMs (real tokens never see later pads, positions start at 0)',
      },
    },
    parameters: parametersUnder(params, ''),
    modules: entries,
    tokenizer: tokenizerInfo(dir),
    vocabSize,
    maxPositions: params.get('transformer.wpe.weight')?.shape[0] ?? null,
    params: [...params].map(([paramName, p]) => ({ name: paramName, shape: p.shape, dtype: p.dtype })),
  }
  return { model, externalDataDir, inputs, logits, sites, manifest, params, ...(batchSpecialised ? { maxBatch: 1 } : {}) }
}
