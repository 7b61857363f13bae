/**
 * Envoys: proxies that mirror the model's module tree for one invoke (`m.transformer.h[3].mlp`). Accessing
 * `.output`/`.input` reads a site, `.call(x)` applies the module to any tensor; unknown names throw at once.
 */
import type { ModuleEntry } from '@weft/core'
import type { Recorder } from './recorder.js'
import { SiteProxy } from './site-proxy.js'
import { ValueProxy, liftInto, type Operand } from './value-proxy.js'
import { describeChildren, type TreeNode } from './module-tree.js'
import { callerLocation } from './location.js'

/**
 * A module's inputs by HF argument name, when the model's tree is not typed (names checked at run time). Indexable
 * for the inputs HF passes as a tuple (`position_embeddings[0]`, the cos of (cos, sin)); indexing any other input
 * throws at run time, as indexing a tensor proxy does.
 */
export interface InputSites { readonly [name: string]: SiteProxy & { readonly [index: number]: SiteProxy } }

/**
 * What every module envoy offers, whatever the model. `I` types `.inputs` (the typed family trees name each input,
 * so a misspelled one fails `tsc`).
 */
export interface ModuleEnvoy<I extends object = InputSites> {
  /** HF module path, e.g. `transformer.h.3.mlp` */
  readonly path: string
  /** the manifest entry (undefined for pure containers the manifest does not list) */
  readonly entry: ModuleEntry | undefined
  /** which invoke (batch row) this envoy reads and writes */
  readonly invoke: number
  /** the module's primary output for this invoke (a fresh `read`; sees earlier `set`s) */
  readonly output: SiteProxy
  /** the module's first positional input for this invoke */
  readonly input: SiteProxy
  /**
   * The module's inputs by their HF argument names: the first positional one (`hidden_states`; `input` for torch
   * layers, `x` for Conv1D and rotary embeddings; embeddings also answer to the caller's name, `input_ids` or
   * `position_ids`) plus those the manifest exposes as `<path>.inputs.<name>` sites (blocks and attention modules:
   * `attention_mask`, `position_ids`, in rotary families `position_embeddings` = the pair [cos, sin]). Each access is
   * a fresh read; `set` replaces that input for this module (and what it passes on) only.
   */
  readonly inputs: I
  /**
   * Skips the module for this invoke: its output becomes its input (for a block, the hidden states pass through
   * unchanged). Recorded as `output.set(input)`; needs a module whose input and output have the same shape.
   */
  skip (): void
  /** applies the module, with the model's weights, to any tensor of its input signature (`module_call`) */
  call (x: Operand): ValueProxy
  /** a child by name, for names that collide with envoy members */
  child (name: string): Envoy
  /** the direct submodules, in forward order */
  modules (): Envoy[]
}

/** A ModuleList envoy: indexable (negative counts from the end), iterable, with a length. */
export interface ListEnvoy<T> extends ModuleEnvoy, Iterable<T> {
  readonly length: number
  at (index: number): T
  readonly [index: number]: T
}

/** An envoy of a model whose tree is not described by a type: any child name is allowed (checked at run time). */
export type Envoy = ModuleEnvoy & ListEnvoy<Envoy> & { readonly [name: string]: Envoy }

/** Property names that JavaScript machinery probes on arbitrary objects: answer undefined, never throw. */
const PROBES = new Set(['then', 'toJSON', 'asymmetricMatch', '$$typeof', 'nodeType', 'constructor', 'prototype', 'inspect', '@@__IMMUTABLE_ITERABLE__@@', '_isMockFunction'])

const MEMBERS = new Set(['path', 'entry', 'invoke', 'output', 'input', 'inputs', 'skip', 'call', 'child', 'modules', 'length', 'at', 'toString'])

class EnvoyTarget {
  constructor (readonly recorder: Recorder, readonly node: TreeNode, readonly invoke: number, readonly cache: Map<string, Envoy>) {}

  envoyFor (child: TreeNode): Envoy {
    let envoy = this.cache.get(child.path)
    if (envoy === undefined) {
      envoy = makeEnvoy(new EnvoyTarget(this.recorder, child, this.invoke, this.cache))
      this.cache.set(child.path, envoy)
    }
    return envoy
  }

