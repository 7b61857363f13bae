/**
 * Per-job preparation with a cache: validation and type inference depend only on the Program's fingerprint
 * (structure + invoke lengths + constant shapes), so a repeated shape skips them and only re-checks the token ids.
 */
import type { Manifest, Program, ValueType } from '@weft/core'
import { programFingerprint } from '../compile/structure-key.js'
import { resolveProgram, typeJob, type ResolvedJob } from './resolve-job.js'

export interface PreparedJob extends ResolvedJob {
  /** the session-cache key part of this job (its structure fingerprint), or null when it cannot be cached */
  structure: string | null
}

export class ProgramPlans {
  private readonly valid = new Map<string, ValueType[]>()
  hits = 0
  misses = 0

  constructor (private readonly manifest: Manifest, readonly capacity = 256) {}

  /**
   * Tokenizes text invokes, then validates and types the Program (from the cache when its fingerprint is known).
   * `known`: the node types the host inferred admitting this very Program (BatchJob.types): used as they are.
   */
  prepare (program: Program, tokenize: (text: string) => number[], known?: readonly ValueType[]): PreparedJob {
    const resolved = resolveProgram(program, this.manifest, tokenize)
    const print = programFingerprint(resolved)
    if (known !== undefined) return { ...typeJob(resolved, this.manifest, known), structure: print?.structure ?? null }
    if (print === null) return { ...typeJob(resolved, this.manifest), structure: null }
    const key = print.structure + '\u0000' + print.sizes
    const types = this.valid.get(key)
    if (types !== undefined && this.idsAndLocationsOk(resolved)) {
      this.valid.delete(key)
      this.valid.set(key, types)
      this.hits++
      return { program: resolved, types, structure: print.structure }
    }
    this.misses++
    const job = typeJob(resolved, this.manifest)
    this.valid.set(key, job.types)
    while (this.valid.size > this.capacity) this.valid.delete(this.valid.keys().next().value as string)
    return { ...job, structure: print.structure }
  }

  /** What validation checks beyond the fingerprint: every id an integer in the vocabulary, locations well formed. */
  private idsAndLocationsOk (program: Program): boolean {
    const vocab = this.manifest.vocabSize
    for (const invoke of program.invokes) {
      const ids = (invoke as { ids: unknown[] }).ids
      for (let t = 0; t < ids.length; t++) {
        const id = ids[t]
        if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) return false
      }
    }
    const locations = program.locations as unknown
    if (locations === undefined) return true
    return Array.isArray(locations) && locations.length === program.nodes.length &&
      locations.every(l => l === null || (typeof l === 'object' && !Array.isArray(l) && !ArrayBuffer.isView(l)))
  }
}
