/**
 * Reverse-mode differentiation over an ONNX node list: finds the float tensors lying between the `wrt` tensors
 * and `of`, walks their producers in reverse topological order applying VJP rules, and sums contributions.
 */
import { WeftError } from '@weft/core'
import type { onnx } from '../../graph/onnx.js'
import { scopeOf, topoOrder } from '../graph-index.js'
import type { GradBuilder } from './builder.js'
import { ruleFor } from '../onnx-ops.js'
import { NO_GRAD_KEY } from '../no-grad.js'
import type { Vjp } from './types.js'

const FLOATS = new Set(['float32', 'float64', 'float16', 'bfloat16'])

export interface BackwardPass {
  /** the forward graph, in any order */
  nodes: readonly onnx.NodeProto[]
  b: GradBuilder
  /** the scalar being differentiated */
  of: string
  wrt: readonly string[]
}

function unsupported (node: onnx.NodeProto, why: string | null): WeftError {
  const op = node.domain === '' || node.domain === 'ai.onnx' ? node.opType : `${node.domain}.${node.opType}`
  const scope = scopeOf(node)
  const where = scope === '' ? '' : scope === 'weft.edit' ? ' (in a Program edit)' : ` (in module '${scope}')`
  const message = why === null ? `grad: no gradient rule for ONNX op '${op}'${where}` : `grad: ${why} is not differentiable here: ONNX op '${op}'${where}`
  return new WeftError('BACKEND_CAPABILITY_MISSING', message, { onnxOp: op, scope, node: node.name })
}

/** d(of)/d(w) for every `w` in `wrt`: the gradient's value name, or null when `of` does not depend on `w`. */
export function backward ({ nodes, b, of, wrt }: BackwardPass): Map<string, string | null> {
  const order = topoOrder(nodes)
  const isFloat = (name: string): boolean => { const d = b.shapes.get(name).dtype; return d === null || FLOATS.has(d) }
  const reach = new Set(wrt)
  for (const node of order) {
    if (node.metadataProps.some(m => m.key === NO_GRAD_KEY)) continue // detach: its output is a constant to the backward pass
    if (node.input.some(n => reach.has(n))) for (const out of node.output) if (out !== '' && isFloat(out)) reach.add(out)
  }
  const producer = new Map<string, onnx.NodeProto>()
  for (const node of order) for (const out of node.output) producer.set(out, node)
  // active: on a path wrt → … → of
  const active = new Set<string>()
  const stack = reach.has(of) ? [of] : []
  while (stack.length > 0) {
    const t = stack.pop()!
    if (active.has(t)) continue
    active.add(t)
    const p = producer.get(t)
    if (p !== undefined) for (const n of p.input) if (reach.has(n) && !active.has(n)) stack.push(n)
  }
  const grads = new Map<string, string[]>()
  const total = (name: string): string | null => {
    const parts = grads.get(name)
    if (parts === undefined) return null
    if (parts.length > 1) grads.set(name, [b.sum(parts)])
    return grads.get(name)![0]!
  }
  if (active.has(of)) grads.set(of, [b.op('Expand', [b.scalar(1, b.dtype(of)), b.shape(of)])])
  for (let n = order.length - 1; n >= 0; n--) {
    const node = order[n]!
    if (!node.output.some(o => active.has(o)) || !node.input.some(i => active.has(i))) continue
    const outGrads = node.output.map(o => active.has(o) ? total(o) : null)
    if (outGrads.every(g => g === null)) continue
    const rule = node.domain === '' || node.domain === 'ai.onnx' ? ruleFor(node.opType) : undefined
    if (rule === undefined) throw unsupported(node, null)
    const v: Vjp = {
      b,
      node,
      x: i => node.input[i]!,
      y: k => node.output[k ?? 0]!,
      g: k => outGrads[k ?? 0] ?? null,
      needs: i => node.input[i] !== undefined && active.has(node.input[i]!),
      info: name => b.shapes.get(name),
      unsupported: why => unsupported(node, why),
    }
    rule(v).forEach((g, i) => {
      const input = node.input[i]
      if (g === null || input === undefined || !active.has(input)) return
      const list = grads.get(input)
      if (list === undefined) grads.set(input, [g])
      else list.push(g)
    })
  }
  return new Map(wrt.map(w => [w, total(w)]))
}
