/**
 * The workbench's experiments, shared by the server (which runs them through the SDK) and the page (which shows
 * each form's Program as the TypeScript that records it). Pure TypeScript: no Node or DOM imports.
 */

export type ExperimentKind = 'logit-lens' | 'patching' | 'attention' | 'steering'

export interface LogitLensParams { prompt: string; topK: number }
export interface PatchingParams { clean: string; corrupt: string; answer: string; distractor: string; positions: 'all' | 'last'; heads: boolean }
export interface AttentionParams { prompt: string; layer: number }
export interface SteeringParams { prompt: string; toward: string; away: string; layer: number; coefficient: number; maxNewTokens: number }

export interface ParamsOf {
  'logit-lens': LogitLensParams
  patching: PatchingParams
  attention: AttentionParams
  steering: SteeringParams
}

export type AnyParams = ParamsOf[ExperimentKind]

export interface ExperimentInfo { kind: ExperimentKind; title: string; summary: string }

export const EXPERIMENTS: readonly ExperimentInfo[] = [
  { kind: 'logit-lens', title: 'Logit lens', summary: 'Decode every layer\'s residual stream at every position through the final norm and the unembedding.' },
  { kind: 'patching', title: 'Activation patching', summary: 'Copy clean activations into a corrupted run, per layer × position and per head, and measure how much of the clean logit difference comes back.' },
  { kind: 'attention', title: 'Attention patterns', summary: 'Every head\'s attention probabilities at one layer.' },
  { kind: 'steering', title: 'Steering', summary: 'Generate with a steering vector (toward − away at one layer, last position) added at every step.' },
]

/** IOI (Wang et al. 2022) with the names swapped: the first template of models/demo-gpt2/training_data_spec.json. */
export const DEFAULTS: ParamsOf = {
  'logit-lens': { prompt: 'The capital of France is', topK: 3 },
  patching: {
    clean: 'When Mary and John went to the store, John gave a drink to',
    corrupt: 'When John and Mary went to the store, Mary gave a drink to',
    answer: ' Mary',
    distractor: ' John',
    positions: 'last',
    heads: true,
  },
  attention: { prompt: 'When Mary and John went to the store, John gave a drink to', layer: 0 },
  steering: { prompt: 'In France, the seat of government is', toward: 'The capital of Japan', away: 'The capital of France', layer: 1, coefficient: 1, maxNewTokens: 6 },
}

export const isKind = (value: unknown): value is ExperimentKind => EXPERIMENTS.some(e => e.kind === value)

/** A problem with one field of a form. */
export interface FieldProblem { field: string; message: string }

const MAX_TEXT = 2000

function text (problems: FieldProblem[], params: Record<string, unknown>, field: string, allowEmpty = false): void {
  const value = params[field]
  if (typeof value !== 'string') problems.push({ field, message: `${field} must be text` })
  else if (!allowEmpty && value.trim().length === 0) problems.push({ field, message: `${field} is empty` })
  else if (value.length > MAX_TEXT) problems.push({ field, message: `${field} is longer than ${MAX_TEXT} characters` })
}

function integer (problems: FieldProblem[], params: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = params[field]
  if (typeof value !== 'number' || !Number.isInteger(value)) problems.push({ field, message: `${field} must be a whole number` })
  else if (value < min || value > max) problems.push({ field, message: `${field} must be between ${min} and ${max}` })
}

function finite (problems: FieldProblem[], params: Record<string, unknown>, field: string, min: number, max: number): void {
  const value = params[field]
  if (typeof value !== 'number' || !Number.isFinite(value)) problems.push({ field, message: `${field} must be a number` })
  else if (value < min || value > max) problems.push({ field, message: `${field} must be between ${min} and ${max}` })
}

/**
 * Checks a form's values without the model (types, ranges, empty text). `layers` bounds layer fields when known.
 * Model-dependent checks (token lengths, single-token answers) happen on the server.
 */
