/**
 * The optimizers of `train` (spec/program.md, Sessions and training): PyTorch's torch.optim single-tensor update
 * formulas (SGD with momentum/dampening/nesterov/weight decay, Adam, AdamW), on float32 with every operation rounded
 * to float32 (Math.fround) in PyTorch's order, so a host reproduces PyTorch's CPU float32 results.
 */
import { WeftError } from '../errors/weft-error.js'
import type { OptimizerSpec } from '../ir/program.js'

const f = Math.fround

/** a param's optimizer state: Adam's first and second moments, or SGD's momentum buffer */
interface Slot { m?: Float32Array; v?: Float32Array; buf?: Float32Array }

/**
 * An optimizer's whole state between steps (a training checkpoint): the completed step count and, per param, Adam's
 * first and second moments (m, v) or SGD's momentum buffer (buf), as float32 copies. Loading it into an optimizer of
 * the same spec continues the run bit for bit.
 */
export interface OptimizerState {
  step: number
  slots: Record<string, Slot>
}

const copySlot = (slot: Slot): Slot => ({
  ...(slot.m === undefined ? {} : { m: slot.m.slice() }),
  ...(slot.v === undefined ? {} : { v: slot.v.slice() }),
  ...(slot.buf === undefined ? {} : { buf: slot.buf.slice() }),
})

export class Optimizer {
  private readonly slots = new Map<string, Slot>()
  /** number of completed steps (t in the formulas is step + 1) */
  step = 0

  constructor (readonly spec: OptimizerSpec) {
    if (!['sgd', 'adam', 'adamw'].includes(spec.kind)) throw new WeftError('PROGRAM_INVALID', `unknown optimizer '${String(spec.kind)}'`)
  }

  /** A copy of the state (completed steps, every param's moments or momentum buffer). */
  state (): OptimizerState {
    return { step: this.step, slots: Object.fromEntries([...this.slots].map(([name, slot]) => [name, copySlot(slot)])) }
  }

  /** Replaces the state with (a copy of) `state`, as `state()` of an optimizer of the same spec gave it. */
  load (state: OptimizerState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new WeftError('INTERNAL', `optimizer state: bad step ${String(state.step)}`)
    this.slots.clear()
    for (const [name, slot] of Object.entries(state.slots)) this.slots.set(name, copySlot(slot))
    this.step = state.step
  }

  /** Updates every param in place from its gradient (same length); call once per training step. */
  update (params: Record<string, Float32Array>, grads: Record<string, ArrayLike<number>>): void {
    const t = this.step + 1
    for (const name of Object.keys(params)) {
      const theta = params[name]!
      const grad = grads[name]
      if (grad === undefined || grad.length !== theta.length) throw new WeftError('INTERNAL', `optimizer: gradient of '${name}' missing or of the wrong size`)
      let slot = this.slots.get(name)
      if (slot === undefined) { slot = {}; this.slots.set(name, slot) }
      if (this.spec.kind === 'sgd') this.sgd(theta, grad, slot, t)
      else this.adam(theta, grad, slot, t)
    }
    this.step = t
  }

  private sgd (theta: Float32Array, grad: ArrayLike<number>, slot: Slot, t: number): void {
    const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0, maximize = false } = this.spec
    const wd = f(weightDecay); const mu = f(momentum); const damp = f(1 - dampening); const alpha = f(-lr)
    if (momentum !== 0 && slot.buf === undefined) slot.buf = new Float32Array(theta.length)
    const buf = slot.buf
    for (let i = 0; i < theta.length; i++) {
      let g = maximize ? -grad[i]! : f(grad[i]!)
      if (weightDecay !== 0) g = f(g + f(wd * theta[i]!))
      if (buf !== undefined) {
        buf[i] = t === 1 ? g : f(f(buf[i]! * mu) + f(damp * g))
        g = nesterov ? f(g + f(mu * buf[i]!)) : buf[i]!
      }
      theta[i] = f(theta[i]! + f(alpha * g))
    }
  }

  private adam (theta: Float32Array, grad: ArrayLike<number>, slot: Slot, t: number): void {
    const decoupled = this.spec.kind === 'adamw'
    const { lr, betas = [0.9, 0.999], eps = 1e-8, maximize = false } = this.spec
    const weightDecay = this.spec.weightDecay ?? (decoupled ? 0.01 : 0)
    const [beta1, beta2] = betas
    if (slot.m === undefined) { slot.m = new Float32Array(theta.length); slot.v = new Float32Array(theta.length) }
    const m = slot.m; const v = slot.v!
    // scalars as PyTorch computes them: Python floats (float64), cast to float32 where they meet a tensor
    const w1 = f(1 - beta1); const b2 = f(beta2); const w2 = f(1 - beta2)
    const stepSize = f(-(lr / (1 - beta1 ** t)))
    const bc2Sqrt = f(Math.sqrt(1 - beta2 ** t))
    const epsF = f(eps); const wd = f(weightDecay); const shrink = f(1 - lr * weightDecay)
    for (let i = 0; i < theta.length; i++) {
      let g = maximize ? -grad[i]! : f(grad[i]!)
      if (decoupled) { if (weightDecay !== 0) theta[i] = f(theta[i]! * shrink) } else if (weightDecay !== 0) g = f(g + f(wd * theta[i]!))
      // exp_avg.lerp_(grad, 1 - beta1): weight < 0.5 → self + weight · (end − self)
      m[i] = w1 < 0.5 ? f(m[i]! + f(w1 * f(g - m[i]!))) : f(g - f(f(g - m[i]!) * f(1 - w1)))
      // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value = 1 − beta2)
      v[i] = f(f(v[i]! * b2) + f(f(w2 * g) * g))
      const denom = f(f(f(Math.sqrt(v[i]!)) / bc2Sqrt) + epsF)
      // param.addcdiv_(exp_avg, denom, value = −step_size)
      theta[i] = f(theta[i]! + f(f(stepSize * m[i]!) / denom))
    }
  }
}
