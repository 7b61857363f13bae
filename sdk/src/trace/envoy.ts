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

/** What every module envoy offers, whatever the model. */
export interface ModuleEnvoy {
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
   * The module's inputs by their HF argument names: the first positional one (`hidden_states`, or `input` for torch
   * layers) plus those the manifest exposes as `<path>.inputs.<name>` sites (attention modules: `attention_mask`,
   * the additive mask [1, 1, seq, seq]). Each access is a fresh read; `set` replaces that input for this module only.
   */
  readonly inputs: { readonly [name: string]: SiteProxy }
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

  inputs (): { readonly [name: string]: SiteProxy } {
    const names = new Map<string, () => SiteProxy>()
    if (this.node.entry?.input !== undefined) names.set(firstInputName(this.node.entry.type), () => this.site('input'))
    for (const [name, site] of this.node.inputs) {
      names.set(name, () => new SiteProxy(this.recorder, { site: site.path, port: 'output', invoke: this.invoke }))
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

/** HF's name for a module's first positional argument: torch layers call it `input` (Conv1D `x`), HF modules `hidden_states`. */
function firstInputName (type: string): string {
  if (type === 'Conv1D') return 'x'
  if (/^(Linear|LayerNorm|Embedding|Dropout)$/.test(type) || type.endsWith('Activation')) return 'input'
  return 'hidden_states'
}

/** The root envoy (the whole model) for one invoke of a trace. */
export function rootEnvoy (recorder: Recorder, tree: TreeNode, invoke: number): Envoy {
  return makeEnvoy(new EnvoyTarget(recorder, tree, invoke, new Map()))
}

declare module './value-proxy.js' {
  /** OP_METHODS rows may name ModuleEnvoy's members (value-proxy.ts) */
  interface OpRecorders { ModuleEnvoy: ModuleEnvoy }
}
