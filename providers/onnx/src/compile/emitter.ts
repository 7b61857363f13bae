/**
 * Emitter: appends ONNX nodes, small int64 initializers and graph inputs for the intervention compiler,
 * with fresh value names under one prefix and the `weft.scope` tag `weft.edit` on every node it makes.
 */
import { create } from '@bufbuild/protobuf'
import type { DType } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import { SCOPE_KEY } from '../graph/model-graph.js'
import { ONNX_DTYPE } from './dtypes.js'

export type AttrSpec = number | number[] | string | { float: number } | { floats: number[] }

const A = onnx.AttributeProto_AttributeType
export const INT64_MAX = 9223372036854775807n
export const INT64_MIN = -9223372036854775808n

function attribute (name: string, value: AttrSpec): onnx.AttributeProto {
  if (typeof value === 'number') return create(onnx.AttributeProtoSchema, { name, type: A.INT, i: BigInt(value) })
  if (typeof value === 'string') return create(onnx.AttributeProtoSchema, { name, type: A.STRING, s: new TextEncoder().encode(value) })
  if (Array.isArray(value)) return create(onnx.AttributeProtoSchema, { name, type: A.INTS, ints: value.map(v => BigInt(v)) })
  if ('float' in value) return create(onnx.AttributeProtoSchema, { name, type: A.FLOAT, f: value.float })
  return create(onnx.AttributeProtoSchema, { name, type: A.FLOATS, floats: value.floats })
}

/** A tensor value_info; `dims` null leaves the shape unknown. */
export function valueInfo (name: string, dtype: DType, dims: (number | string)[] | null): onnx.ValueInfoProto {
  return create(onnx.ValueInfoProtoSchema, {
    name,
    type: create(onnx.TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(onnx.TypeProto_TensorSchema, {
          elemType: ONNX_DTYPE[dtype],
          shape: dims === null ? undefined : create(onnx.TensorShapeProtoSchema, {
            dim: dims.map(d => create(onnx.TensorShapeProto_DimensionSchema, {
              value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
            })),
          }),
        }),
      },
    }),
  })
}

export class Emitter {
  readonly nodes: onnx.NodeProto[] = []
  readonly initializers: onnx.TensorProto[] = []
  readonly inputs: onnx.ValueInfoProto[] = []
  /** node name → the Program node it lowers (`job:node`), to name the culprit of a run-time failure */
  readonly origins = new Map<string, string>()
  /** set by the compiler before lowering each Program node */
  origin = ''
  private count = 0
  private readonly ints = new Map<string, string>()

  /** `opset` is the default-domain opset of the base graph (changes Reduce* axes from attr to input at 18). */
  constructor (readonly prefix: string, readonly opset: number) {}

  fresh (hint: string): string { return `${this.prefix}${this.count++}.${hint}` }

  /** Appends a node; returns its output names (fresh unless given). */
  node (opType: string, inputs: string[], attrs: Record<string, AttrSpec> = {}, outputs: number | string[] = 1): string[] {
    const names = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => this.fresh(`${opType}${outputs > 1 ? i : ''}`)) : outputs
    this.push(create(onnx.NodeProtoSchema, {
      name: this.fresh(`node.${opType}`),
      opType,
      input: inputs,
      output: names,
      attribute: Object.entries(attrs).map(([name, value]) => attribute(name, value)),
      metadataProps: [create(onnx.StringStringEntryProtoSchema, { key: SCOPE_KEY, value: 'weft.edit' })],
    }))
    return names
  }

  /** Appends a ready node, recording which Program node it belongs to. */
  push (node: onnx.NodeProto): void {
    this.nodes.push(node)
    if (this.origin !== '') this.origins.set(node.name, this.origin)
  }

  op (opType: string, inputs: string[], attrs: Record<string, AttrSpec> = {}): string {
    return this.node(opType, inputs, attrs)[0]!
  }

  /** A memoised int64 initializer (`dims` = [] for a scalar, default 1-D). */
  int64 (values: readonly (number | bigint)[], dims: number[] = [values.length]): string {
    const key = `${dims.join('x')}:${values.join(',')}`
    const known = this.ints.get(key)
    if (known !== undefined) return known
    const name = this.fresh('i64')
    this.initializers.push(create(onnx.TensorProtoSchema, {
      name, dims: dims.map(d => BigInt(d)), dataType: ONNX_DTYPE.int64, int64Data: values.map(v => BigInt(v)),
    }))
    this.ints.set(key, name)
    return name
  }

  /** Declares a graph input fed at run time. */
  input (hint: string, dtype: DType, dims: (number | string)[]): string {
    const name = this.fresh(hint)
    this.inputs.push(valueInfo(name, dtype, dims))
    return name
  }

  cast (x: string, from: DType, to: DType): string {
    return from === to ? x : this.op('Cast', [x], { to: ONNX_DTYPE[to] })
  }

  /** Reduce* over `axes` (null = all), hiding the opset-18 change from attribute to input. */
  reduce (opType: string, x: string, axes: number[] | null, keepdims: boolean): string {
    const keep = keepdims ? 1 : 0
    if (axes === null) return this.op(opType, [x], { keepdims: keep })
    if (this.opset >= 18 || opType === 'ReduceSum') return this.op(opType, [x, this.int64(axes)], { keepdims: keep })
    return this.op(opType, [x], { axes, keepdims: keep })
  }

  unsqueeze (x: string, axes: number[]): string { return axes.length === 0 ? x : this.op('Unsqueeze', [x, this.int64(axes)]) }
  squeeze (x: string, axes: number[]): string { return axes.length === 0 ? x : this.op('Squeeze', [x, this.int64(axes)]) }

  /** Slice with constant bounds (bigints allowed for the INT64 sentinels). */
  slice (x: string, starts: (number | bigint)[], ends: (number | bigint)[], axes: number[], steps?: number[]): string {
    const inputs = [x, this.int64(starts), this.int64(ends), this.int64(axes)]
    if (steps !== undefined) inputs.push(this.int64(steps))
    return this.op('Slice', inputs)
  }

  /** Scalar `Gather(Shape(x), axis)`: the run-time size of one dim, as a rank-0 int64. */
  dim (x: string, axis: number): string {
    return this.op('Gather', [this.op('Shape', [x]), this.int64([axis], [])], { axis: 0 })
  }
}
