/**
 * Tracer: the handle a multi-invoke trace callback gets (`t.invoke(prompt, m => …)`, `t.stop()`), plus the
 * walk that names and resolves what a trace callback returns (proxies in, Tensors out).
 */
import { WeftError, type Invoke, type ValueType } from '@weft/core'
import type { Recorder } from './recorder.js'
import { rootEnvoy, type Envoy } from './envoy.js'
import type { TreeNode } from './module-tree.js'
import { ValueProxy } from './value-proxy.js'
import { callerLocation } from './location.js'
import type { Tensor } from '../tensor/tensor.js'

/** What an invoke takes: text (tokenized client-side when the tokenizer is known), token ids, or either explicitly. */
export type TraceInput = string | readonly number[] | Invoke

/** A trace callback's return value with every traced value replaced by its result Tensor. */
export type Resolved<R> =
  R extends ValueProxy ? Tensor
    : R extends Tensor ? R
      : R extends readonly unknown[] ? { -readonly [K in keyof R]: Resolved<R[K]> }
        : R extends object ? { -readonly [K in keyof R]: Resolved<R[K]> }
          : R

/** Like Resolved, but with shapes and dtypes instead of data (what `scan` returns). */
export type Scanned<R> =
  R extends ValueProxy ? ValueType
    : R extends readonly unknown[] ? { -readonly [K in keyof R]: Scanned<R[K]> }
      : R extends object ? { -readonly [K in keyof R]: Scanned<R[K]> }
        : R

export class Tracer<T = Envoy> {
  /** @internal */ readonly recorder: Recorder
  private readonly tree: TreeNode
  private readonly tokenize: ((text: string) => number[]) | null

  constructor (recorder: Recorder, tree: TreeNode, tokenize: ((text: string) => number[]) | null) {
    this.recorder = recorder
    this.tree = tree
    this.tokenize = tokenize
  }

  /** Adds a batch row and records `fn` against it; returns what `fn` returns (values may cross invokes). */
  invoke<R> (input: TraceInput, fn: (model: T) => R): R {
    const index = this.recorder.addInvoke(toInvoke(input, this.tokenize))
    return fn(rootEnvoy(this.recorder, this.tree, index) as T)
  }

  /** Ends the forward pass as soon as every saved value is computed (later layers are not run). */
  stop (): void {
    this.recorder.add('stop', {}, [])
  }

  /** A weight of the model by HF parameter name (`transformer.h.0.attn.c_attn.weight`): read it, or take `w.grad(loss)`. */
  param (name: string): ValueProxy {
    return new ValueProxy(this.recorder, this.recorder.add('param', { name }, []))
  }

  /** Number of invokes so far. */
  get invokes (): number { return this.recorder.invokes.length }
}

export function toInvoke (input: TraceInput, tokenize: ((text: string) => number[]) | null): Invoke {
  if (typeof input === 'string') return tokenize === null ? { text: input } : { ids: tokenize(input) }
  if (Array.isArray(input)) return { ids: [...(input as number[])] }
  const invoke = input as Invoke
  if ('ids' in invoke && Array.isArray(invoke.ids)) return { ids: [...invoke.ids] }
  if ('text' in invoke && typeof invoke.text === 'string') return tokenize === null ? { text: invoke.text } : { ids: tokenize(invoke.text) }
  throw new WeftError('PROGRAM_INVALID', 'an invoke input must be text, an array of token ids, { ids } or { text }', { location: callerLocation() })
}

/** A run's save by name for `collectSaves`' resolver; a missing save is EXECUTION_FAILED. */
export function saveLookup (saves: Record<string, Tensor>): (name: string) => Tensor {
  return (name) => {
    const tensor = saves[name]
    if (tensor === undefined) throw new WeftError('EXECUTION_FAILED', `the run returned no value for save '${name}'`, { name })
    return tensor
  }
}

/**
 * Names the values a trace callback returned: an unnamed `save()` (or a proxy returned without `save()`)
 * is saved under its key path (`logits`, `layers.3`). Returns a function that resolves the structure.
 */
export function collectSaves (value: unknown, recorder: Recorder): <V>(lookup: (name: string) => V) => unknown {
  const visit = (item: unknown, path: string): ((lookup: (name: string) => unknown) => unknown) => {
    if (item instanceof ValueProxy) {
      const name = uniqueName(recorder, path === '' ? 'result' : path, item)
      if (item.saveNode === null) item.save(name)
      else if (!item.namedSave) { recorder.renameSave(item.saveNode, name); item.namedSave = true }
      const saved = recorder.saveNameOf(item.saveNode!)
      return (lookup) => lookup(saved)
    }
    if (Array.isArray(item)) {
      const parts = item.map((inner, i) => visit(inner, path === '' ? String(i) : `${path}.${i}`))
      return (lookup) => parts.map((part) => part(lookup))
    }
    if (item !== null && typeof item === 'object' && Object.getPrototypeOf(item) === Object.prototype) {
      const parts = Object.entries(item).map(([key, inner]) => [key, visit(inner, path === '' ? key : `${path}.${key}`)] as const)
      return (lookup) => Object.fromEntries(parts.map(([key, part]) => [key, part(lookup)]))
    }
    return () => item
  }
  return visit(value, '') as <V>(lookup: (name: string) => V) => unknown
}

function uniqueName (recorder: Recorder, wanted: string, item: ValueProxy): string {
  if (item.saveNode !== null && recorder.saveNameOf(item.saveNode) === wanted) return wanted
  if (!recorder.hasSaveName(wanted)) return wanted
  let i = 1
  while (recorder.hasSaveName(`${wanted}_${i}`)) i++
  return `${wanted}_${i}`
}

declare module './value-proxy.js' {
  /** OP_METHODS rows may name Tracer's members (value-proxy.ts) */
  interface OpRecorders { Tracer: Tracer }
}
