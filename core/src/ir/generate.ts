/**
 * Generate mode: the `generate` field, the `step` of every node (which forward pass computes it), per-step
 * causality and the reserved `generated.<k>` saves. spec/program.md (Generation) is the normative prose.
 */
import { show } from '../errors/show.js'
import type { Manifest } from '../manifest/manifest.js'
import type { Program, Step } from './program.js'
import type { StructureProblem, ValidationIssue } from './issues.js'
import { checkCausality } from './causality.js'
import { isObject, isUint } from './plain.js'

/** Largest seed: seeds are exact integers in CBOR and JavaScript alike. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER

/** Name of the reserved save holding invoke k's new tokens (int64 `[1, n]`, n ≤ maxNewTokens). */
export const generatedSaveName = (invoke: number): string => `generated.${invoke}`

/** Problems with the top-level `generate` field: required in generate mode, absent otherwise. */
export function generateFieldProblems (value: Record<string, unknown>): StructureProblem[] {
  const g = value.generate
  if (value.mode !== 'generate') {
    return g === undefined ? [] : [{ node: null, message: "generate options are only allowed with mode 'generate'" }]
  }
  if (!isObject(g)) return [{ node: null, message: 'generate mode needs generate: { maxNewTokens, strategy, stopTokenIds? }' }]
  const problems: StructureProblem[] = []
  const add = (message: string): void => { problems.push({ node: null, message: `generate: ${message}` }) }
  for (const key of Object.keys(g)) if (!['maxNewTokens', 'strategy', 'stopTokenIds'].includes(key)) add(`unknown field '${key}'`)
  if (!isUint(g.maxNewTokens) || g.maxNewTokens < 1) add(`maxNewTokens must be a positive integer, got ${show(g.maxNewTokens)}`)
  const s = g.strategy
  if (isObject(s)) {
    for (const key of Object.keys(s)) if (!['temperature', 'topK', 'seed'].includes(key)) add(`unknown strategy field '${key}'`)
    if (typeof s.temperature !== 'number' || !Number.isFinite(s.temperature) || s.temperature <= 0) add(`temperature must be a positive number, got ${show(s.temperature)}`)
    if (s.topK !== undefined && (!isUint(s.topK) || s.topK < 1)) add(`topK must be a positive integer, got ${show(s.topK)}`)
    if (!isUint(s.seed) || s.seed > MAX_SEED) add(`seed must be an integer in [0, 2^53), got ${show(s.seed)}`)
  } else if (s !== 'greedy') {
    add(`strategy must be 'greedy' or { temperature, topK?, seed }, got ${show(s)}`)
  }
  if (g.stopTokenIds !== undefined && (!Array.isArray(g.stopTokenIds) || !g.stopTokenIds.every(isUint))) add('stopTokenIds must be a list of token ids')
  return problems
}

/** The step a node's value belongs to: null (constants, weights: every step), a step number, or 'all' (a per-step template). */
export type NodeStep = number | 'all' | null

/** Every node's step; problems where values of different steps are combined in a way no step can compute. */
export function nodeSteps (program: Program): { steps: NodeStep[]; issues: ValidationIssue[] } {
  const steps: NodeStep[] = []
  const issues: ValidationIssue[] = []
  const generating = program.mode === 'generate'
  const limit = program.generate?.maxNewTokens
  program.nodes.forEach(([op, attrs, inputs], i) => {
    const add = (message: string): void => { issues.push({ node: i, op, message }) }
    let combined: NodeStep = null
    for (const n of inputs) {
      const s = n >= 0 && n < i ? steps[n] ?? null : null
      if (s === null) continue
      if (combined === null) combined = s
      else if (combined === 'all' || s === 'all') {
        const other = combined === 'all' ? s : combined
        if (other !== 'all' && other !== 0) { add(`${op}: combines a value of every step ('all') with a value of step ${other}; 'all' values may only use step-0 values`); combined = 'all'; continue }
        combined = 'all'
      } else combined = Math.max(combined, s)
    }
    if (op === 'stop' && generating) add('stop: not allowed in generate mode (every step runs the whole forward)')
    if (op !== 'read' && op !== 'write') {
      if (op === 'save' && combined === 'all') add("save: a value of step 'all' has one value per step; read it at explicit steps to save it")
      steps.push(combined)
      return
    }
    const own = (attrs.step ?? 0) as Step
    if (!generating && own !== 0) add(`${op}: step ${show(own)} is only allowed in generate mode`)
    if (typeof own === 'number' && limit !== undefined && own >= limit) add(`${op}: step ${own} is not below maxNewTokens (${limit})`)
    if (op === 'write' && combined !== null) {
      if (own === 'all' && combined !== 'all' && combined !== 0) add(`write: a write at every step ('all') cannot use a value of step ${combined}`)
      if (own !== 'all' && combined === 'all') add(`write: a write at step ${own} cannot use a value of every step ('all')`)
      if (own !== 'all' && combined !== 'all' && combined > own) add(`write: a write at step ${own} cannot use a value of the later step ${combined}`)
    }
    steps.push(own)
  })
  return { steps, issues }
}

/** Generate-mode checks beyond the op table: steps, per-step causality, reserved save names, positions. */
export function checkGenerate (program: Program, manifest: Manifest): ValidationIssue[] {
  const { issues } = nodeSteps(program)
  if (program.mode !== 'generate') return issues
  const reserved = new Set(program.invokes.map((_, k) => generatedSaveName(k)))
  program.nodes.forEach(([op, attrs], i) => {
    if (op === 'save' && typeof attrs.name === 'string' && reserved.has(attrs.name)) {
      issues.push({ node: i, op, message: `save: the name '${attrs.name}' is reserved for the generated tokens` })
    }
  })
  const classes = new Set<number>([0])
  for (const [op, attrs] of program.nodes) if ((op === 'write' || op === 'read') && typeof attrs.step === 'number') classes.add(attrs.step)
  const seen = new Set<string>()
  for (const step of classes) {
    for (const issue of checkCausality(program, manifest, attrs => (attrs.step ?? 0) === step || attrs.step === 'all')) {
      const key = `${issue.node}:${issue.message}`
      if (!seen.has(key)) { seen.add(key); issues.push(issue) }
    }
  }
  const n = program.generate?.maxNewTokens
  if (manifest.maxPositions !== null && typeof n === 'number') {
    program.invokes.forEach((invoke, k) => {
      if ('ids' in invoke && invoke.ids.length + n - 1 > manifest.maxPositions!) {
        issues.push({ node: null, op: null, message: `invoke ${k}: ${invoke.ids.length} prompt tokens + ${n} new tokens exceed the model's ${manifest.maxPositions} positions` })
      }
    })
  }
  return issues
}
