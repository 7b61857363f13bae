/**
 * Shared module calls: a job's `module_call`s of one row-wise module go through one call over all their rows
 * (the logit lens: one [L, d] projection instead of L passes over the head), joined to the forward's own use of the module when possible.
 */
import { siteTimes, type Manifest, type Program } from '@weft/core'
import type { ModuleCaller } from './module-call.js'
import type { ValueTypeLike } from './tensor-ops.js'

interface SharedCall {
  job: number
  module: string
  /** the arguments' last dim (the module's input width) */
  width: number
  /** the job's `module_call` nodes served, in program order */
  nodes: number[]
  /** also computes the base forward's own application of the module (its output value is produced here) */
  withBase: boolean
  /** filled while lowering: argument value of each node */
  args: string[]
  /** value names receiving each node's output rows */
  outputs: string[]
  preds: Set<SharedCall>
}

export interface SharedCalls {
  /** calls to emit after lowering: groups of ≥ 2 nodes, or any group joined to the base application */
  calls: SharedCall[]
  /** `job:node` → its call and position */
  slots: Map<string, { call: SharedCall; index: number }>
}

/**
 * Plans the shared calls of a batch. Depends only on structure (never on lengths), so every batch sharing a
 * compiled session plans alike. Nothing is shared when a write depends on a module call: a write rewires the
 * whole batch tensor, so reads anywhere could then depend on a shared call and close a cycle. A group joins the
 * base application of its module only if every argument is available before the forward reaches the module
 * (manifest time), nothing inside the module is read or written, and the forward needs the module's output anyway.
 */
export function planSharedCalls (programs: readonly Program[], types: readonly ValueTypeLike[][], caller: ModuleCaller, manifest: Manifest): SharedCalls {
  const none: SharedCalls = { calls: [], slots: new Map() }
  const candidate = programs.map(p => p.nodes.map(([op, attrs]) => op === 'module_call' && caller.stackable(attrs.module as string)))
  if (!candidate.some(c => c.includes(true))) return none
  for (const program of programs) {
    const fromCall: boolean[] = []
    for (const [op, , inputs] of program.nodes) {
      const depends = op === 'module_call' || inputs.some(n => fromCall[n] === true)
      if (op === 'write' && depends) return none
      fromCall.push(depends)
    }
  }
  const groups = group(programs, types, candidate)
  const times = siteTimes(manifest)
  const timing = new Timing(programs, groups, times)
  const based = new Set<string>()
  for (const call of feedersFirst(groups)) {
    const entry = times.get(call.module)
    if (entry === undefined || based.has(call.module) || !caller.joinableWithBase(call.module)) continue
    if (touchesInside(programs, call.module) || !baseNeeded(programs, call.module, times)) continue
    if (call.nodes.some(n => timing.of(call.job, programs[call.job]!.nodes[n]![2][0]!) > entry.start)) continue
    call.withBase = true
    timing.decided()
    based.add(call.module)
  }
  const slots = new Map<string, { call: SharedCall; index: number }>()
  const calls: SharedCall[] = []
  for (const call of groups) {
    if (call.nodes.length < 2 && !call.withBase) continue
    calls.push(call)
    call.nodes.forEach((node, index) => {
      slots.set(`${call.job}:${node}`, { call, index })
      call.outputs.push(`weft.rows.${call.job}.${node}`)
    })
  }
  return { calls, slots }
}

