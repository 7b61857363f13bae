/** Op vectors: the op table's hand-written examples, as tensors in the JSON form. */
import { OPS, OP_NAMES, tensor, toJsonForm } from '@weft/core'
import type { VectorFile } from './types.js'

export function opVectors (): VectorFile[] {
  const files: VectorFile[] = []
  for (const name of OP_NAMES) {
    for (const example of OPS[name].examples) {
      const inputs = example.inputs.map((value, i) => toJsonForm(tensor(value, undefined, example.inputDtypes?.[i])))
      files.push({
        path: `ops/${example.name}.json`,
        body: {
          title: `op ${name}: ${example.name}`,
          input: { op: name, attrs: toJsonForm(example.attrs), inputs },
          output: { dtype: example.outputDtype ?? 'float32', value: example.output, tolerance: 1e-6 },
        },
      })
    }
  }
  return files
}
