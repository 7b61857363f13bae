/**
 * Training a steering vector on the host (issue #11): v (256 zeros) is added to transformer.h.2's output at every
 * position of four "The capital of X is" prompts and trained by Adam so the model answers " Rome"; the 30 steps run
 * in ONE request (a session), only the loss curve comes back, and it is plotted as an SVG line chart. The vector is
 * kept where it was trained (`s.keep`) and applied by name to a generation (`model.withAdapter`).
 * Run embedded: `npx tsx examples/src/train-steering.ts`;
 * remote: `npx tsx examples/src/train-steering.ts --provider http://127.0.0.1:8740 --key <secret key hex>`.
 */
import { Weft, stack, type GPT2, type Model, type Tracer, type ValueProxy } from '@weft/sdk'
import { isMain } from './format.js'
import { writeOut } from './svg-heatmap.js'

export interface TrainSteeringOptions {
  prompts: string[]
  target: string
  layer: number
  steps: number
  lr: number
  /** keep the trained vector on the executor under this adapter name */
  keep?: string
}

export const DEFAULT_TRAIN_STEERING: TrainSteeringOptions = {
  prompts: ['The capital of France is', 'The capital of Japan is', 'The capital of Germany is', 'The capital of Spain is'],
  target: ' Rome',
  layer: 2,
  steps: 30,
  lr: 0.05,
}

export interface TrainSteeringResult {
  losses: number[]
  /** the loss with the trained vector (a later trace of the same session) */
  finalLoss: number
  /** bytes of saved tensor data that came back (the loss curve and one scalar) */
  resultBytes: number
  seconds: number
}

export async function trainSteering (model: Model<GPT2>, options: TrainSteeringOptions = DEFAULT_TRAIN_STEERING): Promise<TrainSteeringResult> {
  const [target] = await model.tokenize(options.target)
  const started = performance.now()
  const out = await model.session((s) => {
    // v (zeros, the block's width) added to the block's output at every position, in every trace of the session
    s.steer(`transformer.h.${options.layer}`)
    const meanNll = (prompts: string[]) => (t: Tracer<GPT2>) => stack(prompts.map((p) => t.invoke(p, (m) =>
      m.lm_head.output.at(0, -1).logSoftmax(-1).at(target!).neg())) as [ValueProxy, ...ValueProxy[]]).mean()
    s.train(meanNll(options.prompts), { optimizer: { kind: 'adam', lr: options.lr, betas: [0.9, 0.999], eps: 1e-8 }, steps: options.steps })
    s.trace((t) => meanNll(options.prompts)(t).save('final_loss'))
    if (options.keep !== undefined) s.keep(options.keep)
  })
  const resultBytes = Object.values(out.saves).reduce((n, t) => n + 4 * t.size, 0)
  return { losses: out.losses, finalLoss: out.saves.final_loss!.item(), resultBytes, seconds: (performance.now() - started) / 1000 }
}

/** A line chart of the loss per step (log scale), dependency-free SVG. */
export function lossCurveSvg (losses: number[], title: string): string {
  const [w, h, left, top, bottom] = [640, 360, 60, 40, 40]
  const logs = losses.map((l) => Math.log10(Math.max(l, 1e-12)))
  const lo = Math.floor(Math.min(...logs)); const hi = Math.ceil(Math.max(...logs))
  const x = (i: number): number => left + (i / Math.max(1, losses.length - 1)) * (w - left - 20)
  const y = (v: number): number => top + (hi - v) / Math.max(1e-9, hi - lo) * (h - top - bottom)
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="monospace" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="10" y="22" font-size="15" font-weight="bold">${title.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`,
  ]
  for (let e = lo; e <= hi; e++) {
    parts.push(`<line x1="${left}" x2="${w - 20}" y1="${y(e)}" y2="${y(e)}" stroke="#ddd"/>`, `<text x="${left - 6}" y="${y(e) + 4}" text-anchor="end">1e${e}</text>`)
  }
  parts.push(`<polyline fill="none" stroke="rgb(8,48,107)" stroke-width="2" points="${logs.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`)
  logs.forEach((v, i) => parts.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="rgb(8,48,107)"><title>step ${i + 1}: ${losses[i]!.toPrecision(4)}</title></circle>`))
  parts.push(`<text x="${(left + w) / 2}" y="${h - 10}" text-anchor="middle">optimizer step (1…${losses.length})</text>`, '</svg>')
  return parts.join('\n')
}

if (isMain(import.meta.url)) {
  const arg = (name: string): string | undefined => { const i = process.argv.indexOf(`--${name}`); return i < 0 ? undefined : process.argv[i + 1] }
  const provider = arg('provider')
  const key = arg('key')
  if (provider !== undefined && key === undefined) throw new Error('--provider needs --key <secret key hex>')
  const weft = provider === undefined ? await Weft.local() : await Weft.connect({ provider, key: key! })
  const model = await weft.model<GPT2>('demo-gpt2')
  const result = await trainSteering(model, { ...DEFAULT_TRAIN_STEERING, keep: 'rome-steer' })
  console.log(`${provider === undefined ? 'embedded' : provider}: ${result.losses.length} Adam steps in one request, ${result.seconds.toFixed(1)} s, ${result.resultBytes} bytes of results`)
  console.log(`loss ${result.losses[0]!.toFixed(3)} → ${result.losses.at(-1)!.toFixed(4)} (after training: ${result.finalLoss.toFixed(4)})`)
  // the vector stayed where it was trained; apply it by name to a generation
  const prompt = 'The capital of France is'
  const steered = await (await model.withAdapter('rome-steer')).generate(prompt, { maxNewTokens: 3 })
  const plain = await model.generate(prompt, { maxNewTokens: 3 })
  console.log(`${JSON.stringify(prompt)} → ${JSON.stringify(plain.text)} plain, ${JSON.stringify(steered.text)} with the kept adapter 'rome-steer'`)
  console.log('picture:', writeOut('train-steering-loss.svg', lossCurveSvg(result.losses, 'Steering vector at transformer.h.2 → " Rome" (Adam, lr 0.05): loss per step')))
  await weft.close()
}
