/**
 * The cache-everything Program (NNsight's `model.trace(...).cache`): one invoke, a read and a save of one port of every
 * module (or of the listed ones), each saved under its own path. `weft cache`, the SDK's `model.cache` and scripts
 * build it here.
 */
import { WeftError } from '../errors/weft-error.js'
import type { Manifest } from '../manifest/manifest.js'
import { PROGRAM_VERSION, type Invoke, type Program, type ProgramNode } from './program.js'

export interface CacheOptions {
  /** which port of each module (default 'output') */
  port?: 'output' | 'input'
  /** also the finer sites under modules (attention probabilities, MLP activations, …), not only real modules */
  sites?: boolean
}

/** The paths a cache reads: every module (with `sites`, every entry) that has `port`, in forward order. */
export function cachePaths (manifest: Manifest, options: CacheOptions = {}): string[] {
  const port = options.port ?? 'output'
  return manifest.modules.filter(m => (options.sites === true || m.kind === 'module') && m[port] !== undefined).map(m => m.path)
}

/**
 * Saves `port` of each of `modules` (default: `cachePaths`) for one invoke, under its path. A listed module the
 * manifest lacks, or one without that port, is refused here with its name.
 */
export function cacheProgram (manifest: Manifest, invoke: Invoke, options: CacheOptions & { modules?: readonly string[] } = {}): Program {
  const port = options.port ?? 'output'
  const paths = options.modules ?? cachePaths(manifest, options)
  const entries = new Map(manifest.modules.map(m => [m.path, m]))
  const nodes: ProgramNode[] = []
  for (const site of paths) {
    const entry = entries.get(site)
    if (entry === undefined) throw new WeftError('PROGRAM_INVALID', `cache: '${site}' is not a module of ${manifest.name}`, { site })
    if (entry[port] === undefined) throw new WeftError('PROGRAM_INVALID', `cache: '${site}' has no ${port} to read (a container such as ModuleList has none)`, { site, port })
    nodes.push(['read', { site, port, invoke: 0 }, []])
    nodes.push(['save', { name: site }, [nodes.length - 1]])
  }
  return { version: PROGRAM_VERSION, model: { name: manifest.name, revision: manifest.revision }, mode: 'trace', invokes: [invoke], nodes }
}
