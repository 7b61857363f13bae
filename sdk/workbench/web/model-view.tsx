/** Model: the module tree from the manifest with every module's input and output shapes, searchable. */
import { useEffect, useMemo, useState } from 'preact/hooks'
import { api, messageOf } from './api.ts'
import { short } from './format.ts'
import { Problem, type ModelInfo } from './ui.tsx'

interface Signature { shape: (number | string)[]; dtype: string }
interface ModuleEntry { path: string; kind: 'module' | 'site'; type: string; output?: Signature; input?: Signature; callable: boolean; parameters: number }
interface Manifest { name: string; revision: string; family: string; parameters: number; vocabSize: number; maxPositions: number | null; modules: ModuleEntry[] }

const shape = (s: Signature | undefined): string => s === undefined ? '' : `[${s.shape.join(', ')}] ${s.dtype}`

/** Modules whose path, type or standard name contains the query, with their ancestors so the tree stays readable. */
function filterModules (modules: ModuleEntry[], query: string): ModuleEntry[] {
  const q = query.trim().toLowerCase()
  if (q === '') return modules
  const hits = new Set(modules.filter(m => m.path.toLowerCase().includes(q) || m.type.toLowerCase().includes(q)).map(m => m.path))
  const keep = new Set<string>()
  for (const path of hits) {
    const parts = path.split('.')
    for (let i = 1; i <= parts.length; i++) keep.add(parts.slice(0, i).join('.'))
  }
  return modules.filter(m => keep.has(m.path))
}

export function ModelView ({ name, models }: { name: string; models: ModelInfo[] | null }) {
  const [manifest, setManifest] = useState<Manifest | null>(null)
  const [layers, setLayers] = useState<number | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [query, setQuery] = useState('')
  useEffect(() => {
    if (name === '') return
    setManifest(null); setError(null)
    api<{ manifest: Manifest; layers: number }>(`/api/models/${encodeURIComponent(name)}/manifest`)
      .then(r => { setManifest(r.manifest); setLayers(r.layers) }, e => setError(messageOf(e)))
  }, [name])
  const shown = useMemo(() => manifest === null ? [] : filterModules(manifest.modules, query), [manifest, query])
  return (
    <section aria-labelledby="model-title">
      <div class="section-head">
        <h2 id="model-title">Model</h2>
        <label>Model{' '}
          <select value={name} onChange={e => { location.hash = `#/model/${encodeURIComponent((e.target as HTMLSelectElement).value)}` }}>
            {(models ?? []).map(m => <option key={m.name} value={m.name}>{m.name}</option>)}
          </select>
        </label>
      </div>
      {name === '' && <p>No model is available.</p>}
      {error !== null && <Problem>The manifest of '{name}' could not be read: {error}</Problem>}
      {manifest === null && error === null && name !== '' && <p role="status">Reading the manifest…</p>}
      {manifest !== null && (
        <>
          <dl class="facts">
            <dt>family</dt><dd>{manifest.family}</dd>
            <dt>revision</dt><dd><code title={manifest.revision}>{short(manifest.revision, 22)}</code></dd>
            <dt>parameters</dt><dd>{manifest.parameters.toLocaleString('en')}</dd>
            <dt>layers</dt><dd>{layers}</dd>
            <dt>vocabulary</dt><dd>{manifest.vocabSize.toLocaleString('en')}</dd>
            <dt>context</dt><dd>{manifest.maxPositions ?? '–'}</dd>
          </dl>
          <label class="search">Search modules{' '}
            <input type="search" value={query} placeholder="attn, mlp, h.3, LayerNorm…" onInput={e => setQuery((e.target as HTMLInputElement).value)} />
          </label>
          <p role="status" class="count">{shown.length} of {manifest.modules.length} modules and sites</p>
          <div class="table-scroll" tabIndex={0} role="region" aria-label="module tree">
            <table class="modules" data-testid="modules">
              <caption>Module tree of {manifest.name}</caption>
              <thead><tr><th scope="col">module</th><th scope="col">type</th><th scope="col">input</th><th scope="col">output</th><th scope="col">parameters</th></tr></thead>
              <tbody>
                {shown.map(m => {
                  const depth = m.path.split('.').length - 1
                  return (
                    <tr key={m.path} class={m.kind}>
                      <th scope="row" style={{ paddingLeft: `${0.4 + depth * 0.9}rem` }}><code>{m.path.split('.').at(-1)}</code>{depth > 0 && <span class="path"> {m.path}</span>}</th>
                      <td>{m.type}{m.kind === 'site' ? ' (site)' : ''}</td>
                      <td><code>{shape(m.input)}</code></td>
                      <td><code>{shape(m.output)}</code></td>
                      <td>{m.parameters > 0 ? m.parameters.toLocaleString('en') : ''}</td>
                    </tr>
                  )
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  )
}
