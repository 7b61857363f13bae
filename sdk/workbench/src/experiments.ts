/**
 * Runs the workbench's experiments through the SDK, exactly as `programSource` shows them (standard module names, so
 * every built family works). Each returns the view the page draws and the tensors offered as a download.
 */
import { WeftError } from '@weft/core'
import type { Model, Tensor, ValueProxy, Envoy } from '@weft/sdk'
import type { AttentionParams, AttentionView, ExperimentKind, LensView, LogitLensParams, ParamsOf, PatchingParams, PatchingView, ResultView, SteeringParams, SteeringView } from './shared/experiments.js'

/** A model addressed by standard names (m.layers, m.lm_head, m.ln_final): what the experiments use. */
type Std = Envoy & Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
/** any model: the experiments address it by standard names */
export type AnyModel = Model<any> // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ExperimentOutput { view: ResultView; tensors: Record<string, Tensor> }

export interface ExperimentHooks { onStep?: (step: number, steps: number, what: string) => void }

const invalid = (message: string, field: string): never => { throw new WeftError('PROGRAM_INVALID', message, { field }) }

export function layerCount (model: AnyModel): number {
  const n = model.manifest.modules.filter(m => /^(transformer\.h|model\.layers|gpt_neox\.layers)\.\d+$/.test(m.path)).length
  if (n > 0) return n
  const config = model.manifest.config as Record<string, unknown>
  return Number(config.n_layer ?? config.num_hidden_layers ?? 0)
}

async function singleToken (model: AnyModel, text: string, field: string): Promise<number> {
  const ids = await model.tokenize(text)
  if (ids.length !== 1) invalid(`${field} '${text}' is ${ids.length} tokens; it must be exactly one (names usually need their leading space)`, field)
  return ids[0]!
}

const tokensOf = (model: AnyModel, ids: number[]): string[] => ids.map(id => model.token(id))

export async function logitLens (model: AnyModel, params: LogitLensParams): Promise<ExperimentOutput> {
  const ids = await model.tokenize(params.prompt)
  if (ids.length === 0) invalid('the prompt has no tokens', 'prompt')
  const out = await (model as Model<Std>).trace(ids, (m) => {
    const streams: ValueProxy[] = [m.layers[0].input, ...[...m.layers].map((layer: Std) => layer.output)]
    return streams.map((h) => {
      const top = m.lm_head.call(m.ln_final.call(h.at(0))).softmax(-1).topk(params.topK)
      return { ids: top.indices, probs: top.values }
    })
  })
  const layers = ['embed', ...Array.from({ length: out.length - 1 }, (_, i) => `layer ${i}`)]
  const top = out.map((row) => {
    const rowIds = row.ids.toFlat(); const rowProbs = row.probs.toFlat()
    return ids.map((_, position) => {
      const cells = Array.from({ length: params.topK }, (_, k) => ({ id: rowIds[position * params.topK + k]!, prob: rowProbs[position * params.topK + k]! }))
      return { id: cells[0]!.id, token: model.token(cells[0]!.id), prob: cells[0]!.prob, alternatives: cells.slice(1).map(c => ({ token: model.token(c.id), prob: c.prob })) }
    })
  })
  const tensors: Record<string, Tensor> = {}
  out.forEach((row, i) => { tensors[`${layers[i]!.replace(' ', '.')}.ids`] = row.ids; tensors[`${layers[i]!.replace(' ', '.')}.probs`] = row.probs })
  const view: LensView = { kind: 'logit-lens', tokens: tokensOf(model, ids), layers, top }
  return { view, tensors }
}

