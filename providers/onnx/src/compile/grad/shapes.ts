/**
 * Static dtype/shape/value inference over a spliced ONNX graph, for the backward emitter. Dims are numbers or
 * sound symbols (equal symbols ⇒ equal sizes at run time); a null shape means the rank is unknown.
 */
import { wrapAxis, type DType } from '@weft/core'
import type { onnx } from '../../graph/onnx.js'
import { dtypeFromOnnx } from '../dtypes.js'
import { attrOf, broadcast, intAttr, intsAttr, product, quotient, tensorInfo, type Dim, type Intern, type ShapeFacts, type TensorInfo } from './dims.js'
import { onnxOp } from '../onnx-ops.js'
import { einsumTerms } from './rules-linalg.js'

export type { Dim, TensorInfo } from './dims.js'

const UNKNOWN: TensorInfo = { dtype: null, shape: null }
/** Shape classes and output dtypes come from the ONNX op table (compile/onnx-ops.ts); `own` ops have a rule here. */
export class ShapeTable implements ShapeFacts {
  private readonly infos = new Map<string, TensorInfo>()
  private readonly symbols = new Map<string, string>()
  /** composite symbols are interned (`~N`), so nested broadcasts cannot grow the names */
  private readonly sym: Intern = (expression) => {
    let name = this.symbols.get(expression)
    if (name === undefined) { name = `~${this.symbols.size}`; this.symbols.set(expression, name) }
    return name
  }

  constructor (inputs: readonly onnx.ValueInfoProto[], initializers: readonly onnx.TensorProto[], nodes: readonly onnx.NodeProto[]) {
    for (const v of inputs) {
      const t = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined
      let dtype: DType | null = null
      try { dtype = t === undefined ? null : dtypeFromOnnx(t.elemType) } catch { dtype = null }
      const shape = t?.shape === undefined ? null : t.shape.dim.map((d, i): Dim => d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : `dim(${v.name},${i})`)
      this.infos.set(v.name, { dtype, shape })
    }
    for (const t of initializers) this.infos.set(t.name, tensorInfo(t))
    for (const node of nodes) {
      let outs: TensorInfo[]
      try { outs = this.infer(node) } catch { outs = [] }
      node.output.forEach((name, i) => { if (name !== '') this.infos.set(name, outs[i] ?? { dtype: outs[0]?.dtype ?? this.get(node.input[0] ?? '').dtype, shape: null }) })
    }
  }

  get (name: string): TensorInfo { return this.infos.get(name) ?? UNKNOWN }
  rank (name: string): number | null { return this.get(name).shape?.length ?? null }
  /** Records what the backward pass knows about a tensor it made. */
  define (name: string, info: TensorInfo): string { this.infos.set(name, info); return name }

  private ints (name: string | undefined): Dim[] | undefined { return name === undefined || name === '' ? undefined : this.get(name).value }
  private consts (name: string | undefined): number[] | undefined {
    const v = this.ints(name)
    return v?.every(d => typeof d === 'number') === true ? v as number[] : undefined
  }

  /** Axes of a Reduce, Squeeze or Unsqueeze node: the `axes` input (opset 13+/18) or attribute. */
  axesOf (node: onnx.NodeProto): number[] | undefined {
    return node.input[1] !== undefined && node.input[1] !== '' ? this.consts(node.input[1]) : intsAttr(node, 'axes')
  }

