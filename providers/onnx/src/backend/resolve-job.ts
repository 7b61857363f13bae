/**
 * Per-job preparation before batching: text invokes tokenized into ids, the mode checked, the Program
 * validated and typed against the manifest. Failures become the job's own typed error.
 */
import { WeftError, inferProgramTypes, type Manifest, type Program, type ValueType } from '@weft/core'

export interface ResolvedJob { program: Program; types: ValueType[] }

/** Tokenizes text invokes and checks that the Program has `mode` (the model handle routes 'generate' jobs to the generator). */
export function resolveProgram (program: Program, manifest: Manifest, tokenize: (text: string) => number[], mode: Program['mode'] = 'trace'): Program {
  if (typeof program !== 'object' || program === null || !Array.isArray(program.invokes)) {
    throw new WeftError('PROGRAM_INVALID', 'not a Program: expected an object with invokes and nodes')
  }
  if (program.mode !== mode) {
    throw new WeftError('BACKEND_CAPABILITY_MISSING', `mode '${String(program.mode)}' is not supported by the onnx backend yet (only '${mode}')`, { mode: program.mode })
  }
  const invokes = program.invokes.map((invoke, k) => {
    if (invoke !== null && typeof invoke === 'object' && 'text' in invoke && typeof invoke.text === 'string') return { ids: tokenize(invoke.text) }
    if (invoke !== null && typeof invoke === 'object' && 'ids' in invoke && Array.isArray(invoke.ids)) {
      if (invoke.ids.length === 0) throw new WeftError('PROGRAM_INVALID', `invoke ${k} has no tokens`, { invoke: k })
      return invoke
    }
    throw new WeftError('PROGRAM_INVALID', `invoke ${k} must be { ids } or { text }`, { invoke: k })
  })
  if (invokes.length === 0) throw new WeftError('PROGRAM_INVALID', 'program has no invokes')
  if (invokes.some(i => i.ids.length === 0)) throw new WeftError('PROGRAM_INVALID', 'an invoke tokenizes to no tokens')
  return { ...program, invokes }
}

/**
 * Validates and types an already resolved Program (invoke lengths against the model's positions). `types`: the
 * node types the host inferred when it admitted this Program (BatchJob.types): used instead of inferring again.
 */
export function typeJob (resolved: Program, manifest: Manifest, types?: readonly ValueType[]): ResolvedJob {
  const maxPositions = manifest.maxPositions
  resolved.invokes.forEach((invoke, k) => {
    const length = (invoke as { ids: number[] }).ids.length
    if (maxPositions !== null && length > maxPositions) {
      throw new WeftError('PROGRAM_INVALID', `invoke ${k} has ${length} tokens; the model takes at most ${maxPositions}`, { invoke: k })
    }
  })
  return { program: resolved, types: types !== undefined ? types as ValueType[] : inferProgramTypes(resolved, manifest) }
}
