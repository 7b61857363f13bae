/**
 * Attribution patching (Nanda 2023; Syed et al. 2023) on IOI: one backward pass of the corrupted run's logit difference
 * estimates every patch at once, (clean − corrupt) · ∂diff/∂activation, checked here against real patching per layer.
 * Run: `npx tsx examples/src/attribution.ts`.
 */
import { Weft, type GPT2, type Model, type ValueProxy } from '@weft/sdk'
import { DEFAULT_IOI, type IoiOptions } from './ioi-patching.js'
import { isMain, showToken, table } from './format.js'

interface AttributionResult {
  /** per layer: estimated and actual change of the logit difference when the clean block output is patched in (last position) */
  layers: { estimate: number; actual: number }[]
  /** [layer][head]: estimated change when the clean attention pattern of that head is patched in (all positions) */
  heads: number[][]
  cleanDiff: number
  corruptDiff: number
}

async function attributionPatching (model: Model<GPT2>, options: IoiOptions = DEFAULT_IOI): Promise<AttributionResult> {
  const [clean, corrupt] = [await model.tokenize(options.clean), await model.tokenize(options.corrupt)]
  const [answer] = await model.tokenize(options.answer)
  const [distractor] = await model.tokenize(options.distractor)
  const out = await model.trace((t) => {
    const diff = (m: GPT2): ValueProxy => {
      const last = m.lm_head.output.at(0, -1)
      return last.at(answer!).sub(last.at(distractor!))
    }
    const cleanBlocks: ValueProxy[] = []
    const cleanProbs: ValueProxy[] = []
    const cleanDiff = t.invoke(clean, (m) => {
      for (const block of m.transformer.h) { cleanBlocks.push(block.output); cleanProbs.push(block.attn.probs.output) }
      return diff(m)
    })
    const { corruptDiff, estimates, heads } = t.invoke(corrupt, (m) => {
      const d = diff(m)
      const blocks = [...m.transformer.h].map((block) => block.output)
      const probs = [...m.transformer.h].map((block) => block.attn.probs.output)
      const gradBlocks = d.backward(blocks)
      const gradProbs = d.backward(probs)
      return {
        corruptDiff: d,
        // first-order estimate of patching the last position only: Σ_features (clean − corrupt) · grad
        estimates: blocks.map((h, l) => cleanBlocks[l]!.sub(h).mul(gradBlocks[l]!).at(0, -1).sum()),
        heads: probs.map((p, l) => cleanProbs[l]!.sub(p).mul(gradProbs[l]!).sum([0, 2, 3])),
      }
    })
    const actual = cleanBlocks.map((value, l) => t.invoke(corrupt, (m) => {
      m.transformer.h[l]!.output.at(0, -1).set(value.at(0, -1))
      return diff(m)
    }))
    return { cleanDiff, corruptDiff, estimates, heads, actual }
  })
  const corruptDiff = out.corruptDiff.item()
  return {
    cleanDiff: out.cleanDiff.item(),
    corruptDiff,
    layers: out.estimates.map((e, l) => ({ estimate: e.item(), actual: out.actual[l]!.item() - corruptDiff })),
    heads: out.heads.map((row) => row.toFlat()),
  }
}

function attributionTables (result: AttributionResult, options: IoiOptions = DEFAULT_IOI): string {
  const heads = result.heads[0]?.length ?? 0
  return [
    `logit(${showToken(options.answer)}) − logit(${showToken(options.distractor)}): clean ${result.cleanDiff.toFixed(3)}, corrupt ${result.corruptDiff.toFixed(3)}`,
    '',
    'Patching the clean block output at the last position into the corrupted run (change of the logit difference):',
    table(['layer', 'attribution estimate', 'actual patch'], result.layers.map((r, l) => [`h.${l}`, r.estimate.toFixed(3), r.actual.toFixed(3)])),
    '',
    'Estimated change from patching one head\'s clean attention pattern (one backward pass for all heads):',
    table(['layer', ...Array.from({ length: heads }, (_, h) => `head ${h}`)], result.heads.map((row, l) => [`h.${l}`, ...row.map((v) => v.toFixed(2))])),
  ].join('\n')
}

if (isMain(import.meta.url)) {
  const weft = await Weft.local()
  const model = await weft.model<GPT2>('demo-gpt2')
  console.log(attributionTables(await attributionPatching(model)))
  await weft.close()
}
