/**
 * Indirect-object identification (Wang et al. 2022) with activation patching: run a clean prompt and a
 * corrupted one (both names swapped, so the answer flips), then copy clean activations into the corrupted run,
 * per layer (block output at the last position) and per head (head h's columns of `attn.c_proj`'s input).
 * Every run is one invoke of a single Program: one batched forward. Run: `npx tsx examples/src/ioi-patching.ts`.
 */
import { Weft, type GPT2, type Model, type ValueProxy } from '@weft/sdk'
import { heatmapSvg, writeOut } from './svg-heatmap.js'
import { isMain, showToken, table } from './format.js'

export interface IoiOptions {
  /** clean prompt; the answer is the indirect object */
  clean: string
  /** same length with the two names swapped throughout, so the answer flips */
  corrupt: string
  /** the clean answer (indirect object) and the corrupted answer, as single tokens with their leading space */
  answer: string
  distractor: string
}

export interface IoiResult {
  options: IoiOptions
  /** logit(answer) − logit(distractor) at the last position */
  cleanDiff: number
  corruptDiff: number
  /** per layer: the logit difference after patching that block's clean output at the last position */
  layerDiffs: number[]
  /** per layer: (patched − corrupt) / (clean − corrupt); 1 = fully restored */
  layerRecovery: number[]
  /** [layer][head]: recovery after patching one head's output (its slice of c_proj's input) at the last position */
  headRecovery: number[][]
}

export const DEFAULT_IOI: IoiOptions = {
  clean: 'When Mary and John went to the store, John gave a drink to',
  corrupt: 'When John and Mary went to the store, Mary gave a drink to',
  answer: ' Mary',
  distractor: ' John',
}

async function singleToken (model: Model<GPT2>, text: string): Promise<number> {
  const ids = await model.tokenize(text)
  if (ids.length !== 1) throw new Error(`'${text}' is ${ids.length} tokens; IOI needs single-token names`)
  return ids[0]!
}

/** Runs clean, corrupt, 1 patch per layer and 1 patch per (layer, head) as invokes of one Program. */
export async function ioiPatching (model: Model<GPT2>, options: IoiOptions = DEFAULT_IOI): Promise<IoiResult> {
  const [clean, corrupt] = [await model.tokenize(options.clean), await model.tokenize(options.corrupt)]
  if (clean.length !== corrupt.length) throw new Error('IOI patching needs clean and corrupt prompts of equal token length')
  const answer = await singleToken(model, options.answer)
  const distractor = await singleToken(model, options.distractor)
  const heads = Number(model.manifest.config.n_head)
  const headDim = Number(model.manifest.config.n_embd) / heads
  const layers = model.manifest.modules.filter((m) => /^transformer\.h\.\d+$/.test(m.path)).length

  const out = await model.trace((t) => {
    const diff = (m: GPT2): ValueProxy => {
      const last = m.lm_head.output.at(0, -1)
      return last.at(answer).sub(last.at(distractor))
    }
    const cleanBlocks: ValueProxy[] = []
    const cleanHeads: ValueProxy[] = []
    const cleanDiff = t.invoke(clean, (m) => {
      for (const block of m.transformer.h) {
        cleanBlocks.push(block.output.at(0, -1))
        cleanHeads.push(block.attn.c_proj.input.at(0, -1))
      }
      return diff(m)
    })
    const corruptDiff = t.invoke(corrupt, diff)
    const layerDiffs = cleanBlocks.map((value, layer) => t.invoke(corrupt, (m) => {
      m.transformer.h[layer]!.output.at(0, -1).set(value)
      return diff(m)
    }))
    const headDiffs = cleanHeads.map((value, layer) => Array.from({ length: heads }, (_, head) => t.invoke(corrupt, (m) => {
      const columns: [number, number] = [head * headDim, (head + 1) * headDim]
      m.transformer.h[layer]!.attn.c_proj.input.at(0, -1, columns).set(value.at(columns))
      return diff(m)
    })))
    return { cleanDiff, corruptDiff, layerDiffs, headDiffs }
  })
  const cleanDiff = out.cleanDiff.item()
  const corruptDiff = out.corruptDiff.item()
  const recovery = (value: number): number => (value - corruptDiff) / (cleanDiff - corruptDiff)
  const layerDiffs = out.layerDiffs.map((d) => d.item())
  if (layerDiffs.length !== layers) throw new Error('internal: one patch per layer expected')
  return {
    options, cleanDiff, corruptDiff, layerDiffs,
    layerRecovery: layerDiffs.map(recovery),
    headRecovery: out.headDiffs.map((row) => row.map((d) => recovery(d.item()))),
  }
}

export function ioiTables (result: IoiResult): string {
  const { options } = result
  const head = [
    `clean:   "${options.clean}" → logit(${showToken(options.answer)}) − logit(${showToken(options.distractor)}) = ${result.cleanDiff.toFixed(3)}`,
    `corrupt: "${options.corrupt}" → ${result.corruptDiff.toFixed(3)}`,
    '',
    'Patching the clean block output at the last position into the corrupted run:',
  ]
  const layerRows = result.layerDiffs.map((d, l) => [`h.${l}`, d.toFixed(3), result.layerRecovery[l]!.toFixed(3)])
  const heads = result.headRecovery[0]?.length ?? 0
  const headRows = result.headRecovery.map((row, l) => [`h.${l}`, ...row.map((v) => v.toFixed(2))])
  return [...head, table(['layer', 'logit diff', 'recovery'], layerRows), '',
    'Per head (recovery after patching one head\'s output at the last position):',
    table(['layer', ...Array.from({ length: heads }, (_, h) => `head ${h}`)], headRows)].join('\n')
}

export function ioiSvg (result: IoiResult, file = 'ioi-heads.svg'): string {
  const heads = result.headRecovery[0]?.length ?? 0
  return writeOut(file, heatmapSvg({
    title: 'IOI: recovery of the clean logit difference by patching one head',
    rowLabels: result.headRecovery.map((_, l) => `h.${l}`),
    columnLabels: Array.from({ length: heads }, (_, h) => `head ${h}`),
    values: result.headRecovery,
    cellText: result.headRecovery.map((row) => row.map((v) => v.toFixed(2))),
    legend: 'recovery',
  }))
}

if (isMain(import.meta.url)) {
  const weft = await Weft.local()
  const model = await weft.model<GPT2>('demo-gpt2')
  const result = await ioiPatching(model)
  console.log(ioiTables(result))
  console.log(`\nheatmap: ${ioiSvg(result)}`)
  await weft.close()
}