export async function patching (model: AnyModel, params: PatchingParams): Promise<ExperimentOutput> {
  const [clean, corrupt] = [await model.tokenize(params.clean), await model.tokenize(params.corrupt)]
  if (clean.length !== corrupt.length) invalid(`the clean prompt is ${clean.length} tokens and the corrupted one ${corrupt.length}; patching needs equal lengths`, 'corrupt')
  const answer = await singleToken(model, params.answer, 'answer')
  const distractor = await singleToken(model, params.distractor, 'distractor')
  if (answer === distractor) invalid('answer and distractor are the same token', 'distractor')
  const positions = params.positions === 'all' ? clean.map((_, p) => p) : [clean.length - 1]
  const out = await (model as Model<Std>).trace((t) => {
    const diff = (m: Std): ValueProxy => { const last = m.lm_head.output.at(0, -1); return last.at(answer).sub(last.at(distractor)) }
    const cleanLayers: ValueProxy[] = []
    const cleanHeads: ValueProxy[] = []
    const cleanDiff = t.invoke(clean, (m) => {
      for (const layer of m.layers as Iterable<Std>) {
        cleanLayers.push(layer.output.at(0))
        if (params.heads) cleanHeads.push(layer.attn.heads.output.at(0, -1))
      }
      return diff(m)
    })
    const corruptDiff = t.invoke(corrupt, diff)
    const layers = cleanLayers.map((h, l) => positions.map((p) => t.invoke(corrupt, (m) => {
      m.layers[l].output.at(0, p).set(h.at(p))
      return diff(m)
    })))
    const heads = cleanHeads.map((h, l) => Array.from({ length: Number(h.shape[0]) }, (_, head) => t.invoke(corrupt, (m) => {
      m.layers[l].attn.heads.output.at(0, -1, head).set(h.at(head))
      return diff(m)
    })))
    return { cleanDiff, corruptDiff, layers, heads }
  }) as unknown as { cleanDiff: Tensor; corruptDiff: Tensor; layers: Tensor[][]; heads: Tensor[][] }
  const cleanDiff = out.cleanDiff.item(); const corruptDiff = out.corruptDiff.item()
  const recovery = (d: Tensor): number => (d.item() - corruptDiff) / (cleanDiff - corruptDiff)
  const rec = out.layers.map(row => row.map(recovery))
  const view: PatchingView = {
    kind: 'patching', tokens: tokensOf(model, corrupt), cleanDiff, corruptDiff,
    layers: rec.map((_, l) => `layer ${l}`), positions, recovery: rec,
    layerRecovery: rec.map(row => row.at(-1)!),
    heads: params.heads ? out.heads.map(row => row.map(recovery)) : null,
  }
  const tensors: Record<string, Tensor> = { cleanDiff: out.cleanDiff, corruptDiff: out.corruptDiff }
  out.layers.forEach((row, l) => row.forEach((d, i) => { tensors[`layers.${l}.pos${positions[i]}`] = d }))
  out.heads.forEach((row, l) => row.forEach((d, h) => { tensors[`heads.${l}.${h}`] = d }))
  return { view, tensors }
}

export async function attention (model: AnyModel, params: AttentionParams): Promise<ExperimentOutput> {
  const layers = layerCount(model)
  if (params.layer >= layers) invalid(`layer ${params.layer} does not exist: ${model.name} has layers 0–${layers - 1}`, 'layer')
  const ids = await model.tokenize(params.prompt)
  if (ids.length === 0) invalid('the prompt has no tokens', 'prompt')
  const out = await (model as Model<Std>).trace(ids, (m) => ({ probs: m.layers[params.layer].attn.probs.output.at(0) }))
  const [heads, n] = [out.probs.shape[0]!, out.probs.shape[1]!]
  const flat = out.probs.toFlat()
  const probs = Array.from({ length: heads }, (_, h) => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => flat[(h * n + i) * n + j]!)))
  const view: AttentionView = { kind: 'attention', tokens: tokensOf(model, ids), layer: params.layer, probs }
  return { view, tensors: { [`layers.${params.layer}.attn.probs`]: out.probs } }
}

export async function steering (model: AnyModel, params: SteeringParams, hooks: ExperimentHooks = {}): Promise<ExperimentOutput> {
  const layers = layerCount(model)
  if (params.layer >= layers) invalid(`layer ${params.layer} does not exist: ${model.name} has layers 0–${layers - 1}`, 'layer')
  const std = model as Model<Std>
  const { vector } = await std.trace((t) => {
    const a = t.invoke(params.toward, (m) => m.layers[params.layer].output.at(0, -1))
    const b = t.invoke(params.away, (m) => m.layers[params.layer].output.at(0, -1))
    return { vector: a.sub(b).mul(params.coefficient) }
  })
  const total = params.maxNewTokens * 2
  const plain = await std.generate(params.prompt, { maxNewTokens: params.maxNewTokens, onToken: (t) => hooks.onStep?.(t.step + 1, total, 'plain') })
  const steered = await std.generate(params.prompt, { maxNewTokens: params.maxNewTokens, onToken: (t) => hooks.onStep?.(params.maxNewTokens + t.step + 1, total, 'steered') }, (_m, steps) => {
    steps.all((m) => {
      const h = m.layers[params.layer].output
      h.set(h.add(vector))
    })
  })
  const vectorNorm = Math.sqrt((vector as Tensor).toFlat().reduce((a: number, v: number) => a + v * v, 0))
  const view: SteeringView = { kind: 'steering', prompt: params.prompt, plain: plain.text, steered: steered.text, steeredTokens: steered.tokens.map(id => model.token(id)), vectorNorm }
  const { Tensor: T } = await import('@weft/sdk')
  return { view, tensors: { vector, plainTokens: T.of(plain.tokens), steeredTokens: T.of(steered.tokens) } }
}

export async function runExperiment<K extends ExperimentKind> (kind: K, model: AnyModel, params: ParamsOf[K], hooks: ExperimentHooks = {}): Promise<ExperimentOutput> {
  switch (kind) {
    case 'logit-lens': return await logitLens(model, params as LogitLensParams)
    case 'patching': return await patching(model, params as PatchingParams)
    case 'attention': return await attention(model, params as AttentionParams)
    case 'steering': return await steering(model, params as SteeringParams, hooks)
  }
  throw new WeftError('PROGRAM_INVALID', `unknown experiment '${String(kind)}'`)
}