  child (name: string): Envoy {
    let found = this.node.children.get(name) ?? this.node.aliases.get(name)
    if (found === undefined && this.node.isList && /^-\d+$/.test(name)) {
      const index = Number(name) + this.node.children.size
      if (index >= 0) found = this.node.children.get(String(index))
    }
    if (found === undefined) {
      const path = this.node.path === '' ? name : `${this.node.path}.${name}`
      throw this.recorder.error(`unknown module '${path}' (${describeChildren(this.node)})`, callerLocation(), { path })
    }
    return this.envoyFor(found)
  }

  site (port: 'output' | 'input'): SiteProxy {
    return new SiteProxy(this.recorder, { site: this.node.path, port, invoke: this.invoke })
  }

  inputs (): InputSites {
    const names = new Map<string, () => unknown>()
    const entry = this.node.entry
    if (entry?.input !== undefined) {
      names.set(firstInputName(entry.type), () => this.site('input'))
      const caller = entry.type === 'Embedding' ? EMBEDDING_ARGUMENT[this.node.name] : undefined
      if (caller !== undefined) names.set(caller, () => this.site('input'))
    }
    for (const [name, site] of this.node.inputs) {
      if (site.entry === undefined && site.children.size > 0) {
        names.set(name, () => this.inputTuple(`${this.node.path}.inputs.${name}`, name, [...site.children.values()]))
      } else {
        names.set(name, () => new SiteProxy(this.recorder, { site: site.path, port: 'output', invoke: this.invoke }))
      }
    }
    const path = this.node.path
    const recorder = this.recorder
    return new Proxy({}, {
      get (_t, name) {
        if (typeof name !== 'string') return undefined
        const make = names.get(name)
        if (make !== undefined) return make()
        if (PROBES.has(name)) return undefined
        throw recorder.error(`'${path || '<model>'}' has no input '${name}' (inputs: ${[...names.keys()].join(', ') || 'none'})`, callerLocation(), { path })
      },
      has (_t, name) { return typeof name === 'string' && names.has(name) },
      ownKeys () { return [...names.keys()] },
      getOwnPropertyDescriptor (_t, name) { return typeof name === 'string' && names.has(name) ? { configurable: true, enumerable: true, get: names.get(name) } : undefined },
    })
  }

  /**
   * An input HF passes as a tuple (`position_embeddings` = (cos, sin)): indexable and iterable (`const [cos, sin] =
   * attn.inputs.position_embeddings`); each index is a fresh read of site `<path>.<i>`. Anything else throws.
   */
  private inputTuple (path: string, name: string, items: TreeNode[]): readonly SiteProxy[] {
    const ordered = [...items].sort((a, b) => Number(a.name) - Number(b.name))
    const read = (i: number): SiteProxy => new SiteProxy(this.recorder, { site: ordered[i]!.path, port: 'output', invoke: this.invoke })
    const recorder = this.recorder
    const hint = `'${path}' is the pair ${name === 'position_embeddings' ? '(cos, sin)' : `of ${ordered.length}`}: write .${name}[0]` +
      `${ordered.slice(1).map((_, i) => ` or [${i + 1}]`).join('')}${name === 'position_embeddings' ? ' (cos, sin)' : ''}`
    return new Proxy([] as SiteProxy[], {
      get (_t, key) {
        if (key === Symbol.iterator) return function * () { for (let i = 0; i < ordered.length; i++) yield read(i) }
        if (typeof key !== 'string') return undefined
        if (key === 'length') return ordered.length
        if (/^\d+$/.test(key) && Number(key) < ordered.length) return read(Number(key))
        if (PROBES.has(key)) return undefined
        throw recorder.error(`${hint}; '${key}' does not exist on it`, callerLocation(), { path })
      },
      has (_t, key) { return typeof key === 'string' && /^\d+$/.test(key) && Number(key) < ordered.length },
      ownKeys () { return [...ordered.keys()].map(String).concat('length') },
      getOwnPropertyDescriptor (_t, key) {
        if (key === 'length') return { configurable: false, enumerable: false, writable: true, value: ordered.length }
        return typeof key === 'string' && /^\d+$/.test(key) && Number(key) < ordered.length ? { configurable: true, enumerable: true, get: () => read(Number(key)) } : undefined
      },
      set () { throw recorder.error(`${hint}, then .set(value) on it`, callerLocation(), { path }) },
    })
  }

