/** Manifest lookups for the access ops: find a module or site, turn its symbolic signature into a value type. */
import type { ModuleEntry, SiteSignature } from '../manifest/manifest.js'
import type { InferContext, ValueType, Dim } from './types.js'
import { fail } from './rules.js'

/** Names a few modules near an unknown path so the error says what exists. */
function suggest (paths: readonly string[], path: string): string {
  const parts = path.split('.')
  const last = parts.at(-1) ?? ''
  if (/^\d+$/.test(last)) {
    const parent = parts.slice(0, -1).join('.') + '.'
    const siblings = paths.filter(p => p.startsWith(parent) && /^\d+$/.test(p.slice(parent.length)))
    if (siblings.length > 0) return `model has ${siblings[0]} … ${siblings.at(-1)}`
  }
  for (let n = parts.length - 1; n >= 0; n--) {
    const prefix = parts.slice(0, n).join('.')
    const children = paths.filter(p => n === 0 ? !p.includes('.') : p.startsWith(prefix + '.') && !p.slice(prefix.length + 1).includes('.'))
    if (children.length > 0) {
      const shown = children.slice(0, 6).join(', ') + (children.length > 6 ? ', …' : '')
      return n === 0 ? `top-level modules: ${shown}` : `'${prefix}' has ${shown}`
    }
  }
  return 'model has no modules'
}

export function findModule (op: string, ctx: InferContext, path: unknown): ModuleEntry {
  const modules = ctx.manifest.modules
  const entry = modules.find(m => m.path === path)
  if (entry === undefined) fail(op, `unknown module '${String(path)}' (${suggest(modules.map(m => m.path), String(path))})`)
  return entry
}

export function concreteShape (signature: SiteSignature, seq: number | string): Dim[] {
  return signature.shape.map(d => d === 'batch' ? 1 : d === 'seq' ? seq : d)
}

/** The value type of a site's port for one invoke (batch → 1, seq → that invoke's length). */
export function siteType (op: string, ctx: InferContext, attrs: Record<string, unknown>): ValueType {
  const entry = findModule(op, ctx, attrs.site)
  const port = (attrs.port ?? 'output') as 'output' | 'input'
  const signature = entry[port]
  if (signature === undefined) fail(op, `'${entry.path}' (${entry.type}) has no ${port} to access`)
  const invoke = (attrs.invoke ?? 0) as number
  const seq = ctx.seqLen(invoke)
  const step = attrs.step ?? 0
  if (step === 0) return { shape: concreteShape(signature, seq), dtype: signature.dtype }
  return { shape: stepShape(signature, seq, invoke, step as number | 'all'), dtype: signature.dtype }
}

/**
 * A site's shape at generation step k ≥ 1 (one new position per invoke, keys cached): every `seq` dim is 1, except
 * that a site with two `seq` dims (attention probabilities) keeps the keys, prompt + k, on its last one. At step 'all'
 * the dims are symbolic: `new@i` (the prompt length at step 0, then 1) and `ctx@i` (every position so far).
 */
function stepShape (signature: SiteSignature, seq: number | string, invoke: number, step: number | 'all'): Dim[] {
  const seqDims = signature.shape.filter(d => d === 'seq').length
  let seen = 0
  return signature.shape.map(d => {
    if (d === 'batch') return 1
    if (d !== 'seq') return d
    seen++
    const keys = seqDims > 1 && seen === seqDims
    if (step === 'all') return keys ? `ctx@${invoke}` : `new@${invoke}`
    if (!keys) return 1
    return typeof seq === 'number' ? seq + step : `${seq}+${step}`
  })
}

/** Count of trailing concrete dims of a signature: the part a module_call input must match. */
export function featureRank (signature: SiteSignature): number {
  let k = 0
  for (let i = signature.shape.length - 1; i >= 0 && typeof signature.shape[i] === 'number'; i--) k++
  return k
}