export function validateParams (kind: ExperimentKind, raw: unknown, layers = 1024): FieldProblem[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return [{ field: 'params', message: 'params must be an object' }]
  const params = raw as Record<string, unknown>
  const problems: FieldProblem[] = []
  switch (kind) {
    case 'logit-lens':
      text(problems, params, 'prompt'); integer(problems, params, 'topK', 1, 10); break
    case 'patching':
      for (const field of ['clean', 'corrupt', 'answer', 'distractor']) text(problems, params, field)
      if (params.positions !== 'all' && params.positions !== 'last') problems.push({ field: 'positions', message: 'positions is all or last' })
      if (typeof params.heads !== 'boolean') problems.push({ field: 'heads', message: 'heads must be true or false' })
      break
    case 'attention':
      text(problems, params, 'prompt'); integer(problems, params, 'layer', 0, layers - 1); break
    case 'steering':
      for (const field of ['prompt', 'toward', 'away']) text(problems, params, field)
      integer(problems, params, 'layer', 0, layers - 1)
      finite(problems, params, 'coefficient', -100, 100)
      integer(problems, params, 'maxNewTokens', 1, 64)
      break
  }
  return problems
}

/** How the page shows the code: which connect call stands for the workbench's mode. */
export interface SourceContext { model: string; connect: string }

const q = (value: string): string => JSON.stringify(value)

/** The TypeScript that records (and runs) the experiment's Program with these values: what the server runs. */
export function programSource (kind: ExperimentKind, params: AnyParams, context: SourceContext): string {
  const head = [
    'import { Weft } from \'@weft/sdk\'',
    '',
    `const weft = await ${context.connect}`,
    `const model = await weft.model(${q(context.model)})`,
  ]
  switch (kind) {
    case 'logit-lens': {
      const p = params as LogitLensParams
      return [...head,
        '',
        `// every layer's residual stream at every position, decoded: only the top ${p.topK} ids and probabilities leave`,
        `const out = await model.trace(${q(p.prompt)}, (m) => {`,
        '  const streams = [m.layers[0].input, ...[...m.layers].map((layer) => layer.output)]',
        '  return streams.map((h) => {',
        `    const top = m.lm_head.call(m.ln_final.call(h.at(0))).softmax(-1).topk(${p.topK})`,
        '    return { ids: top.indices, probs: top.values }',
        '  })',
        '})',
      ].join('\n')
    }
    case 'patching': {
      const p = params as PatchingParams
      const positions = p.positions === 'all' ? 'clean.map((_, p) => p)' : '[clean.length - 1]'
      return [...head,
        '',
        `const clean = await model.tokenize(${q(p.clean)})`,
        `const corrupt = await model.tokenize(${q(p.corrupt)})`,
        `const [answer] = await model.tokenize(${q(p.answer)})`,
        `const [distractor] = await model.tokenize(${q(p.distractor)})`,
        `const positions = ${positions}`,
        '',
        '// one Program, one batched forward: clean, corrupt, then one corrupted run per patch',
        'const out = await model.trace((t) => {',
        '  const diff = (m) => { const last = m.lm_head.output.at(0, -1); return last.at(answer).sub(last.at(distractor)) }',
        '  const cleanLayers = [], cleanHeads = []',
        '  const cleanDiff = t.invoke(clean, (m) => {',
        '    for (const layer of m.layers) {',
        '      cleanLayers.push(layer.output.at(0))',
        ...(p.heads ? ['      cleanHeads.push(layer.attn.heads.output.at(0, -1))'] : []),
        '    }',
        '    return diff(m)',
        '  })',
        '  const corruptDiff = t.invoke(corrupt, diff)',
        '  const layers = cleanLayers.map((h, l) => positions.map((p) => t.invoke(corrupt, (m) => {',
        '    m.layers[l].output.at(0, p).set(h.at(p))',
        '    return diff(m)',
        '  })))',
        ...(p.heads
          ? ['  const heads = cleanHeads.map((h, l) => h.shape.slice(0, 1).flatMap((n) => Array.from({ length: n }, (_, head) => t.invoke(corrupt, (m) => {',
              '    m.layers[l].attn.heads.output.at(0, -1, head).set(h.at(head))',
              '    return diff(m)',
              '  }))))',
              '  return { cleanDiff, corruptDiff, layers, heads }']
          : ['  return { cleanDiff, corruptDiff, layers }']),
        '})',
        '// recovery = (patched − corrupt) / (clean − corrupt)',
      ].join('\n')
    }
    case 'attention': {
      const p = params as AttentionParams
      return [...head,
        '',
        `const out = await model.trace(${q(p.prompt)}, (m) => ({`,
        `  probs: m.layers[${p.layer}].attn.probs.output.at(0),   // [heads, query, key]`,
        '}))',
      ].join('\n')
    }
    case 'steering': {
      const p = params as SteeringParams
      return [...head,
        '',
        `// the steering vector: the difference of two prompts' residual streams at layer ${p.layer}, last position`,
        'const { vector } = await model.trace((t) => {',
        `  const a = t.invoke(${q(p.toward)}, (m) => m.layers[${p.layer}].output.at(0, -1))`,
        `  const b = t.invoke(${q(p.away)}, (m) => m.layers[${p.layer}].output.at(0, -1))`,
        `  return { vector: a.sub(b).mul(${p.coefficient}) }`,
        '})',
        '',
        `const plain = await model.generate(${q(p.prompt)}, { maxNewTokens: ${p.maxNewTokens} })`,
        `const steered = await model.generate(${q(p.prompt)}, { maxNewTokens: ${p.maxNewTokens} }, (m, steps) => {`,
        '  steps.all((m) => {                                 // every step, the prompt pass included',
        `    const h = m.layers[${p.layer}].output`,
        '    h.set(h.add(vector))',
        '  })',
        '})',
        'console.log(plain.text, \'→\', steered.text)',
      ].join('\n')
    }
  }
}

