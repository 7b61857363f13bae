/** `npm start`: loads demo-gpt2 on the embedded default and runs the logit-lens and IOI-patching experiments. */
import { Weft, type GPT2 } from '@weft/sdk'
import { logitLens, lensSvg, lensTable } from './logit-lens.js'
import { ioiPatching, ioiSvg, ioiTables } from './ioi-patching.js'

const started = performance.now()
const weft = await Weft.local()
const model = await weft.model<GPT2>('demo-gpt2')
console.log(`Weft — embedded mode, model ${model.name} (${model.manifest.family}, ${model.manifest.revision.slice(0, 19)}…)\n`)

console.log('== Logit lens: the top next token when each layer is decoded through ln_f + lm_head ==\n')
const lens = await logitLens(model, 'The capital of France is')
console.log(lensTable(lens))
const lensPicture = lensSvg(lens)

console.log('\n== IOI activation patching: how much of the clean answer each layer / head restores ==\n')
const ioi = await ioiPatching(model)
console.log(ioiTables(ioi))
const ioiPicture = ioiSvg(ioi)

console.log(`\npictures: ${lensPicture}\n          ${ioiPicture}`)
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
await weft.close()