  skip (): void {
    const entry = this.node.entry
    const location = callerLocation()
    if (entry?.input === undefined || entry.output === undefined) {
      throw this.recorder.error(`cannot skip '${this.node.path || '<model>'}': it has no input and output sites (skip a module, e.g. a layer, attn or mlp)`, location, { path: this.node.path })
    }
    if (entry.input.shape.join(',') !== entry.output.shape.join(',')) {
      throw this.recorder.error(`cannot skip '${this.node.path}': its output [${entry.output.shape.join(', ')}] is not shaped like its input ` +
        `[${entry.input.shape.join(', ')}]; write \`.output.set(…)\` with a value of the output's shape instead`, location, { path: this.node.path })
    }
    this.site('output').set(this.site('input'))
  }

  call (x: Operand): ValueProxy {
    const input = liftInto(this.recorder, x)
    return new ValueProxy(this.recorder, this.recorder.add('module_call', { module: this.node.path }, [input]))
  }

  member (name: string): unknown {
    switch (name) {
      case 'path': return this.node.path
      case 'entry': return this.node.entry
      case 'invoke': return this.invoke
      case 'output': return this.site('output')
      case 'input': return this.site('input')
      case 'inputs': return this.inputs()
      case 'skip': return () => this.skip()
      case 'call': return (x: Operand) => this.call(x)
      case 'child': return (childName: string) => this.child(childName)
      case 'modules': return () => [...this.node.children.values()].map((c) => this.envoyFor(c))
      case 'length': return this.node.children.size
      case 'at': return (index: number) => this.child(String(index))
      case 'toString': return () => `Envoy(${this.node.path || '<model>'}@${this.invoke})`
      default: return undefined
    }
  }
}

function makeEnvoy (target: EnvoyTarget): Envoy {
  return new Proxy(target, {
    get (t, property) {
      if (typeof property === 'symbol') {
        if (property === Symbol.iterator) return function * () { for (const c of t.node.children.values()) yield t.envoyFor(c) }
        return undefined
      }
      if (property === 'inputs') return t.member(property)
      if (t.node.children.has(property) || t.node.aliases.has(property)) return t.child(property)
      if (MEMBERS.has(property)) return t.member(property)
      if (PROBES.has(property)) return undefined
      return t.child(property)
    },
    has (t, property) { return typeof property === 'string' && (t.node.children.has(property) || t.node.aliases.has(property) || MEMBERS.has(property)) },
    set () { throw new TypeError('Envoys are read-only: use `.output.set(value)` to replace a value') },
    ownKeys (t) { return [...t.node.children.keys()] },
    getOwnPropertyDescriptor (t, property) {
      return typeof property === 'string' && t.node.children.has(property)
        ? { configurable: true, enumerable: true, value: t.child(property) } : undefined
    },
  }) as unknown as Envoy
}

/** HF's name for a module's first positional argument: torch layers call it `input` (Conv1D and rotary embeddings `x`), HF modules `hidden_states`. */
function firstInputName (type: string): string {
  if (type === 'Conv1D' || type.endsWith('RotaryEmbedding')) return 'x'
  if (/^(Linear|LayerNorm|Embedding|Dropout)$/.test(type) || type.endsWith('Activation')) return 'input'
  return 'hidden_states'
}

/** The name the HF model passes each embedding's input under (`self.wte(input_ids)`, `self.wpe(position_ids)`), beside torch's `input`. */
const EMBEDDING_ARGUMENT: Record<string, string | undefined> = { wte: 'input_ids', embed_tokens: 'input_ids', embed_in: 'input_ids', wpe: 'position_ids' }

/** The root envoy (the whole model) for one invoke of a trace. */
export function rootEnvoy (recorder: Recorder, tree: TreeNode, invoke: number): Envoy {
  return makeEnvoy(new EnvoyTarget(recorder, tree, invoke, new Map()))
}

declare module './value-proxy.js' {
  /** OP_METHODS rows may name ModuleEnvoy's members (value-proxy.ts) */
  interface OpRecorders { ModuleEnvoy: ModuleEnvoy }
}
