/**
 * Activation steering (Turner et al. 2023, "activation addition"): the difference of two contrast prompts'
 * residual streams at one layer (last position), scaled and added at every position of a different prompt;
 * compare top tokens and greedy completions.
 * Run: `npx tsx examples/src/steering.ts`.
 */
import { Weft, type GPT2, type Model, type Tensor, type TopToken } from '@weft/sdk'
import { isMain, showToken, table } from './format.js'

export interface SteeringOptions {
  /** the prompt to steer */
  prompt: string
  /** the steering vector is h[layer](toward)[-1] − h[layer](away)[-1] (any token lengths) */
  toward: string
  away: string
  layer: number
  coefficient: number
  /** greedy tokens to generate for the completions */
  steps: number
}

export interface SteeringResult {
  options: SteeringOptions
  before: TopToken[]
  after: TopToken[]
  completionBefore: string
  completionAfter: string
  /** L2 norm of the (scaled) steering vector */
  vectorNorm: number
}

const DEFAULT_STEERING: SteeringOptions = {
  prompt: 'In France, the seat of government is',
  toward: 'The capital of Japan',
  away: 'The capital of France',
  layer: 1,
  coefficient: 1,
  steps: 3,
}

/** Greedy continuation of `ids`; `steer` (if given) is added to the prompt positions of h[layer] every step. */
async function greedy (model: Model<GPT2>, ids: number[], steps: number, layer: number, steer: Tensor | null): Promise<number[]> {
  const out = [...ids]
  const promptLength = ids.length
  for (let i = 0; i < steps; i++) {
    const next = await model.trace(out, (m) => {
      if (steer !== null) {
        const region = m.transformer.h[layer]!.output.at(0, [0, promptLength])
        region.set(region.add(steer))
      }
      return m.lm_head.output.at(0, -1).argmax()
    })
    out.push(next.item())
  }
  return out.slice(promptLength)
}

export async function steering (model: Model<GPT2>, options: SteeringOptions = DEFAULT_STEERING): Promise<SteeringResult> {
  const [prompt, toward, away] = await Promise.all([options.prompt, options.toward, options.away].map((p) => model.tokenize(p)))
  const { layer, coefficient } = options
  // One Program: the two contrast runs build the vector, a third run reads the steered logits.
  const out = await model.trace((t) => {
    const a = t.invoke(toward!, (m) => m.transformer.h[layer]!.output.at(0, -1))
    const b = t.invoke(away!, (m) => m.transformer.h[layer]!.output.at(0, -1))
    const vector = a.sub(b).mul(coefficient)                     // [d], broadcast over every position
    const before = t.invoke(prompt!, (m) => m.lm_head.output.at(0, -1))
    const after = t.invoke(prompt!, (m) => {
      const site = m.transformer.h[layer]!.output
      site.set(site.add(vector))
      return m.lm_head.output.at(0, -1)
    })
    return { vector, norm: vector.norm(), before, after }
  })
  const [completionBefore, completionAfter] = await Promise.all([
    greedy(model, prompt!, options.steps, layer, null),
    greedy(model, prompt!, options.steps, layer, out.vector),
  ])
  return {
    options,
    before: model.topTokens(out.before, 5),
    after: model.topTokens(out.after, 5),
    completionBefore: await model.decode(completionBefore!),
    completionAfter: await model.decode(completionAfter!),
    vectorNorm: out.norm.item(),
  }
}

export function steeringTable (result: SteeringResult): string {
  const { options } = result
  const rows = result.before.map((b, i) => [String(i + 1), `${showToken(b.token)} ${b.prob.toFixed(3)}`, `${showToken(result.after[i]!.token)} ${result.after[i]!.prob.toFixed(3)}`])
  return [
    `steering h.${options.layer} by ${options.coefficient} × (h("${options.toward}")[-1] − h("${options.away}")[-1]) at every position, |v| = ${result.vectorNorm.toFixed(2)}`,
    table(['rank', 'before', 'after'], rows),
    '',
    `"${options.prompt}" →  before: "${result.completionBefore}"`,
    `${' '.repeat(options.prompt.length + 6)}after:  "${result.completionAfter}"`,
  ].join('\n')
}

if (isMain(import.meta.url)) {
  const weft = await Weft.local()
  const model = await weft.model<GPT2>('demo-gpt2')
  console.log(steeringTable(await steering(model)))
  await weft.close()
}
