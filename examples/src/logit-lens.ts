/**
 * Logit lens (nostalgebraist 2020): decode every layer's residual stream through the final LayerNorm and the
 * unembedding, in one forward pass. Run: `npx tsx examples/src/logit-lens.ts ["prompt"]`.
 */
import { Weft, type GPT2, type Model, type ValueProxy } from '@weft/sdk'
import { heatmapSvg, writeOut } from './svg-heatmap.js'
import { isMain, showToken, table } from './format.js'

interface LensCell { id: number; token: string; prob: number }

export interface LensResult {
  prompt: string
  /** the input tokens, one per position */
  tokens: string[]
  /** row labels: `embed`, `h.0` … `h.N-1` (the last row is exactly the model's own prediction) */
  layers: string[]
  /** top[row][position]: the most likely next token when decoding that layer's output at that position */
  top: LensCell[][]
}

/** Runs the lens on `prompt`. Only the top-1 id and probability per (layer, position) leave the engine. */
export async function logitLens (model: Model<GPT2>, prompt: string): Promise<LensResult> {
  const ids = await model.tokenize(prompt)
  const out = await model.trace(ids, (m) => {
    const decode = (h: ValueProxy): { ids: ValueProxy; probs: ValueProxy } => {
      const probs = m.lm_head.call(m.transformer.ln_f.call(h)).softmax(-1).topk(1)
      return { ids: probs.indices, probs: probs.values }
    }
    const streams = [m.transformer.drop.output, ...[...m.transformer.h].map((block) => block.output)]
    return streams.map((stream) => decode(stream.at(0)))
  })
  const layers = ['embed', ...Array.from({ length: out.length - 1 }, (_, i) => `h.${i}`)]
  const top = out.map((row) => {
    const rowIds = row.ids.toFlat()
    const rowProbs = row.probs.toFlat()
    return rowIds.map((id, position) => ({ id, token: model.token(id), prob: rowProbs[position]! }))
  })
  return { prompt, tokens: ids.map((id) => model.token(id)), layers, top }
}

/** The lens as a text table: rows = layers, columns = positions, cells = top token (probability). */
export function lensTable (result: LensResult): string {
  const header = ['layer', ...result.tokens.map((t, i) => `${i}:${showToken(t)}`)]
  const rows = result.top.map((row, r) => [result.layers[r]!, ...row.map((cell) => `${showToken(cell.token)} ${cell.prob.toFixed(2)}`)])
  return table(header, rows)
}

/** Writes the lens as an SVG heatmap (colour = top-1 probability) and returns its path. */
export function lensSvg (result: LensResult, file = 'logit-lens.svg'): string {
  return writeOut(file, heatmapSvg({
    title: `Logit lens: ${result.prompt}`,
    rowLabels: result.layers,
    columnLabels: result.tokens.map(showToken),
    values: result.top.map((row) => row.map((cell) => cell.prob)),
    cellText: result.top.map((row) => row.map((cell) => showToken(cell.token).slice(0, 10))),
    min: 0, max: 1, legend: 'top-1 probability',
  }))
}

if (isMain(import.meta.url)) {
  const weft = await Weft.local()
  const model = await weft.model<GPT2>('demo-gpt2')
  const result = await logitLens(model, process.argv[2] ?? 'The capital of France is')
  console.log(lensTable(result))
  console.log(`\nheatmap: ${lensSvg(result)}`)
  await weft.close()
}