// ── results as the page receives them ───────────────────────────────────────

export interface LensCell { id: number; token: string; prob: number; alternatives: { token: string; prob: number }[] }
export interface LensView { kind: 'logit-lens'; tokens: string[]; layers: string[]; top: LensCell[][] }
export interface PatchingView {
  kind: 'patching'
  tokens: string[]
  cleanDiff: number
  corruptDiff: number
  layers: string[]
  /** positions patched (indices into tokens) */
  positions: number[]
  /** recovery[layer][i] for positions[i]: (patched − corrupt) / (clean − corrupt) */
  recovery: number[][]
  /** per-layer recovery at the last position */
  layerRecovery: number[]
  /** recovery[layer][head] (patching one head's output at the last position), null when not asked */
  heads: number[][] | null
}
export interface AttentionView { kind: 'attention'; tokens: string[]; layer: number; probs: number[][][] }
export interface SteeringView { kind: 'steering'; prompt: string; plain: string; steered: string; steeredTokens: string[]; vectorNorm: number }
export type ResultView = LensView | PatchingView | AttentionView | SteeringView

/** A run's record as the page sees it (without the tensors, which are downloads). */
export interface RunSummary {
  id: string
  kind: ExperimentKind
  model: string
  status: 'queued' | 'running' | 'completed' | 'failed'
  progress: string
  view: ResultView | null
  error: { code: string; message: string } | null
  /** who ran it and what it cost */
  provider: string | null
  programDigest: string | null
  programs: number
  receipt: { present: boolean; verified: boolean; detail: string } | null
  egress: { bytes: number; remainingToday: number | null } | null
  elapsedMs: number | null
}

/** The stage of a run as one line of text: queued (position), running, step k of n. */
export interface ProgressEvent { stage: string; text: string; step?: number; steps?: number }

export function showToken (token: string): string {
  return token.replace(/ /g, '␣').replace(/\n/g, '⏎')
}
