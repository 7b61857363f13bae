/**
 * Persistent edits (NNsight's `model.edit()`): an edit callback is recorded again for every invoke of every Program an
 * edited Model records, and its nodes go before the Program's own, so the trace's reads of an edited site see the edit.
 */
import { WeftError, checkGenerate, prependNodes, type Attrs, type Manifest, type Program, type SourceLocation } from '@weft/core'
import { GenerateRecorder } from '../generate/steps.js'
import type { GenerateHost } from '../generate/generate.js'
import { moduleTree, type TreeNode } from '../trace/module-tree.js'
import { rootEnvoy, type Envoy } from '../trace/envoy.js'
import { callerLocation, formatLocation } from '../trace/location.js'

/** An edit: reads and sets sites of one invoke (`m.transformer.h[1].mlp.output.set(0)`); it returns nothing. */
export type EditFn<T = Envoy> = (model: T) => void

export interface EditOptions {
  /** edit this model itself instead of returning an edited copy (undo with `model.clearEdits()`) */
  inplace?: boolean
}

/** One recorded edit of a Model: the callback, whether it was applied in place, and the line that made it. */
export interface Edit<T = Envoy> {
  readonly fn: EditFn<T>
  readonly inplace: boolean
  readonly location: SourceLocation | null
}

/** Records edit fragments: reads, writes and arithmetic only (no saves, gradients or stops). */
class EditRecorder extends GenerateRecorder {
  override add (op: string, attrs: Attrs, inputs: number[]): number {
    if (op === 'save') {
      throw this.error('an edit cannot save values: it returns nothing and only changes the model; read the value in a trace of the edited model instead',
        callerLocation(), { op })
    }
    if (op === 'grad' || op === 'stop') throw this.error(`an edit cannot use ${op === 'grad' ? 'gradients' : 'stop'}: it only changes the model's forward pass`, callerLocation(), { op })
    return super.add(op, attrs, inputs)
  }
}

/** Records `fn` for `invoke` (at every generation step in generate mode); an edit must return nothing. */
function replay<T> (recorder: EditRecorder, tree: TreeNode, edit: Edit<T>, invoke: number, everyStep: boolean): void {
  const model = rootEnvoy(recorder, tree, invoke) as T
  const returned: unknown = everyStep ? recorder.at('all', () => edit.fn(model)) : edit.fn(model)
  if (returned !== undefined) {
    throw recorder.error('an edit returns nothing (it may read sites and set them; values leave only through a trace of the edited model)' +
      (returned instanceof Promise ? ': an edit callback cannot be async' : ''), edit.location)
  }
}

/**
 * Checks an edit at `model.edit(…)` time against a prompt of unknown length (unknown modules, saves, a returned value
 * throw at the researcher's line) and returns it. Shape problems specific to a prompt surface when a trace runs it.
 */
export function makeEdit<T> (manifest: Manifest, fn: EditFn<T>, inplace: boolean): Edit<T> {
  if (typeof fn !== 'function') throw new WeftError('PROGRAM_INVALID', 'model.edit takes a callback: model.edit((m) => { m.transformer.h[1].mlp.output.set(0) })')
  const edit: Edit<T> = { fn, inplace, location: callerLocation() }
  const recorder = new EditRecorder(manifest, 1)
  recorder.addInvoke({ text: '' })
  replay(recorder, moduleTree(manifest), edit, 0, false)
  return edit
}

/**
 * `program` with `edits` applied first, in every trace: each edit recorded for every invoke in order (in generate mode
 * at step 'all', every step), its nodes placed before the trace's own by core's `prependNodes` (inputs, `from` nodes
 * and the training loss follow). Saves are untouched.
 */
export function applyEdits<T> (program: Program, manifest: Manifest, edits: readonly Edit<T>[]): Program {
  if (edits.length === 0) return program
  const tree = moduleTree(manifest)
  const merged = prependNodes(program, (trace) => {
    const generating = trace.mode === 'generate'
    const recorder = new EditRecorder(manifest, trace.generate?.maxNewTokens ?? 1, program.params)
    for (const invoke of trace.invokes) recorder.addInvoke(invoke)
    trace.invokes.forEach((_, k) => { for (const edit of edits) replay(recorder, tree, edit, k, generating) })
    return recorder.finish(program.model)
  })
  if (merged.mode === 'generate') {
    const issues = checkGenerate(merged, manifest)
    const first = issues[0]
    if (first !== undefined) {
      const location = first.node === null ? null : merged.locations?.[first.node] ?? null
      throw new WeftError('PROGRAM_INVALID', `${first.message} (with the model's edits)${formatLocation(location)}`, { issues })
    }
  }
  return merged
}

/** A generate host whose Programs get `edits` applied before they run. */
export function editedHost<T> (host: GenerateHost, edits: readonly Edit<T>[]): GenerateHost {
  if (edits.length === 0) return host
  return {
    manifest: host.manifest,
    tokenizer: host.tokenizer,
    ...(host.params === undefined ? {} : { params: host.params }),
    decode: (ids) => host.decode(ids),
    run: async (program, options) => host.run(applyEdits(program, host.manifest, edits), options),
  }
}