  private infer (node: onnx.NodeProto): TensorInfo[] {
    const x = this.get(node.input[0] ?? '')
    const op = node.opType
    const row = onnxOp(op)
    const dtype: DType | null = row?.dtype === 'bool' || row?.dtype === 'int64' ? row.dtype
      : row?.dtype === 'cast-to' ? dtypeFromOnnx(intAttr(node, 'to', 1)) : row?.dtype === 'input1' ? this.get(node.input[1]!).dtype : x.dtype
    const out = (shape: Dim[] | null, value?: Dim[]): TensorInfo[] => [{ dtype, shape, ...(value === undefined ? {} : { value }) }]
    const fresh = (rank: number, i = 0): Dim[] => Array.from({ length: rank }, (_, d) => `dim(${node.output[i]},${d})`)
    const s = x.shape
    if (op === 'Constant') {
      const t = attrOf(node, 'value')?.t
      return t === undefined ? [UNKNOWN] : [tensorInfo(t)]
    }
    if (row?.shape === 'same') {
      const keep = op === 'Identity' || op === 'Cast' ? x.value : undefined
      if (op === 'LayerNormalization' && s !== null) {
        const axis = wrapAxis(intAttr(node, 'axis', -1), s.length)
        const stat = s.map((d, i) => i < axis ? d : 1)
        return [{ dtype, shape: s }, { dtype: 'float32', shape: stat }, { dtype: 'float32', shape: stat }]
      }
      return out(s, keep)
    }
    if (row?.shape === 'broadcast') return out(broadcast(node.input.map(n => this.get(n).shape), this.sym))
    if (op === 'Shape') {
      if (s === null) return out(null)
      const start = wrapAxis(intAttr(node, 'start', 0), s.length)
      const end = attrOf(node, 'end') === undefined ? s.length : wrapAxis(intAttr(node, 'end', s.length), s.length)
      const dims = s.slice(start, end)
      return out([dims.length], dims)
    }
    if (op === 'Size') return out([], s === null ? undefined : [product(s) ?? `size(${node.input[0]})`])
    if (row?.shape === 'reduce') {
      if (s === null) return out(null)
      const keep = intAttr(node, 'keepdims', 1) === 1
      const raw = op.startsWith('Arg') ? [intAttr(node, 'axis', 0)] : this.axesOf(node)
      if (raw === undefined && node.input[1] !== undefined && node.input[1] !== '') return out(null)
      const axes = raw === undefined || raw.length === 0 ? s.map((_, i) => i) : raw.map(a => wrapAxis(a, s.length))
      return out(s.flatMap((d, i) => axes.includes(i) ? (keep ? [1] : []) : [d]))
    }
    if (op === 'MatMul') {
      const b = this.get(node.input[1]!).shape
      if (s === null || b === null) return out(null)
      const a2 = s.length === 1 ? [1, s[0]!] : s
      const b2 = b.length === 1 ? [b[0]!, 1] : b
      const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)], this.sym)!
      return out([...batch, ...(s.length > 1 ? [a2.at(-2)!] : []), ...(b.length > 1 ? [b2.at(-1)!] : [])])
    }
    if (op === 'Gemm') {
      const b = this.get(node.input[1]!).shape
      if (s === null || b === null) return out(null)
      return out([intAttr(node, 'transA', 0) === 1 ? s[1]! : s[0]!, intAttr(node, 'transB', 0) === 1 ? b[0]! : b[1]!])
    }
    if (op === 'Transpose') {
      if (s === null) return out(null)
      const perm = intsAttr(node, 'perm') ?? s.map((_, i) => s.length - 1 - i)
      return out(perm.map(p => s[p]!))
    }
    if (op === 'Reshape') {
      const target = this.ints(node.input[1])
      const len = this.get(node.input[1]!).shape?.[0]
      if (target === undefined) return out(typeof len === 'number' ? fresh(len) : null)
      const allowZero = intAttr(node, 'allowzero', 0) === 1
      const dims = target.map((d, i) => d === 0 && !allowZero ? (s?.[i] ?? `dim(${node.output[0]},${i})`) : d)
      const minus = dims.indexOf(-1)
      if (minus >= 0) dims[minus] = (s === null ? undefined : quotient(s, dims.filter((_, i) => i !== minus))) ?? `dim(${node.output[0]},${minus})`
      return out(dims, x.value !== undefined ? x.value : undefined)
    }
    if (op === 'Unsqueeze' || op === 'Squeeze') {
      const axes = this.axesOf(node)
      if (s === null) return out(null)
      if (op === 'Unsqueeze') {
        if (axes === undefined) return out(null)
        const rank = s.length + axes.length
        const at = axes.map(a => wrapAxis(a, rank))
        const dims: Dim[] = []
        let k = 0
        for (let i = 0; i < rank; i++) dims.push(at.includes(i) ? 1 : s[k++]!)
        return out(dims, x.value)
      }
      const at = axes === undefined ? s.flatMap((d, i) => d === 1 ? [i] : []) : axes.map(a => wrapAxis(a, s.length))
      if (axes === undefined && s.some(d => typeof d === 'string')) return out(null)
      return out(s.filter((_, i) => !at.includes(i)), x.value)
    }
    if (op === 'Slice') return this.slice(node, x, dtype)
    if (op === 'Gather') {
      const idx = this.get(node.input[1]!)
      if (s === null || idx.shape === null) return out(null)
      const axis = wrapAxis(intAttr(node, 'axis', 0), s.length)
      const k = this.consts(node.input[1])
      const value = x.value !== undefined && k !== undefined ? k.map(i => x.value![i < 0 ? i + x.value!.length : i]!) : undefined
      return out([...s.slice(0, axis), ...idx.shape, ...s.slice(axis + 1)], value)
    }
    if (op === 'Concat') {
      const shapes = node.input.map(n => this.get(n).shape)
      if (shapes.some(v => v === null)) return out(null)
      const axis = wrapAxis(intAttr(node, 'axis', 0), shapes[0]!.length)
      const along = shapes.map(v => v![axis]!)
      const dims = [...shapes[0]!]
      dims[axis] = product(along) === null || along.some(d => typeof d !== 'number') ? this.sym(`(${along.join('+')})`) : (along as number[]).reduce((a, b) => a + b, 0)
      const values = node.input.map(n => this.ints(n))
      return out(dims, values.every(v => v !== undefined) ? values.flat() as Dim[] : undefined)
    }
    if (op === 'Split') {
      if (s === null) return node.output.map(() => ({ dtype, shape: null }))
      const axis = wrapAxis(intAttr(node, 'axis', 0), s.length)
      const sizes = this.consts(node.input[1])
      return node.output.map((_, i) => ({ dtype, shape: s.map((d, j) => j !== axis ? d : sizes?.[i] ?? (typeof d === 'number' && sizes === undefined && d % node.output.length === 0 ? d / node.output.length : `dim(${node.output[i]},${j})`)) }))
    }
    if (op === 'Expand') {
      const target = this.ints(node.input[1])
      const len = this.get(node.input[1]!).shape?.[0]
      if (target === undefined) return out(typeof len === 'number' && s !== null ? fresh(Math.max(len, s.length)) : null)
      return out(broadcast([s, target], this.sym))
    }
    if (op === 'ConstantOfShape') {
      const t = attrOf(node, 'value')?.t
      const target = this.ints(node.input[0])
      const len = x.shape?.[0]
      return [{ dtype: t === undefined ? 'float32' : tensorInfo(t).dtype, shape: target ?? (typeof len === 'number' ? fresh(len) : null) }]
    }
    if (op === 'Range') {
      // Range(0, n, 1) has n elements (the causal-mask positions: n = the sequence length)
      const [start, limit, delta] = node.input.map(n => this.ints(n)?.[0])
      return out([start === 0 && delta === 1 && limit !== undefined ? limit : `dim(${node.output[0]},0)`])
    }
    if (op === 'TopK') {
      const k = this.ints(node.input[1])?.[0]
      if (s === null) return [{ dtype, shape: null }, { dtype: 'int64', shape: null }]
      const axis = wrapAxis(intAttr(node, 'axis', -1), s.length)
      const shape = s.map((d, i) => i === axis ? k ?? `dim(${node.output[0]},${i})` : d)
      return [{ dtype, shape }, { dtype: 'int64', shape }]
    }
    if (op === 'NonZero') return out(s === null ? null : [s.length, `dim(${node.output[0]},1)`])
    if (op === 'GatherElements') return out(this.get(node.input[1]!).shape)
    if (op === 'Einsum') {
      const raw = attrOf(node, 'equation')?.s
      const terms = einsumTerms(raw === undefined ? '' : new TextDecoder().decode(raw))
      const shapes = node.input.map(n => this.get(n).shape)
      if (terms === null || shapes.some(v => v === null)) return out(null)
      const size = (letter: string): Dim => {
        const k = terms.inputs.findIndex(t => t.includes(letter))
        return shapes[k]![terms.inputs[k]!.indexOf(letter)]!
      }
      return out([...terms.output].map(size))
    }
    if (op === 'GatherND') {
      const idx = this.get(node.input[1]!).shape
      const k = idx?.at(-1)
      if (s === null || idx === null || typeof k !== 'number') return out(null)
      return out([...idx.slice(0, -1), ...s.slice(intAttr(node, 'batch_dims', 0) + k)])
    }
    return out(s === null ? null : op === 'Pad' ? fresh(s.length) : null)
  }

  private slice (node: onnx.NodeProto, x: TensorInfo, dtype: DType | null): TensorInfo[] {
    const s = x.shape
    if (s === null) return [{ dtype, shape: null }]
    const [, starts, ends, axesName, stepsName] = node.input
    const count = this.get(starts!).shape?.[0]
    const axesRaw = axesName === undefined || axesName === '' ? (typeof count === 'number' ? Array.from({ length: count }, (_, i) => i) : undefined) : this.consts(axesName)
    if (axesRaw === undefined) return [{ dtype, shape: s.map((_, i) => `dim(${node.output[0]},${i})`) }]
    const axes = axesRaw.map(a => wrapAxis(a, s.length))
    const st = this.consts(starts); const en = this.consts(ends); const sp = this.consts(stepsName)
    const dims = [...s]
    axes.forEach((axis, k) => {
      const d = s[axis]!
      const step = stepsName === undefined || stepsName === '' ? 1 : sp?.[k]
      if (typeof d === 'number' && st !== undefined && en !== undefined && step !== undefined) {
        const clampIn = (v: number, lo: number, hi: number): number => Math.min(Math.max(v < 0 ? v + d : v, lo), hi)
        const a = clampIn(st[k]!, 0, step > 0 ? d : d - 1)
        const b = clampIn(en[k]!, step > 0 ? 0 : -1, step > 0 ? d : d - 1)
        dims[axis] = Math.max(0, Math.ceil((b - a) / step))
      } else {
        dims[axis] = this.sym(`slice(${d}|${starts}|${ends}|${stepsName ?? ''}|${k})`)
      }
    })
    let value: Dim[] | undefined
    if (x.value !== undefined && s.length === 1 && typeof dims[0] === 'number' && st !== undefined) {
      const step = sp?.[0] ?? 1
      const start = Math.min(Math.max(st[0]! < 0 ? st[0]! + x.value.length : st[0]!, 0), x.value.length)
      if (step === 1) value = x.value.slice(start, start + dims[0])
    }
    return [{ dtype, shape: dims, ...(value === undefined ? {} : { value }) }]
  }
}
