/**
 * Shape probe for values whose shapes the export does not record: run the graph once per length (batch 1,
 * seq 7 and 11) with those values as extra outputs; dims that follow the length are 'seq', axis 0 is 'batch'.
 */
import { toBinary } from '@bufbuild/protobuf'
import * as ort from 'onnxruntime-node'
import { WeftError, type SymDim } from '@weft/core'
import { onnx } from '../graph/onnx.js'
import { tensorValueInfo } from './values.js'

export interface ProbeInputs { inputIds: string; attentionMask?: string; positionIds?: string }

export async function probeShapes (model: onnx.ModelProto, values: Map<string, number>, inputs: ProbeInputs,
  externalDataDir: string | null): Promise<Map<string, SymDim[]>> {
  const graph = model.graph!
  const output = [...values].map(([name, elemType]) => tensorValueInfo(name, elemType, []))
  for (const info of output) { if (info.type?.value.case === 'tensorType') info.type.value.value.shape = undefined }
  const probe = { ...model, graph: { ...graph, output } }
  const session: Record<string, string> = { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' }
  if (externalDataDir !== null) session.model_external_initializers_file_folder_path = externalDataDir
  const created = await ort.InferenceSession.create(toBinary(onnx.ModelProtoSchema, probe), { extra: { session } })
  try {
    const runs: Array<Record<string, readonly number[]>> = []
    for (const seq of [7, 11]) {
      const feeds: Record<string, ort.Tensor> = { [inputs.inputIds]: new ort.Tensor('int64', BigInt64Array.from({ length: seq }, (_, i) => BigInt(i + 1)), [1, seq]) }
      if (inputs.attentionMask !== undefined) feeds[inputs.attentionMask] = new ort.Tensor('int64', new BigInt64Array(seq).fill(1n), [1, seq])
      if (inputs.positionIds !== undefined) feeds[inputs.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: seq }, (_, i) => BigInt(i)), [1, seq])
      const result = await created.run(feeds)
      runs.push(Object.fromEntries([...values.keys()].map((name) => [name, result[name]!.dims])))
    }
    const shapes = new Map<string, SymDim[]>()
    for (const name of values.keys()) {
      const [a, b] = [runs[0][name], runs[1][name]]
      if (a.length !== b.length) throw new WeftError('MODEL_LOAD_FAILED', `value ${name} changes rank with the sequence length`, { value: name })
      shapes.set(name, a.map((dim, axis): SymDim => axis === 0 && a.length >= 2 && dim === 1 ? 'batch' : dim === 7 && b[axis] === 11 ? 'seq' : dim))
    }
    return shapes
  } finally {
    await created.release()
  }
}
