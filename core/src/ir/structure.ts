/** Structural checks of a Program (shape of the data, not its types): shared by validation and decoding. */
import { show } from '../errors/show.js'
import { PROGRAM_VERSION } from './program.js'
import { generateFieldProblems } from './generate.js'
import { isInt, isObject } from './plain.js'
import { sessionFieldProblems, traceKeyProblems } from './session.js'

import type { StructureProblem } from './issues.js'
export type { StructureProblem } from './issues.js'

const TOP_KEYS = new Set(['version', 'model', 'mode', 'generate', 'invokes', 'nodes', 'locations', 'params', 'train', 'keep', 'then'])

function checkInvokes (invokes: unknown, problems: StructureProblem[]): void {
  if (!Array.isArray(invokes) || invokes.length === 0) {
    problems.push({ node: null, message: 'invokes must be a non-empty list' })
    return
  }
  invokes.forEach((invoke, k) => {
    if (!isObject(invoke)) return problems.push({ node: null, message: `invoke ${k} must be a map` })
    const keys = Object.keys(invoke)
    if (keys.length === 1 && keys[0] === 'text') {
      if (typeof invoke.text !== 'string' || invoke.text.length === 0) problems.push({ node: null, message: `invoke ${k}: text must be a non-empty string` })
    } else if (keys.length === 1 && keys[0] === 'ids') {
      if (!Array.isArray(invoke.ids) || invoke.ids.length === 0 || !invoke.ids.every(isInt)) problems.push({ node: null, message: `invoke ${k}: ids must be a non-empty list of integers` })
    } else {
      problems.push({ node: null, message: `invoke ${k} must be {ids} or {text}, got keys [${keys.join(', ')}]` })
    }
  })
}

function checkNodes (nodes: unknown, problems: StructureProblem[]): void {
  if (!Array.isArray(nodes)) {
    problems.push({ node: null, message: 'nodes must be a list' })
    return
  }
  nodes.forEach((node, i) => {
    if (!Array.isArray(node) || node.length !== 3) return problems.push({ node: i, message: 'node must be [op, attrs, inputs]' })
    const [op, attrs, inputs] = node
    if (typeof op !== 'string') problems.push({ node: i, message: 'node op must be a string' })
    if (!isObject(attrs)) problems.push({ node: i, message: 'node attrs must be a map' })
    if (!Array.isArray(inputs) || !inputs.every(isInt)) problems.push({ node: i, message: 'node inputs must be a list of integers' })
  })
}

/** Every structural problem; an empty list means `value` has the shape of a Program. */
export function programStructureProblems (value: unknown): StructureProblem[] {
  const problems: StructureProblem[] = []
  if (!isObject(value)) return [{ node: null, message: 'a Program must be a map' }]
  for (const key of Object.keys(value)) {
    if (!TOP_KEYS.has(key)) problems.push({ node: null, message: `unknown Program field '${key}'` })
  }
  if (value.version !== PROGRAM_VERSION) problems.push({ node: null, message: `version must be ${PROGRAM_VERSION}, got ${show(value.version)}` })
  const model = value.model
  if (!isObject(model) || typeof model.name !== 'string' || !(model.revision === null || typeof model.revision === 'string') || Object.keys(model).length !== 2) {
    problems.push({ node: null, message: 'model must be {name: string, revision: string | null}' })
  }
  if (value.mode !== 'trace' && value.mode !== 'generate') problems.push({ node: null, message: `mode must be 'trace' or 'generate', got ${show(value.mode)}` })
  problems.push(...generateFieldProblems(value))
  checkInvokes(value.invokes, problems)
  checkNodes(value.nodes, problems)
  if (value.locations !== undefined) {
    const ok = Array.isArray(value.locations) && Array.isArray(value.nodes) && value.locations.length === value.nodes.length &&
      value.locations.every(l => l === null || isObject(l))
    if (!ok) problems.push({ node: null, message: 'locations must be a list of maps or nulls, one per node' })
  }
  problems.push(...sessionFieldProblems(value))
  if (value.then !== undefined) {
    if (!Array.isArray(value.then) || value.then.length === 0) problems.push({ node: null, message: 'then must be a non-empty list of traces' })
    else {
      value.then.forEach((trace, t) => {
        const keys = traceKeyProblems(trace, t)
        if (keys.length > 0) return problems.push(...keys)
        const inner = programStructureProblems({ version: value.version, model: value.model, ...(trace as Record<string, unknown>) })
        for (const p of inner) problems.push({ node: p.node, message: `then[${t}]: ${p.message}` })
      })
    }
  }
  return problems
}
