// Type tests for model.generate (checked by `npx tsc -p tsconfig.json`): returned proxies spread into the result as Tensors.
import { expectTypeOf } from 'vitest'
import type { Model, GPT2, Tensor, Steps } from '../src/index.js'

declare const gpt2: Model<GPT2>

export async function typed (): Promise<void> {
  const out = await gpt2.generate('The capital of France is', { maxNewTokens: 4 }, (m, steps) => {
    expectTypeOf(steps).toEqualTypeOf<Steps<GPT2>>()
    steps.all((m) => { m.transformer.h[1].output.set(0) })
    return { h: steps.step(2, (m) => m.transformer.h[3].output), lens: steps.iter((m) => m.lm_head.output.at(0, -1)), n: 3, prompt: m.lm_head.output }
  })
  expectTypeOf(out.tokens).toEqualTypeOf<number[]>()
  expectTypeOf(out.text).toEqualTypeOf<string>()
  expectTypeOf(out.h).toEqualTypeOf<Tensor>()
  expectTypeOf(out.lens).toEqualTypeOf<Tensor[]>()
  expectTypeOf(out.n).toEqualTypeOf<number>()
  expectTypeOf(out.prompt).toEqualTypeOf<Tensor>()
  expectTypeOf(out.saves).toEqualTypeOf<Record<string, Tensor>>()

  const plain = await gpt2.generate('x', { maxNewTokens: 2 })
  expectTypeOf(plain.tokens).toEqualTypeOf<number[]>()
  // @ts-expect-error: nothing was returned, so there is no `h`
  void plain.h

  const batch = await gpt2.generate({ maxNewTokens: 2, strategy: { temperature: 0.7, seed: 1 } }, (g) => {
    const a = g.invoke('a', (m) => m)
    g.invoke('b', (m, steps) => steps.step(1, (m) => m.transformer.h[0].output.set(a.transformer.h[0].output)))
    return { logits: g.step(1, () => a.lm_head.output) }
  })
  expectTypeOf(batch.tokens).toEqualTypeOf<number[][]>()
  expectTypeOf(batch.text).toEqualTypeOf<string[]>()
  expectTypeOf(batch.logits).toEqualTypeOf<Tensor>()
}
