// Type tests for the tracing API (checked by `npx tsc -p tsconfig.json`): typed trees, saves resolve to Tensors.
import { expectTypeOf } from 'vitest'
import type { Model, GPT2, Tensor, SiteProxy, ValueProxy, Envoy, TraceResult } from '../src/index.js'
import type { ValueType } from '@weft/core'

declare const gpt2: Model<GPT2>
declare const loose: Model

export async function typed (): Promise<void> {
  const out = await gpt2.trace('The capital of France is', (m) => {
    expectTypeOf(m.transformer.h[3].output).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.transformer.h.at(-1).attn.probs.output).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.lm_head.call(m.transformer.h[0].output)).toEqualTypeOf<ValueProxy>()
    expectTypeOf(m.layers[2].attn.scores.output).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.layers[2].attn.inputs.attention_mask).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.ln_final.output).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.transformer.h[1].resid_mid.output).toEqualTypeOf<SiteProxy>()
    m.layers[4].skip()
    // @ts-expect-error: GPT-2 blocks have no `mlpp`
    void m.transformer.h[3].mlpp
    return { h: m.transformer.h[3].output.save(), layers: [...m.transformer.h].map((b) => b.output.at(0, -1)), n: 3 }
  })
  expectTypeOf(out.h).toEqualTypeOf<Tensor>()
  expectTypeOf(out.layers).toEqualTypeOf<Tensor[]>()
  expectTypeOf(out.n).toEqualTypeOf<number>()

  const all = await gpt2.trace('x', (m) => { m.lm_head.output.save('logits') })
  expectTypeOf(all).toEqualTypeOf<Record<string, Tensor>>()

  const shapes = gpt2.scan('x', (m) => ({ logits: m.lm_head.output }))
  expectTypeOf(shapes.logits).toEqualTypeOf<ValueType>()

  const free = await loose.trace((t) => t.invoke('x', (m) => m.anything.goes.output.save()))
  expectTypeOf(free).toEqualTypeOf<Tensor>()
  expectTypeOf<TraceResult<void>>().toEqualTypeOf<Record<string, Tensor>>()
  expectTypeOf<Envoy['transformer']>().toMatchTypeOf<Envoy>()
}
