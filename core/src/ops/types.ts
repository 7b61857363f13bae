/** Types of the op table: value types with symbolic dims, attribute schemas, and one op definition. */
import type { DType, Tensor } from '../tensor/tensor.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Attrs, ParamDecl } from '../ir/program.js'

/** A dimension: a concrete size, or a symbol ('seq@0' = the token count of invoke 0 when only its text is known). */
export type Dim = number | string

export interface ValueType { shape: Dim[]; dtype: DType }

export interface InferContext {
  manifest: Manifest
  /** concrete when the invoke has ids, else the symbol `seq@<invoke>`; throws PROGRAM_INVALID for a bad invoke */
  seqLen (invoke: number): number | string
  /** the Program's declared params (for `trainable`) */
  params?: Record<string, ParamDecl>
  /** a later trace of a session: the type of node `node` of earlier trace `trace`; throws PROGRAM_INVALID when it has none */
  fromValue? (trace: number, node: number): ValueType
}

export type AttrKind =
  | 'int' | 'number' | 'bool' | 'string' | 'dtype' | 'tensor'
  | 'ints' | 'axes' /* ints or null = all */ | 'index_spec' | 'enum'
  | 'step' /* a generation step: a non-negative integer or 'all' */

export interface AttrSchema {
  kind: AttrKind
  required?: boolean
  /** allowed values for 'enum' (strings or numbers) */
  values?: readonly (string | number)[]
  /** value used when the attr is absent */
  default?: unknown
  doc: string
}

export type OpFlag =
  | 'access' | 'control' | 'shape' | 'elementwise' | 'compare' | 'reduction'
  | 'reads_weights' | 'differentiable' | 'linalg' | 'nn'

export type Nested = number | boolean | Nested[]

export interface OpExample {
  name: string
  attrs: Attrs
  inputs: Nested[]
  /** dtypes of the inputs when not float32 (booleans are always bool) */
  inputDtypes?: DType[]
  output: Nested
  outputDtype?: DType
}

export interface OpDef {
  name: string
  arity: number | 'variadic' | [min: number, max: number]
  attrs: Record<string, AttrSchema>
  flags: readonly OpFlag[]
  infer (attrs: Attrs, inputs: ValueType[], ctx: InferContext): ValueType
  /**
   * Estimated float ops (bytes moved for `param`/`const`); symbolic dims count as SYMBOLIC_DIM_ESTIMATE.
   * Ops whose cost depends on the model (`module_call`, `param`) need `ctx` and count 0 without it.
   */
  cost (attrs: Attrs, inputs: ValueType[], ctx?: InferContext): number
  doc: string
  examples: OpExample[]
  /** The reference kernel (the op's executable semantics); absent for ops that need a model. */
  eval?: Kernel
}

/**
 * A reference kernel: values in float64 (rounded to the inferred dtype by the interpreter), or a finished tensor.
 * `outShape` is the shape `infer` gave; attrs arrive with their schema defaults filled in.
 */
export type Kernel = (attrs: Attrs, inputs: Tensor[], outShape: number[]) => Float64Array | Tensor

/** An op the reference interpreter can run without a model: its definition carries the kernel. */
export interface TensorOpDef extends OpDef { eval: Kernel }

/** How large a symbolic dim is assumed to be when estimating cost. */
export const SYMBOLIC_DIM_ESTIMATE = 1024
