/**
 * `weft cache` (write every module output, finer site and the logits of one input as safetensors) and
 * `weft inspect` (print a model's module tree with shapes). The dispatcher in sdk/cli/src/main.ts, package @weft/cli imports these.
 */
import { WeftError, cachePaths, progress, usageErrorFrom, type ModuleEntry, type Tensor } from '@weft/core'
import { loadModel } from '../load.js'
import { writeSafetensors } from '../safetensors/write.js'
import { parseArgs, UsageError, type ParsedArgs } from './args.js'

export interface CliCommand { summary: string; usage: string; run (argv: string[]): Promise<number> }

const MODEL_ARG = '  <model>          a checkpoint folder, an .onnx file, or org/name[@revision] from the Hugging Face cache'
const CACHE_USAGE = `usage: weft cache <model> (--text "..." | --ids 1,2,3) --out acts.safetensors [--cache-dir DIR]
${MODEL_ARG}
  --text TEXT      the input, tokenized with the model's tokenizer.json
  --ids 1,2,3      the input as token ids (instead of --text)
  --out FILE       the safetensors file to write (required)
  --cache-dir DIR  where built graphs and transformed weights are kept (default .weft/cache)
  -h, --help       this text`
const INSPECT_USAGE = `usage: weft inspect <model> [--json] [--cache-dir DIR]
${MODEL_ARG}
  --json           print the manifest as JSON instead of the module tree
  --cache-dir DIR  where built graphs and transformed weights are kept (default .weft/cache)
  -h, --help       this text`

async function guarded (name: string, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body()
  } catch (error) {
    const usageError = usageErrorFrom(error)
    if (usageError !== null) { console.error(`weft ${name}: ${usageError.message}\n${usage}`); return 2 }
    if (WeftError.is(error)) { console.error(`weft ${name}: ${error.code}: ${error.message}`); return 1 }
    throw error
  }
}

function parseIds (text: string): number[] {
  const ids = text.split(',').map(s => s.trim()).filter(s => s.length > 0).map(Number)
  if (ids.length === 0 || ids.some(id => !Number.isInteger(id) || id < 0)) throw new UsageError(`--ids must be a comma-separated list of non-negative integers, got '${text}'`)
  return ids
}

/** Drops the leading batch axis (size 1), as the transformers reference files do. */
function squeezeBatch (tensor: Tensor): Tensor {
  return tensor.shape[0] === 1 && tensor.shape.length > 1 ? { ...tensor, shape: tensor.shape.slice(1) } : tensor
}

function modelArg (args: ParsedArgs): string {
  if (args.positional.length !== 1) throw new UsageError(args.positional.length === 0 ? 'missing the model path' : `unexpected arguments: ${args.positional.slice(1).join(' ')}`)
  return args.positional[0]!
}

export const cacheCommand: CliCommand = {
  summary: 'write every module output, attention map and the logits of one input to a safetensors file',
  usage: CACHE_USAGE,
  run: argv => guarded('cache', CACHE_USAGE, async () => {
    const args = parseArgs(argv, ['text', 'ids', 'out', 'cache-dir'], [])
    const source = modelArg(args)
    const text = args.flags.get('text'); const ids = args.flags.get('ids'); const out = args.flags.get('out')
    if ((text === undefined) === (ids === undefined)) throw new UsageError('give exactly one of --text or --ids')
    if (typeof out !== 'string') throw new UsageError('missing --out <file.safetensors>')
    const cacheDir = args.flags.get('cache-dir')
    const model = await loadModel(source, typeof cacheDir === 'string' ? { cacheDir } : {})
    try {
      let tokens: number[]
      if (typeof text === 'string') {
        if (model.tokenizer === null) throw new UsageError(`${source} has no tokenizer.json; pass --ids instead of --text`)
        tokens = model.tokenizer.encode(text)
      } else tokens = parseIds(ids as string)
      const names = [...cachePaths(model.graph.manifest, { sites: true }), 'logits']
      const bar = progress(`weft cache: ${names.length} tensors (forward, then write)`, 2, { unit: 'items' })
      const result = await model.forward([tokens], names)
      bar.tick(1)
      const tensors: Record<string, Tensor> = {}
      for (const name of names) tensors[name] = squeezeBatch(result[name]!)
      const { manifest } = model.graph
      writeSafetensors(out, tensors, { model: manifest.name, revision: manifest.revision, token_ids: JSON.stringify(tokens) })
      bar.end()
      console.log(`wrote ${names.length} tensors for ${tokens.length} tokens to ${out}`)
      return 0
    } finally { await model.dispose() }
  }),
}

const shapeText = (shape: readonly (number | string)[] | undefined): string => shape === undefined ? '' : `[${shape.join(', ')}]`

/** Module entries as an indented tree: parent = longest recorded path prefix, children in forward order. */
export function moduleTree (modules: ModuleEntry[]): string[] {
  const byPath = new Map(modules.map(m => [m.path, m]))
  const parentOf = (path: string): string => {
    for (let cut = path.lastIndexOf('.'); cut > 0; cut = path.lastIndexOf('.', cut - 1)) if (byPath.has(path.slice(0, cut))) return path.slice(0, cut)
    return ''
  }
  const children = new Map<string, ModuleEntry[]>()
  for (const entry of modules) {
    const parent = parentOf(entry.path)
    if (!children.has(parent)) children.set(parent, [])
    children.get(parent)!.push(entry)
  }
  const first = new Map<string, number>()
  modules.forEach((m, i) => { for (let p = m.path; ; p = parentOf(p)) { if (!first.has(p)) first.set(p, i); if (p === '') break } })
  const lines: string[] = []
  const visit = (parent: string, depth: number): void => {
    const list = [...(children.get(parent) ?? [])].sort((a, b) => first.get(a.path)! - first.get(b.path)!)
    for (const entry of list) {
      const name = parent === '' ? entry.path : entry.path.slice(parent.length + 1)
      const detail = [entry.type, entry.output ? `→ ${shapeText(entry.output.shape)}` : '', entry.parameters > 0 ? `${entry.parameters.toLocaleString('en')} params` : '', entry.callable ? 'callable' : '']
      lines.push(`${'  '.repeat(depth)}${name}  ${detail.filter(Boolean).join('  ')}`)
      visit(entry.path, depth + 1)
    }
  }
  visit('', 0)
  return lines
}

export const inspectCommand: CliCommand = {
  summary: 'print a model\'s module tree with shapes (--json for the manifest)',
  usage: INSPECT_USAGE,
  run: argv => guarded('inspect', INSPECT_USAGE, async () => {
    const args = parseArgs(argv, ['cache-dir'], ['json'])
    const source = modelArg(args)
    const cacheDir = args.flags.get('cache-dir')
    const model = await loadModel(source, typeof cacheDir === 'string' ? { cacheDir } : {})
    try {
      const { manifest } = model.graph
      if (args.flags.has('json')) { console.log(JSON.stringify(manifest, null, 2)); return 0 }
      console.log(`${manifest.name}  ${manifest.family}  ${manifest.parameters.toLocaleString('en')} parameters  ${manifest.revision}`)
      for (const line of moduleTree(manifest.modules)) console.log(line)
      return 0
    } finally { await model.dispose() }
  }),
}
