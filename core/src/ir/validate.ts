/** Static validation of a Program against a model manifest: reports every problem, and infers value types. */
import { WeftError } from '../errors/weft-error.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Program, SourceLocation } from './program.js'
import type { InferContext, ValueType } from '../ops/types.js'
import { OPS, isOpName } from '../ops/table.js'
import { checkArity, checkAttrs } from '../ops/attrs.js'
import { programStructureProblems } from './structure.js'
import { checkCausality } from './causality.js'
import { checkGenerate } from './generate.js'
import { gradIssues } from '../ops/grad.js'

export interface ValidationIssue { node: number | null; op: string | null; message: string; location?: SourceLocation }

export interface ProgramAnalysis { issues: ValidationIssue[]; types: (ValueType | null)[] }

export function inferContext (program: Program, manifest: Manifest): InferContext {
  return {
    manifest,
    seqLen (invoke: number): number | string {
      const entry = program.invokes[invoke]
      if (!Number.isInteger(invoke) || entry === undefined) {
        throw new WeftError('PROGRAM_INVALID', `invoke ${invoke} out of range (program has ${program.invokes.length} invoke${program.invokes.length === 1 ? '' : 's'})`)
      }
      return 'ids' in entry ? entry.ids.length : `seq@${invoke}`
    },
  }
}

function checkIds (program: Program, manifest: Manifest, issues: ValidationIssue[]): void {
  program.invokes.forEach((invoke, k) => {
    if (!('ids' in invoke)) return
    const bad = invoke.ids.find(id => id < 0 || id >= manifest.vocabSize)
    if (bad !== undefined) issues.push({ node: null, op: null, message: `invoke ${k}: token id ${bad} outside the vocabulary [0, ${manifest.vocabSize})` })
  })
  if (program.model.name !== manifest.name) {
    issues.push({ node: null, op: null, message: `program targets model '${program.model.name}' but the manifest is for '${manifest.name}'` })
  }
}

function inferNode (program: Program, i: number, types: (ValueType | null)[], ctx: InferContext, issues: ValidationIssue[]): ValueType | null {
  const [op, attrs, inputs] = program.nodes[i]!
  const add = (message: string): null => { issues.push({ node: i, op, message }); return null }
  if (!isOpName(op)) return add(`unknown op '${op}'`)
  const def = OPS[op]
  const problems = [checkArity(def, inputs.length), ...checkAttrs(def, attrs)].filter((p): p is string => p !== null)
  for (const input of inputs) {
    if (input < 0 || input >= i) problems.push(`${op}: input ${input} must refer to an earlier node (< ${i})`)
    else if (program.nodes[input]![0] === 'stop') problems.push(`${op}: input ${input} is a stop node, which has no value`)
  }
  if (problems.length > 0) return problems.forEach(add), null
  const inputTypes = inputs.map(n => types[n])
  if (inputTypes.some(t => t === null || t === undefined)) return null // an earlier issue already explains it
  try {
    return def.infer(attrs, inputTypes as ValueType[], ctx)
  } catch (error) {
    if (WeftError.is(error)) return add(error.message)
    throw error
  }
}

function checkSaves (program: Program, issues: ValidationIssue[]): void {
  const seen = new Map<string, number>()
  program.nodes.forEach(([op, attrs], i) => {
    if (op !== 'save' || typeof attrs.name !== 'string') return
    const first = seen.get(attrs.name)
    if (first !== undefined) issues.push({ node: i, op, message: `save: duplicate save name '${attrs.name}' (first saved at node ${first})` })
    else seen.set(attrs.name, i)
  })
  // a generate Program always returns its tokens (generated.<k>)
  if (program.mode !== 'generate' && !program.nodes.some(([op]) => op === 'save')) issues.push({ node: null, op: null, message: 'program saves nothing: add at least one save node' })
}

/** Validates and infers; never throws for bad programs. */
export function analyzeProgram (program: unknown, manifest: Manifest): ProgramAnalysis {
  const structure = programStructureProblems(program)
  if (structure.length > 0) return { issues: structure.map(p => ({ ...p, op: null })), types: [] }
  const p = program as Program
  const issues: ValidationIssue[] = []
  checkIds(p, manifest, issues)
  const ctx = inferContext(p, manifest)
  const types: (ValueType | null)[] = []
  p.nodes.forEach((_, i) => types.push(inferNode(p, i, types, ctx, issues)))
  checkSaves(p, issues)
  if (p.mode !== 'generate') issues.push(...checkCausality(p, manifest))
  issues.push(...checkGenerate(p, manifest))
  issues.push(...gradIssues(p))
  for (const issue of issues) {
    const location = issue.node === null ? null : p.locations?.[issue.node]
    if (location !== null && location !== undefined) issue.location = location
  }
  issues.sort((a, b) => (a.node ?? -1) - (b.node ?? -1))
  return { issues, types }
}

export function validateProgram (program: unknown, manifest: Manifest): ValidationIssue[] {
  return analyzeProgram(program, manifest).issues
}

function formatIssue (issue: ValidationIssue): string {
  const where = issue.location?.file !== undefined ? ` at ${issue.location.file}:${issue.location.line ?? '?'}` : ''
  return issue.node === null ? issue.message : `node ${issue.node}${where}: ${issue.message}`
}

function throwIssues (issues: ValidationIssue[]): never {
  const head = issues.slice(0, 3).map(formatIssue).join('; ')
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : ''
  throw new WeftError('PROGRAM_INVALID', `invalid program: ${head}${more}`, { issues })
}

export function assertValidProgram (program: unknown, manifest: Manifest): asserts program is Program {
  const issues = validateProgram(program, manifest)
  if (issues.length > 0) throwIssues(issues)
}

/** The value type of every node; throws PROGRAM_INVALID (with `details.issues`) for an invalid program. */
export function inferProgramTypes (program: Program, manifest: Manifest): ValueType[] {
  const { issues, types } = analyzeProgram(program, manifest)
  if (issues.length > 0) throwIssues(issues)
  return types as ValueType[]
}

/** Sum of the op cost estimates of a valid program (for host-side cost limits). */
export function programCost (program: Program, manifest: Manifest): number {
  const types = inferProgramTypes(program, manifest)
  const ctx = inferContext(program, manifest)
  return program.nodes.reduce((total, [op, attrs, inputs]) => total + OPS[op as keyof typeof OPS].cost(attrs, inputs.map(n => types[n]!), ctx), 0)
}
