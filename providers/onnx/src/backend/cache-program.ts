/** `cacheProgram`: the Program that saves module outputs for one invoke (NNsight's `model.trace(...).cache`). */
import { PROGRAM_VERSION, WeftError, type Invoke, type Manifest, type ModelRef, type Program, type ProgramNode } from '@weft/core'

/** Saves the outputs of `modules` (default: every manifest entry with an output), each under its own path. */
export function cacheProgram (model: ModelRef, invoke: Invoke, modules?: readonly string[], manifest?: Manifest): Program {
  let paths = modules
  if (paths === undefined) {
    if (manifest === undefined) throw new WeftError('PROGRAM_INVALID', 'cacheProgram needs the module list or the manifest')
    paths = manifest.modules.filter(m => m.output !== undefined).map(m => m.path)
  }
  const nodes: ProgramNode[] = []
  for (const site of paths) {
    nodes.push(['read', { site, port: 'output', invoke: 0 }, []])
    nodes.push(['save', { name: site }, [nodes.length - 1]])
  }
  return { version: PROGRAM_VERSION, model, mode: 'trace', invokes: [invoke], nodes }
}
