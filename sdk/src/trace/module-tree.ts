/** The model's module tree, built once per manifest from its dotted paths (HF names, list items as digits). */
import { familyAliases, type Manifest, type ModuleEntry } from '@weft/core'

export interface TreeNode {
  name: string
  path: string
  entry: ModuleEntry | undefined
  children: Map<string, TreeNode>
  /** true when every child name is a number (a ModuleList): indexable, iterable, negative indices */
  isList: boolean
  /** standard names (`layers`, `embed`, `ln_final`, `lm_head`; `attn`, `mlp` under a layer) → the HF node */
  aliases: Map<string, TreeNode>
  /** the module's named inputs beyond the first (`<path>.inputs.<name>` sites, e.g. `attention_mask`) */
  inputs: Map<string, TreeNode>
}

const cache = new WeakMap<Manifest, TreeNode>()

export function moduleTree (manifest: Manifest): TreeNode {
  const cached = cache.get(manifest)
  if (cached !== undefined) return cached
  const root: TreeNode = { name: '', path: '', entry: undefined, children: new Map(), isList: false, aliases: new Map(), inputs: new Map() }
  for (const entry of manifest.modules) {
    let node = root
    for (const part of entry.path.split('.')) {
      let child = node.children.get(part)
      if (child === undefined) {
        child = { name: part, path: node.path === '' ? part : `${node.path}.${part}`, entry: undefined, children: new Map(), isList: false, aliases: new Map(), inputs: new Map() }
        node.children.set(part, child)
      }
      node = child
    }
    node.entry = entry
  }
  liftInputs(root)
  markLists(root)
  addAliases(root, manifest)
  cache.set(manifest, root)
  return root
}

function markLists (node: TreeNode): void {
  const names = [...node.children.keys()]
  node.isList = names.length > 0 && names.every((name) => /^\d+$/.test(name))
  if (node.isList) {
    const sorted = [...node.children.values()].sort((a, b) => Number(a.name) - Number(b.name))
    node.children = new Map(sorted.map((child) => [child.name, child]))
  }
  for (const child of node.children.values()) markLists(child)
}

/** Moves each `inputs` container (its children are `<module>.inputs.<name>` sites) out of the child list into `inputs`. */
function liftInputs (node: TreeNode): void {
  const inputs = node.children.get('inputs')
  if (inputs !== undefined && inputs.entry === undefined) {
    node.children.delete('inputs')
    node.inputs = inputs.children
  }
  for (const child of node.children.values()) liftInputs(child)
}

/** The family's standard names (core `familyAliases`) as extra lookups; iteration and `modules()` still list HF names only. */
function addAliases (root: TreeNode, manifest: Manifest): void {
  const aliases = familyAliases(manifest)
  if (aliases === null) return
  const find = (path: string): TreeNode | undefined => {
    let node: TreeNode | undefined = root
    for (const part of path.split('.')) node = node?.children.get(part)
    return node
  }
  for (const name of ['embed', 'layers', 'ln_final', 'lm_head'] as const) {
    const target = find(aliases[name])
    if (target !== undefined && !root.children.has(name)) root.aliases.set(name, target)
  }
  for (const layer of find(aliases.layers)?.children.values() ?? []) {
    for (const name of ['attn', 'mlp'] as const) {
      const target = layer.children.get(aliases[name])
      if (target !== undefined && !layer.children.has(name)) layer.aliases.set(name, target)
    }
  }
}

/** A short description of what exists under `node`, for error messages. */
export function describeChildren (node: TreeNode): string {
  const names = [...node.children.keys()]
  if (names.length === 0) return `'${node.path || '<root>'}' has no submodules`
  if (node.isList) return `'${node.path}' is a list of ${names.length} (indices 0…${names.length - 1} or -${names.length}…-1)`
  const shown = names.slice(0, 8).join(', ') + (names.length > 8 ? ', …' : '')
  return `${node.path === '' ? 'top-level modules' : `'${node.path}' has`}: ${shown}`
}
