// Type tests (checked by `npm run typecheck`): the ONNX provider refuses an op without its rows.
// Each `@ts-expect-error` below must stay an error; if a table stopped checking, `tsc` would fail here.
import { TENSOR_LOWERINGS, type LoweredOpName, type TensorLowering } from '../src/compile/tensor-ops.js'
import { ONNX_OPS, type OnnxOpRow, type OnnxOpType } from '../src/compile/onnx-ops.js'

/** A tensor op added to core's table (here `fake`) without a lowering fails: the record lacks the key. */
// @ts-expect-error: Property 'fake' is missing
export const missingLowering: Record<LoweredOpName | 'fake', TensorLowering> = TENSOR_LOWERINGS

/** A lowering that emits an ONNX op type without a row in the ONNX op table fails. */
// @ts-expect-error: 'FakeOnnxOp' is not a LowerableOnnxOp
export const unknownOnnxOp: TensorLowering = (emit, _attrs, [x]) => emit.op('FakeOnnxOp', [x!.name])

/** A lowering that emits an ONNX op whose row has no VJP rule (`vjp: 'none'`, e.g. ReduceProd) fails. */
// @ts-expect-error: 'ReduceProd' has no VJP rule
export const withoutVjp: TensorLowering = (emit, _attrs, [x]) => emit.reduce('ReduceProd', x!.name, null, false)

/** A row without its VJP entry fails. */
// @ts-expect-error: Property 'vjp' is missing
export const rowWithoutVjp: OnnxOpRow = { shape: 'same', rowwise: 'elementwise' }

/** A row without its shape class fails. */
// @ts-expect-error: Property 'shape' is missing
export const rowWithoutShape: OnnxOpRow = { rowwise: false, vjp: 'no-gradient' }

/** The tables as they are type-check. */
export const lowerings: Record<LoweredOpName, TensorLowering> = TENSOR_LOWERINGS
export const rows: Record<OnnxOpType, OnnxOpRow> = ONNX_OPS
export const lowersExp: TensorLowering = (emit, _attrs, [x]) => emit.op('Exp', [x!.name])
