/**
 * Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT"): corrupt the subject's
 * token embeddings with seeded Gaussian noise (3× the embedding std), then restore each layer's clean hidden
 * state at each position and measure how much of p(answer) comes back. Clean, corrupted and all
 * (layer, position) restorations are invokes of one Program: one batched forward.
 * Run: `npx tsx examples/src/causal-tracing.ts`.
 */
import { Weft, Tensor, type GPT2, type Model, type ValueProxy } from '@weft/sdk'
import { heatmapSvg, writeOut } from './svg-heatmap.js'
import { gaussian, isMain, showToken, table } from './format.js'

export interface TracingOptions {
  prompt: string
  /** the subject whose embeddings get corrupted, e.g. ' France' (must occur in the prompt's tokens) */
  subject: string
  /** the expected answer token, e.g. ' Paris' */
  answer: string
  /** noise scale in units of the embedding std (Meng et al.: 3) */
  noiseScale?: number
  seed?: number
}

export interface TracingResult {
  tokens: string[]
  subjectPositions: number[]
  answer: string
  /** the clean run's most likely next token */
  cleanTop: string
  cleanProb: number
  corruptProb: number
  /** the std of the clean token embeddings, and the multiple of it the noise was scaled to */
  embeddingStd: number
  noiseScale: number
  /** probs[layer][position]: p(answer) after restoring that layer's clean output at that position */
  probs: number[][]
}

const DEFAULT_TRACING: TracingOptions = { prompt: 'The capital of France is', subject: ' France', answer: ' Paris' }

function findSubsequence (haystack: number[], needle: number[]): number[] {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((id, j) => haystack[i + j] === id)) return needle.map((_, j) => i + j)
  }
  throw new Error(`the subject tokens [${needle.join(', ')}] do not occur in the prompt tokens [${haystack.join(', ')}]`)
}

export async function causalTracing (model: Model<GPT2>, options: TracingOptions = DEFAULT_TRACING): Promise<TracingResult> {
  const ids = await model.tokenize(options.prompt)
  const positions = findSubsequence(ids, await model.tokenize(options.subject))
  const [answerId] = await model.tokenize(options.answer)
  const d = Number(model.manifest.config.n_embd)
  const span: [number, number] = [positions[0]!, positions.at(-1)! + 1]
  const noise = new Tensor('float32', [positions.length, d], gaussian(options.seed ?? 1, positions.length * d))
  const scale = options.noiseScale ?? 3

  const out = await model.trace((t) => {
    const answerProb = (m: GPT2): ValueProxy => m.lm_head.output.at(0, -1).softmax(-1).at(answerId!)
    /** corrupts the subject embeddings of this invoke: e[subject] += scale·std·noise */
    let noiseValue: ValueProxy | null = null
    const corrupt = (m: GPT2): void => {
      const region = m.transformer.wte.output.at(0, span)
      region.set(region.add(noiseValue!))
    }
    const clean = t.invoke(ids, (m) => {
      const embeddings = m.transformer.wte.output
      const std = embeddings.sub(embeddings.mean()).pow(2).mean().sqrt()
      noiseValue = std.mul(scale).mul(noise)
      const hidden = [...m.transformer.h].map((block) => block.output)
      return { prob: answerProb(m), top: m.lm_head.output.at(0, -1).argmax(), std, hidden }
    })
    const corrupted = t.invoke(ids, (m) => { corrupt(m); return answerProb(m) })
    const restored = clean.hidden.map((hidden, layer) => ids.map((_, position) => t.invoke(ids, (m) => {
      corrupt(m)
      m.transformer.h[layer]!.output.at(0, position).set(hidden.at(0, position))
      return answerProb(m)
    })))
    return { cleanProb: clean.prob, cleanTop: clean.top, std: clean.std, corrupted, restored }
  })
  return {
    tokens: ids.map((id) => model.token(id)),
    subjectPositions: positions,
    answer: options.answer,
    cleanTop: model.token(out.cleanTop.item()),
    cleanProb: out.cleanProb.item(),
    corruptProb: out.corrupted.item(),
    embeddingStd: out.std.item(),
    noiseScale: scale,
    probs: out.restored.map((row) => row.map((p) => p.item())),
  }
}

function tracingTable (result: TracingResult): string {
  const header = ['layer', ...result.tokens.map((t, i) => `${i}:${showToken(t)}${result.subjectPositions.includes(i) ? '*' : ''}`)]
  const rows = result.probs.map((row, l) => [`h.${l}`, ...row.map((p) => p.toFixed(3))])
  return [
    `clean top token: ${showToken(result.cleanTop)}  p(${showToken(result.answer)}) clean = ${result.cleanProb.toFixed(3)}, corrupted = ${result.corruptProb.toFixed(3)} (noise ${result.noiseScale}× std ${result.embeddingStd.toFixed(4)}; * = corrupted subject)`,
    '',
    `p(${showToken(result.answer)}) after restoring one clean hidden state:`,
    table(header, rows),
  ].join('\n')
}

export function tracingSvg (result: TracingResult, file = 'causal-tracing.svg'): string {
  return writeOut(file, heatmapSvg({
    title: `Causal tracing: p(${result.answer.trim()}) with one clean state restored`,
    rowLabels: result.probs.map((_, l) => `h.${l}`),
    columnLabels: result.tokens.map((t, i) => showToken(t) + (result.subjectPositions.includes(i) ? '*' : '')),
    values: result.probs,
    cellText: result.probs.map((row) => row.map((p) => p.toFixed(2))),
    min: result.corruptProb, max: result.cleanProb, legend: `p(${result.answer.trim()})`,
  }))
}

if (isMain(import.meta.url)) {
  const weft = await Weft.local()
  const model = await weft.model<GPT2>('demo-gpt2')
  const result = await causalTracing(model)
  console.log(tracingTable(result))
  console.log(`\nheatmap: ${tracingSvg(result)}`)
  await weft.close()
}
