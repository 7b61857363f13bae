/**
 * A small DSL for building ONNX graphs in TypeScript: scoped node creation (every node carries `weft.scope`),
 * deduplicated constants, typed graph inputs/outputs. The family builders (gpt2, llama, …) are written in it.
 */
import { create } from '@bufbuild/protobuf'
import { onnx } from '../graph/onnx.js'
import { SCOPE_KEY } from '../graph/model-graph.js'

export const FLOAT = onnx.TensorProto_DataType.FLOAT
export const INT64 = onnx.TensorProto_DataType.INT64
export const BOOL = onnx.TensorProto_DataType.BOOL
const OPSET = 18

/** A float attribute (plain numbers are ints). */
export interface FloatAttr { float: number }
export type Attr = number | number[] | string | FloatAttr | onnx.TensorProto
export const float = (value: number): FloatAttr => ({ float: value })

export type Dim = number | string

function attribute (name: string, value: Attr): onnx.AttributeProto {
  const T = onnx.AttributeProto_AttributeType
  if (typeof value === 'number') return create(onnx.AttributeProtoSchema, { name, type: T.INT, i: BigInt(value) })
  if (typeof value === 'string') return create(onnx.AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(value) })
  if (Array.isArray(value)) return create(onnx.AttributeProtoSchema, { name, type: T.INTS, ints: value.map(BigInt) })
  if ('float' in value) return create(onnx.AttributeProtoSchema, { name, type: T.FLOAT, f: value.float })
  return create(onnx.AttributeProtoSchema, { name, type: T.TENSOR, t: value })
}

export function valueInfo (name: string, elemType: number, dims?: Dim[]): onnx.ValueInfoProto {
  const shape = dims === undefined ? undefined : create(onnx.TensorShapeProtoSchema, {
    dim: dims.map(d => create(onnx.TensorShapeProto_DimensionSchema,
      { value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d } })),
  })
  return create(onnx.ValueInfoProtoSchema, {
    name, type: create(onnx.TypeProtoSchema, { value: { case: 'tensorType', value: create(onnx.TypeProto_TensorSchema, { elemType, shape }) } }),
  })
}

export class GraphBuilder {
  readonly nodes: onnx.NodeProto[] = []
  readonly initializers: onnx.TensorProto[] = []
  readonly inputs: onnx.ValueInfoProto[] = []
  readonly outputs: onnx.ValueInfoProto[] = []
  private readonly scopes: string[] = ['']
  private readonly constants = new Map<string, string>()
  private readonly usedNames = new Set<string>()
  private counter = 0

  get scope (): string { return this.scopes[this.scopes.length - 1]! }

  /** Runs `fn` with `scope` as the innermost module path of every node it creates. */
  within<T> (scope: string, fn: () => T): T {
    this.scopes.push(scope)
    try { return fn() } finally { this.scopes.pop() }
  }

  private fresh (op: string): string {
    const prefix = this.scope === '' ? '' : this.scope + '/'
    return `${prefix}${op}_${this.counter++}`
  }

  /** Adds one node; returns its first output name (`out` names it, else a fresh scoped name). */
  op (opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    return this.opN(opType, inputs, attrs, [out ?? this.fresh(opType)])[0]!
  }

  /** Adds one node with several outputs (given by name). */
  opN (opType: string, inputs: string[], attrs: Record<string, Attr>, outputs: string[], domain = ''): string[] {
    for (const name of outputs) {
      if (this.usedNames.has(name)) throw new Error(`GraphBuilder: value '${name}' is produced twice`)
      this.usedNames.add(name)
    }
    this.nodes.push(create(onnx.NodeProtoSchema, {
      name: this.fresh(opType), opType, domain, input: inputs, output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      metadataProps: [create(onnx.StringStringEntryProtoSchema, { key: SCOPE_KEY, value: this.scope })],
    }))
    return outputs
  }

  /** Fresh output names in the current scope, for multi-output nodes. */
  names (op: string, count: number): string[] { return Array.from({ length: count }, () => this.fresh(op)) }

  input (name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims)); this.usedNames.add(name); return name
  }

  output (name: string, elemType: number, dims?: Dim[]): void { this.outputs.push(valueInfo(name, elemType, dims)) }

  initializer (tensor: onnx.TensorProto): string {
    this.initializers.push(tensor); this.usedNames.add(tensor.name); return tensor.name
  }

  /** An int64 constant initializer (deduplicated). */
  i64 (values: number[], dims: number[] = [values.length]): string {
    return this.constant('i64', values, dims, () => create(onnx.TensorProtoSchema, {
      dataType: INT64, dims: dims.map(BigInt), rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
    }))
  }

  /** A float32 constant initializer (deduplicated); dims default to a scalar. */
  f32 (values: number[] | number, dims: number[] = []): string {
    const list = typeof values === 'number' ? [values] : values
    return this.constant('f32', list, dims, () => create(onnx.TensorProtoSchema, {
      dataType: FLOAT, dims: dims.map(BigInt), rawData: new Uint8Array(Float32Array.from(list).buffer),
    }))
  }

  private constant (kind: string, values: number[], dims: number[], make: () => onnx.TensorProto): string {
    const key = `${kind}:${dims.join('x')}:${values.join(',')}`
    let name = this.constants.get(key)
    if (name === undefined) {
      name = `const.${kind}.${this.constants.size}`
      const tensor = make()
      tensor.name = name
      this.initializer(tensor)
      this.constants.set(key, name)
    }
    return name
  }

  toModel (graphName: string, metadata: Record<string, string> = {}): onnx.ModelProto {
    const graph = create(onnx.GraphProtoSchema, {
      name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs,
    })
    return create(onnx.ModelProtoSchema, {
      irVersion: 10n, producerName: 'weft', producerVersion: '0.1.0', graph,
      opsetImport: [create(onnx.OperatorSetIdProtoSchema, { domain: '', version: BigInt(OPSET) })],
      metadataProps: Object.entries(metadata).map(([key, value]) => create(onnx.StringStringEntryProtoSchema, { key, value })),
    })
  }
}
