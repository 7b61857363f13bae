/**
 * Module scopes of an exported ONNX graph: each node's chain of enclosing modules, as Hugging Face paths.
 * Dynamo exports carry `pkg.torch.onnx.name_scopes` / `class_hierarchy` metadata; older TorchScript exports
 * encode the chain in node names (`/transformer/h.0/attn/c_attn/Gemm`).
 */
import type { onnx } from '../graph/onnx.js'

const NAME_SCOPES = 'pkg.torch.onnx.name_scopes'
const CLASS_HIERARCHY = 'pkg.torch.onnx.class_hierarchy'

export interface ScopeAnalysis {
  exporter: 'dynamo' | 'node-names' | 'none'
  /** scope (in the export's own naming) of the Hugging Face root model, stripped from every path ('' = none) */
  root: string
  /** fully qualified class of the root model (`transformers.models.gpt2.modeling_gpt2.GPT2LMHeadModel`), if known */
  rootClass: string | null
  /** per node (graph order): enclosing module paths, outermost first ([] = root level) */
  chains: string[][]
  /** module path → short class name (`GPT2Attention`; 'Module' when the export does not say) */
  types: Map<string, string>
}

/** Parses a Python list-of-strings repr: `['', 'model', "it's"]`. */
function parsePythonList (text: string): string[] {
  const out: string[] = []
  const pattern = /'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"/g
  for (const match of text.matchAll(pattern)) out.push((match[1] ?? match[2]).replace(/\\(.)/g, '$1'))
  return out
}

function metadata (node: onnx.NodeProto, key: string): string | undefined {
  return node.metadataProps.find((entry) => entry.key === key)?.value
}

function shortClass (qualified: string): string {
  return qualified.slice(qualified.lastIndexOf('.') + 1)
}

/** Strips the HF root scope: `model.transformer.h.0` → `transformer.h.0`; the root itself and wrappers → null. */
function relative (scope: string, root: string): string | null {
  if (root === '') return scope === '' ? null : scope
  if (scope.startsWith(root + '.')) return scope.slice(root.length + 1)
  return null
}

function analyzeDynamo (nodes: onnx.NodeProto[], stripPrefix?: string): ScopeAnalysis {
  const parsed = nodes.map((node) => {
    const scopes = parsePythonList(metadata(node, NAME_SCOPES) ?? '[]')
    const classes = parsePythonList(metadata(node, CLASS_HIERARCHY) ?? '[]')
    // the last entry names the op itself; scopes[0] === '' marks the exported top module (else: no module stack)
    return scopes.length >= 2 && scopes[0] === '' ? { scopes: scopes.slice(0, -1), classes: classes.slice(0, scopes.length - 1) } : null
  })
  const rootVotes = new Map<string, { count: number; cls: string }>()
  for (const entry of parsed) {
    const index = entry?.classes.findIndex((cls) => cls.startsWith('transformers.')) ?? -1
    if (entry === null || index < 0) continue
    const vote = rootVotes.get(entry.scopes[index]) ?? { count: 0, cls: entry.classes[index] }
    vote.count++
    rootVotes.set(entry.scopes[index], vote)
  }
  const best = [...rootVotes].sort((a, b) => b[1].count - a[1].count)[0]
  const root = stripPrefix ?? best?.[0] ?? ''
  const types = new Map<string, string>()
  const chains = parsed.map((entry) => {
    const chain: string[] = []
    entry?.scopes.forEach((scope, i) => {
      const path = relative(scope, root)
      if (path === null) return
      chain.push(path)
      if (!types.has(path)) types.set(path, entry.classes[i] === undefined ? 'Module' : shortClass(entry.classes[i]))
    })
    return chain
  })
  inferUnscoped(nodes, chains, parsed.map((entry, index) => entry === null && metadata(nodes[index], NAME_SCOPES) === undefined))
  return { exporter: 'dynamo', root, rootClass: best?.[1].cls ?? null, chains, types }
}

/**
 * Nodes an optimizer pass created without scope metadata (e.g. a fused Split) take the longest chain prefix
 * shared by their scoped neighbours (producers of their inputs, consumers of their outputs).
 */
function inferUnscoped (nodes: onnx.NodeProto[], chains: string[][], unscoped: boolean[]): void {
  if (!unscoped.includes(true)) return
  const producer = new Map<string, number>()
  const consumers = new Map<string, number[]>()
  nodes.forEach((node, index) => {
    node.output.forEach((value) => producer.set(value, index))
    node.input.forEach((value) => consumers.set(value, [...(consumers.get(value) ?? []), index]))
  })
  const pending = new Set(unscoped.flatMap((flag, index) => (flag ? [index] : [])))
  for (let pass = 0; pass < 4 && pending.size > 0; pass++) {
    for (const index of [...pending]) {
      const neighbours = [
        ...nodes[index].input.map((value) => producer.get(value)),
        ...nodes[index].output.flatMap((value) => consumers.get(value) ?? []),
      ].filter((other): other is number => other !== undefined && !pending.has(other))
      const scoped = neighbours.map((other) => chains[other]).filter((chain) => chain.length > 0)
      if (scoped.length === 0) continue
      let prefix = scoped[0]
      for (const chain of scoped) {
        let n = 0
        while (n < prefix.length && n < chain.length && prefix[n] === chain[n]) n++
        prefix = prefix.slice(0, n)
      }
      chains[index] = [...prefix]
      pending.delete(index)
    }
  }
}

/** `/transformer/h.0/attn/c_attn/Gemm` → ['transformer', 'transformer.h.0', 'transformer.h.0.attn', 'transformer.h.0.attn.c_attn']. */
function chainFromName (name: string, stripPrefix: string): string[] {
  if (!name.startsWith('/')) return []
  const segments = name.split('/').slice(1, -1).filter((segment) => segment !== '')
  const chain: string[] = []
  for (let i = 0; i < segments.length; i++) {
    const path = relative(segments.slice(0, i + 1).join('.'), stripPrefix)
    if (path !== null) chain.push(path)
  }
  return chain
}

/** Derives every node's module chain; `stripPrefix` overrides the detected root scope (e.g. a wrapper's `model`). */
export function analyzeScopes (graph: onnx.GraphProto, stripPrefix?: string): ScopeAnalysis {
  const nodes = graph.node
  if (nodes.some((node) => metadata(node, NAME_SCOPES) !== undefined)) return analyzeDynamo(nodes, stripPrefix)
  const chains = nodes.map((node) => chainFromName(node.name, stripPrefix ?? ''))
  const types = new Map<string, string>()
  for (const chain of chains) for (const path of chain) types.set(path, 'Module')
  return { exporter: types.size > 0 ? 'node-names' : 'none', root: stripPrefix ?? '', rootClass: null, chains, types }
}
