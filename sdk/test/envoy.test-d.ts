// Type tests for the tracing API (checked by `npx tsc -p tsconfig.json`): typed trees, saves resolve to Tensors.
import { expectTypeOf } from 'vitest'
import type { Model, GPT2, Llama, GPTNeoX, Tensor, SiteProxy, ValueProxy, Envoy, TraceResult } from '../src/index.js'
import type { ValueType } from '@weft/core'

declare const gpt2: Model<GPT2>
declare const loose: Model
declare const llama: Model<Llama>
declare const neox: Model<GPTNeoX>

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

export async function namedInputs (): Promise<void> {
  await gpt2.trace('x', (m) => {
    expectTypeOf(m.transformer.h[1].inputs.position_ids).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.transformer.wpe.inputs.position_ids).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.embed.inputs.input_ids).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.layers[0].mlp.inputs.hidden_states).toEqualTypeOf<SiteProxy>()
    // @ts-expect-error: GPT-2 has no rotary position_embeddings
    void m.layers[0].attn.inputs.position_embeddings
    // @ts-expect-error: misspelled input names fail tsc
    void m.layers[0].attn.inputs.attn_mask
    // @ts-expect-error: an MLP receives only hidden_states
    void m.layers[0].mlp.inputs.attention_mask
  })
  await llama.trace('x', (m) => {
    const [cos, sin] = m.layers[0].attn.inputs.position_embeddings
    expectTypeOf(cos).toEqualTypeOf<SiteProxy>()
    expectTypeOf(sin).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.model.layers[1].inputs.position_embeddings[1]).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.model.rotary_emb.inputs.position_ids).toEqualTypeOf<SiteProxy>()
    // @ts-expect-error: the pair has two elements
    void m.layers[0].attn.inputs.position_embeddings[2]
    // @ts-expect-error: the pair is not a tensor; index it
    void m.layers[0].attn.inputs.position_embeddings.save()
  })
  await loose.trace('x', (m) => {
    // untyped trees: any name, and the tuple inputs index
    expectTypeOf(m.model.layers[0].self_attn.inputs.position_embeddings[1]).toMatchTypeOf<SiteProxy>()
    expectTypeOf(m.model.layers[0].self_attn.inputs.position_ids).toMatchTypeOf<SiteProxy>()
    return m.model.layers[0].self_attn.inputs.position_embeddings[0].save()
  })
  await neox.trace('x', (m) => {
    expectTypeOf(m.gpt_neox.layers[0].attention.inputs.position_embeddings[0]).toEqualTypeOf<SiteProxy>()
    expectTypeOf(m.gpt_neox.rotary_emb.inputs.position_ids).toEqualTypeOf<SiteProxy>()
  })
}
