/**
 * Value facts of an imported graph: element types and shapes from inputs, outputs, value_info and
 * initializers; symbolic dims ('batch', 'seq') mapped from the input_ids dim params; initializer byte checks.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { create } from '@bufbuild/protobuf'
import { WeftError, type DType, type SymDim } from '@weft/core'
import { onnx } from '../graph/onnx.js'

export type Dim = number | string | null
export interface ValueType { elemType: number; dims: Dim[] | null }

const DTYPES: Record<number, DType> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' }

export function dtypeOf (elemType: number): DType | undefined { return DTYPES[elemType] }

function fromValueInfo (info: onnx.ValueInfoProto): ValueType | null {
  if (info.type?.value.case !== 'tensorType') return null
  const tensor = info.type.value.value
  const dims = tensor.shape === undefined
    ? null
    : tensor.shape.dim.map((dim): Dim => dim.value.case === 'dimValue' ? Number(dim.value.value) : dim.value.case === 'dimParam' ? dim.value.value : null)
  return { elemType: tensor.elemType, dims }
}

export function valueTypes (graph: onnx.GraphProto): Map<string, ValueType> {
  const types = new Map<string, ValueType>()
  for (const tensor of graph.initializer) types.set(tensor.name, { elemType: tensor.dataType, dims: tensor.dims.map(Number) })
  for (const info of [...graph.input, ...graph.valueInfo, ...graph.output]) {
    const type = fromValueInfo(info)
    if (type !== null) types.set(info.name, type)
  }
  return types
}

export interface DimNames { batch: string | number | null; seq: string | number | null; batchSpecialised: boolean }

/** Symbolic shape: the input's batch/seq params become 'batch'/'seq'; axis 0 of size 1 is 'batch' when the export fixed it. */
export function symbolic (dims: Dim[] | null, names: DimNames): SymDim[] | null {
  if (dims === null) return null
  const out: SymDim[] = []
  for (const [axis, dim] of dims.entries()) {
    if (axis === 0 && dims.length >= 2 && (dim === names.batch || (names.batchSpecialised && dim === 1))) out.push('batch')
    else if (typeof dim === 'string' && dim === names.seq) out.push('seq')
    else if (typeof dim === 'number' && dim > 0) out.push(dim)
    else return null
  }
  return out
}

export function tensorValueInfo (name: string, elemType: number, dims: Array<number | string>): onnx.ValueInfoProto {
  return create(onnx.ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType,
          shape: { dim: dims.map((dim) => ({ value: typeof dim === 'number' ? { case: 'dimValue' as const, value: BigInt(dim) } : { case: 'dimParam' as const, value: dim } })) },
        },
      },
    },
  })
}

const EXTERNAL = 1 // TensorProto.DataLocation.EXTERNAL

/** External-data files the initializers point at (relative to the model's folder); throws when one is missing. */
export function externalDataFiles (graph: onnx.GraphProto, dir: string): string[] {
  const files = new Set<string>()
  for (const tensor of graph.initializer) {
    if (tensor.dataLocation !== EXTERNAL) continue
    const location = tensor.externalData.find((entry) => entry.key === 'location')?.value
    if (location === undefined || location.includes('..') || location.startsWith('/')) {
      throw new WeftError('MODEL_LOAD_FAILED', `initializer ${tensor.name} has external data without a safe relative location (${String(location)})`, { initializer: tensor.name })
    }
    if (!existsSync(join(dir, location))) {
      throw new WeftError('MODEL_LOAD_FAILED', `initializer ${tensor.name} needs external data file ${location}, which is not next to the model in ${dir}`, { initializer: tensor.name, location })
    }
    files.add(location)
  }
  return [...files].sort()
}