/** Same module, dtype and width, and no member depending on another (directly or through other groups). */
function group (programs: readonly Program[], types: readonly ValueTypeLike[][], candidate: boolean[][]): SharedCall[] {
  const calls: SharedCall[] = []
  const reaches = (from: Set<SharedCall>, target: SharedCall): boolean => {
    const seen = new Set<SharedCall>()
    const stack = [...from]
    while (stack.length > 0) {
      const next = stack.pop()!
      if (next === target) return true
      if (seen.has(next)) continue
      seen.add(next)
      stack.push(...next.preds)
    }
    return false
  }
  programs.forEach((program, j) => {
    const deps: Set<SharedCall>[] = [] // per node: the groups it depends on directly (a member: its own group)
    const typesOf = types[j]!
    program.nodes.forEach(([op, attrs, inputs], i) => {
      const own = new Set<SharedCall>()
      for (const n of inputs) for (const d of deps[n] ?? []) own.add(d)
      const arg = op === 'module_call' ? typesOf[inputs[0]!] : undefined
      const width = arg?.shape.at(-1)
      if (candidate[j]![i] !== true || arg === undefined || typeof width !== 'number') { deps.push(own); return }
      const module = attrs.module as string
      const argDtype = (c: SharedCall): string => typesOf[program.nodes[c.nodes[0]!]![2][0]!]!.dtype
      let call = calls.find(c => c.job === j && c.module === module && c.width === width && argDtype(c) === arg.dtype && !reaches(own, c))
      if (call === undefined) {
        call = { job: j, module, width, nodes: [], withBase: false, args: [], outputs: [], preds: new Set() }
        calls.push(call)
      }
      call.nodes.push(i)
      for (const d of own) call.preds.add(d)
      deps.push(new Set([call]))
    })
  })
  return calls
}

/** The groups ordered so that every group comes after the groups its arguments depend on. */
function feedersFirst (groups: SharedCall[]): SharedCall[] {
  const order: SharedCall[] = []
  const done = new Set<SharedCall>()
  const visit = (call: SharedCall): void => {
    if (done.has(call)) return
    done.add(call) // preds are acyclic (grouping never lets a member reach its own group)
    for (const pred of call.preds) visit(pred)
    order.push(call)
  }
  groups.forEach(visit)
  return order
}

/** A read or write of a site strictly inside `module`, or a write to the module itself. */
function touchesInside (programs: readonly Program[], module: string): boolean {
  return programs.some(p => p.nodes.some(([op, attrs]) => (op === 'read' || op === 'write') && typeof attrs.site === 'string' &&
    (attrs.site.startsWith(module + '.') || (op === 'write' && attrs.site === module))))
}

/** Whether the forward computes the module's output anyway: some read or write is at or after it. */
function baseNeeded (programs: readonly Program[], module: string, times: Map<string, { start: number; end: number }>): boolean {
  const end = times.get(module)!.end
  return programs.some(p => p.nodes.some(([op, attrs]) => {
    if ((op !== 'read' && op !== 'write') || typeof attrs.site !== 'string') return false
    const t = times.get(attrs.site)
    if (t === undefined) return false
    return attrs.port === 'input' ? t.start > end : t.end >= end
  }))
}

/**
 * When a Program value becomes available in the forward, in manifest time: a read at its site's time, a shared
 * call's result once all of its arguments are (and, joined to the base, once the forward passes the module).
 */
class Timing {
  private readonly memo = new Map<string, number>()
  private readonly callOf = new Map<string, SharedCall>()

  constructor (private readonly programs: readonly Program[], groups: SharedCall[], private readonly times: Map<string, { start: number; end: number }>) {
    for (const call of groups) for (const node of call.nodes) this.callOf.set(`${call.job}:${node}`, call)
  }

  /** Forgets cached times once a group is joined to its base (its results become available later). */
  decided (): void { this.memo.clear() }

  of (job: number, node: number): number {
    const key = `${job}:${node}`
    const known = this.memo.get(key)
    if (known !== undefined) return known
    const [op, attrs, inputs] = this.programs[job]!.nodes[node]!
    let time: number
    if (op === 'read') {
      const t = typeof attrs.site === 'string' ? this.times.get(attrs.site) : undefined
      time = t === undefined ? Infinity : attrs.port === 'input' ? t.start : t.end
    } else if (op === 'module_call' && this.callOf.has(key)) {
      const call = this.callOf.get(key)!
      const args = call.nodes.length > 1 || call.withBase
        ? Math.max(...call.nodes.map(n => this.of(call.job, this.programs[call.job]!.nodes[n]![2][0]!)))
        : this.of(job, inputs[0]!)
      time = call.withBase ? Math.max(args, this.times.get(call.module)!.end) : args
    } else {
      time = -1
      for (const n of inputs) time = Math.max(time, this.of(job, n))
    }
    this.memo.set(key, time)
    return time
  }
}
