/**
 * Steering during generation in one Program: two contrast prompts give h[layer](toward)[-1] − h[layer](away)[-1] at
 * the prompt pass (step 0); a third prompt generates with the vector added at every step, a fourth without.
 * Run: `npx tsx examples/src/generate-steering.ts`.
 */
import { Weft, type GPT2, type Model } from '@weft/sdk'
import { isMain } from './format.js'

interface GenerateSteeringOptions { prompt: string; toward: string; away: string; layer: number; coefficient: number; maxNewTokens: number }

const DEFAULT_GENERATE_STEERING: GenerateSteeringOptions = {
  prompt: 'In France, the seat of government is', toward: 'The capital of Japan', away: 'The capital of France', layer: 1, coefficient: 1, maxNewTokens: 8,
}

async function generateSteering (model: Model<GPT2>, o: GenerateSteeringOptions = DEFAULT_GENERATE_STEERING): Promise<{ steered: string; plain: string; norm: number }> {
  const out = await model.generate({ maxNewTokens: o.maxNewTokens }, (g) => {
    const a = g.invoke(o.toward, (m) => m.transformer.h[o.layer]!.output.at(0, -1))      // step 0: the prompt pass
    const b = g.invoke(o.away, (m) => m.transformer.h[o.layer]!.output.at(0, -1))
    const vector = a.sub(b).mul(o.coefficient)
    g.invoke(o.prompt, (_m, steps) => steps.all((m) => {                                  // every step, every position it computes
      const h = m.transformer.h[o.layer]!.output
      h.set(h.add(vector))
    }))
    g.invoke(o.prompt, () => undefined)
    return { norm: vector.norm() }
  })
  return { steered: out.text[2]!, plain: out.text[3]!, norm: out.norm.item() }
}

if (isMain(import.meta.url)) {
  const weft = await Weft.local()
  const model = await weft.model<GPT2>('demo-gpt2')
  const o = DEFAULT_GENERATE_STEERING
  const result = await generateSteering(model, o)
  console.log(`steering h.${o.layer} by h("${o.toward}") − h("${o.away}") (|v| = ${result.norm.toFixed(2)}) at every generation step`)
  console.log(`"${o.prompt}" →  plain:   "${result.plain}"`)
  console.log(`${' '.repeat(o.prompt.length + 6)}steered: "${result.steered}"`)
  await weft.close()
}
