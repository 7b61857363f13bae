/**
 * Experiments: one editable form per experiment, its Program shown as the TypeScript that records it (updated as
 * you type), a run with live progress over server-sent events, the result drawn as heatmaps, and the downloads.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { postJson, messageOf, ApiError } from './api.ts'
import { Heatmap } from './heatmap.tsx'
import { bytes, token } from './format.ts'
import { Problem, type Info, type ModelInfo } from './ui.tsx'
import {
  DEFAULTS, EXPERIMENTS, isKind, programSource, validateParams,
  type AnyParams, type AttentionView, type ExperimentKind, type FieldProblem, type LensView, type PatchingView, type ProgressEvent, type RunSummary, type SteeringView,
} from '../src/shared/experiments.ts'

type FieldType = 'text' | 'textarea' | 'int' | 'number' | 'select' | 'checkbox'
interface Field { name: string; label: string; type: FieldType; options?: string[]; help?: string }

const FIELDS: Record<ExperimentKind, Field[]> = {
  'logit-lens': [
    { name: 'prompt', label: 'Prompt', type: 'textarea' },
    { name: 'topK', label: 'Top tokens per cell', type: 'int', help: 'how many tokens each cell keeps (the first is drawn)' },
  ],
  patching: [
    { name: 'clean', label: 'Clean prompt', type: 'textarea' },
    { name: 'corrupt', label: 'Corrupted prompt', type: 'textarea', help: 'the same number of tokens as the clean one' },
    { name: 'answer', label: 'Answer token', type: 'text', help: 'one token, with its leading space' },
    { name: 'distractor', label: 'Distractor token', type: 'text' },
    { name: 'positions', label: 'Positions to patch', type: 'select', options: ['all', 'last'] },
    { name: 'heads', label: 'Also patch each head (last position)', type: 'checkbox' },
  ],
  attention: [
    { name: 'prompt', label: 'Prompt', type: 'textarea' },
    { name: 'layer', label: 'Layer', type: 'int' },
  ],
  steering: [
    { name: 'prompt', label: 'Prompt', type: 'textarea' },
    { name: 'toward', label: 'Steer toward', type: 'text' },
    { name: 'away', label: 'Steer away from', type: 'text' },
    { name: 'layer', label: 'Layer', type: 'int' },
    { name: 'coefficient', label: 'Coefficient', type: 'number' },
    { name: 'maxNewTokens', label: 'New tokens', type: 'int' },
  ],
}

type FormValues = Record<string, string | boolean>

const toForm = (params: AnyParams): FormValues =>
  Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === 'boolean' ? v : String(v)]))

/** The form's text as typed values: numbers stay NaN when they are not numbers, so validation can name them. */
function fromForm (kind: ExperimentKind, form: FormValues): AnyParams {
  const out: Record<string, unknown> = {}
  for (const field of FIELDS[kind]) {
    const raw = form[field.name]
    if (field.type === 'checkbox') out[field.name] = raw === true
    else if (field.type === 'int' || field.type === 'number') out[field.name] = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN
    else out[field.name] = raw
  }
  return out as unknown as AnyParams
}

function useStored (kind: ExperimentKind): [FormValues, (next: FormValues) => void] {
  const [forms, setForms] = useState<Record<string, FormValues>>({})
  const form = forms[kind] ?? toForm(DEFAULTS[kind])
  return [form, (next) => setForms({ ...forms, [kind]: next })]
}

export function ExperimentsView ({ kind: rawKind, info, models }: { kind: string; info: Info; models: ModelInfo[] | null }) {
  const kind: ExperimentKind | null = rawKind === '' ? 'logit-lens' : isKind(rawKind) ? rawKind : null
  const [model, setModel] = useState('')
  useEffect(() => { if (model === '' && models !== null && models.length > 0) setModel(models[0]!.name) }, [models])
  if (kind === null) return <Problem>There is no experiment '{rawKind}': choose one of {EXPERIMENTS.map(e => e.title).join(', ')}.</Problem>
  return (
    <section aria-labelledby="experiments-title">
      <div class="section-head">
        <h2 id="experiments-title">Experiments</h2>
        <label>Model{' '}
          <select value={model} onChange={e => setModel((e.target as HTMLSelectElement).value)}>
            {(models ?? []).map(m => <option key={m.name} value={m.name}>{m.name}</option>)}
          </select>
        </label>
      </div>
      <nav class="tabs" aria-label="experiments">
        {EXPERIMENTS.map(e => <a key={e.kind} href={`#/experiments/${e.kind}`} aria-current={e.kind === kind ? 'page' : undefined}>{e.title}</a>)}
      </nav>
      <Experiment key={kind} kind={kind} model={model} info={info} />
    </section>
  )
}

function Experiment ({ kind, model, info }: { kind: ExperimentKind; model: string; info: Info }) {
  const [form, setForm] = useStored(kind)
  const [problems, setProblems] = useState<FieldProblem[]>([])
  const [error, setError] = useState<string | null>(null)
  const [run, setRun] = useState<RunSummary | null>(null)
  const [progress, setProgress] = useState<ProgressEvent | null>(null)
  const [busy, setBusy] = useState(false)
  const source = useRef<EventSource | null>(null)
  useEffect(() => () => source.current?.close(), [])
  const meta = EXPERIMENTS.find(e => e.kind === kind)!
  const params = fromForm(kind, form)
  const code = useMemo(() => {
    try { return programSource(kind, params, { model: model || '<model>', connect: info.connect }) } catch (e) { return `// ${messageOf(e)}` }
  }, [kind, JSON.stringify(params), model, info.connect])

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault()
    setError(null); setRun(null); setProgress(null)
    const found = validateParams(kind, params)
    if (model === '') found.push({ field: 'model', message: 'choose a model' })
    setProblems(found)
    if (found.length > 0) return
    setBusy(true)
    try {
      const { id } = await postJson<{ id: string }>('/api/runs', { kind, model, params })
      source.current?.close()
      const events = new EventSource(`/api/runs/${id}/events`)
      source.current = events
      events.addEventListener('progress', (e) => setProgress(JSON.parse((e as MessageEvent<string>).data) as ProgressEvent))
      events.addEventListener('end', (e) => {
        const summary = JSON.parse((e as MessageEvent<string>).data) as RunSummary
        setRun(summary); setBusy(false); events.close()
        if (summary.error !== null) setError(`${summary.error.code}: ${summary.error.message}`)
      })
      events.onerror = () => { if (events.readyState === EventSource.CLOSED) { setBusy(false); setError('the progress stream was interrupted') } }
    } catch (e) {
      setBusy(false)
      if (e instanceof ApiError && e.field !== undefined) setProblems([{ field: e.field, message: e.message }])
      setError(messageOf(e))
    }
  }

  const problemOf = (name: string): string | undefined => problems.find(p => p.field === name)?.message
  return (
    <div class="experiment">
      <p class="lede">{meta.summary}</p>
      <div class="split">
        <form onSubmit={(e) => { void submit(e) }} noValidate aria-labelledby="form-title">
          <h3 id="form-title">{meta.title}</h3>
          {FIELDS[kind].map(field => {
            const id = `f-${kind}-${field.name}`
            const problem = problemOf(field.name)
            const common = { id, name: field.name, 'aria-invalid': problem !== undefined ? true : undefined, 'aria-describedby': problem !== undefined ? `${id}-problem` : field.help !== undefined ? `${id}-help` : undefined }
            const set = (value: string | boolean): void => setForm({ ...form, [field.name]: value })
            return (
              <div class={`field field-${field.type}`} key={field.name}>
                {field.type === 'checkbox'
                  ? <label for={id}><input {...common} type="checkbox" checked={form[field.name] === true} onChange={e => set((e.target as HTMLInputElement).checked)} /> {field.label}</label>
                  : <label for={id}>{field.label}</label>}
                {field.type === 'textarea' && <textarea {...common} rows={2} value={String(form[field.name])} onInput={e => set((e.target as HTMLTextAreaElement).value)} />}
                {field.type === 'text' && <input {...common} type="text" value={String(form[field.name])} onInput={e => set((e.target as HTMLInputElement).value)} />}
                {(field.type === 'int' || field.type === 'number') && <input {...common} type="text" inputMode={field.type === 'int' ? 'numeric' : 'decimal'} value={String(form[field.name])} onInput={e => set((e.target as HTMLInputElement).value)} />}
                {field.type === 'select' && <select {...common} value={String(form[field.name])} onChange={e => set((e.target as HTMLSelectElement).value)}>{field.options!.map(o => <option key={o} value={o}>{o}</option>)}</select>}
                {field.help !== undefined && <small id={`${id}-help`}>{field.help}</small>}
                {problem !== undefined && <small class="field-problem" id={`${id}-problem`}>{problem}</small>}
              </div>
            )
          })}
          <div class="actions">
            <button type="submit" disabled={busy || model === ''}>{busy ? 'Running…' : model === '' ? 'Loading models…' : 'Run'}</button>
            <button type="button" onClick={() => { setForm(toForm(DEFAULTS[kind])); setProblems([]); setError(null) }}>Reset</button>
          </div>
          <p role="status" aria-live="polite" class="progress" data-testid="progress">{progress?.text ?? (busy ? 'submitting' : '')}
            {progress?.steps !== undefined && <progress max={progress.steps} value={progress.step} aria-label="steps" />}
          </p>
          {problems.length > 0 && <Problem>Please fix: {problems.map(p => p.message).join('; ')}</Problem>}
          {error !== null && problems.length === 0 && <Problem>{error}</Problem>}
        </form>
        <figure class="code">
          <figcaption>The Program, as the TypeScript that records it</figcaption>
          <pre tabIndex={0} aria-label="TypeScript source of the Program"><code data-testid="program-source">{code}</code></pre>
        </figure>
      </div>
      {run !== null && run.status === 'completed' && <RunResult run={run} />}
    </div>
  )
}

function RunResult ({ run }: { run: RunSummary }) {
  const view = run.view
  return (
    <section class="result" aria-labelledby="result-title" data-testid="result">
      <h3 id="result-title">Result</h3>
      <dl class="facts">
        <dt>ran on</dt><dd>{run.provider}</dd>
        <dt>Program</dt><dd><code>{run.programDigest}</code>{run.programs > 1 ? ` (the last of ${run.programs})` : ''}</dd>
        <dt>time</dt><dd>{run.elapsedMs} ms</dd>
        {run.egress !== null && <><dt>egress</dt><dd data-testid="run-egress">{bytes(run.egress.bytes)} taken; {bytes(run.egress.remainingToday)} left today</dd></>}
        <dt>receipt</dt>
        <dd>{run.receipt === null || !run.receipt.present
          ? <span class="badge">none</span>
          : <span class={`badge ${run.receipt.verified ? 'ok' : 'bad'}`} data-testid="receipt">{run.receipt.verified ? 'verified' : 'NOT verified'}</span>}{' '}
          <small>{run.receipt?.detail}</small></dd>
      </dl>
      <p class="downloads">Download:{' '}
        <a href={`/api/runs/${run.id}/results.safetensors`} download>results (.safetensors)</a>{' · '}
        <a href={`/api/runs/${run.id}/program.cbor`} download>Program (CBOR)</a>{' · '}
        <a href={`/api/runs/${run.id}/program.json`} download>Program (JSON)</a>
        {run.receipt?.present === true && <>{' · '}<a href={`/api/runs/${run.id}/receipt.cbor`} download>receipt</a></>}
      </p>
      {view?.kind === 'logit-lens' && <LensResult view={view} />}
      {view?.kind === 'patching' && <PatchingResult view={view} />}
      {view?.kind === 'attention' && <AttentionResult view={view} />}
      {view?.kind === 'steering' && <SteeringResult view={view} />}
    </section>
  )
}

function LensResult ({ view }: { view: LensView }) {
  const columns = view.tokens.map((t, i) => `${i}: ${token(t)}`)
  return (
    <Heatmap testId="lens" caption="Logit lens: the top next token decoded from each layer (rows) at each position (columns); colour = its probability"
      rows={view.layers} columns={columns} min={0} max={1}
      values={view.top.map(row => row.map(c => c.prob))}
      cellText={(i, j) => { const c = view.top[i]![j]!; return <><span class="tok" data-token={c.token}>{token(c.token)}</span><span class="prob">{c.prob.toFixed(2)}</span></> }}
      cellLabel={(i, j) => { const c = view.top[i]![j]!; return `${view.layers[i]}, position ${j} (${token(view.tokens[j]!)}): ${token(c.token)} ${c.prob.toFixed(3)}${c.alternatives.length > 0 ? `; then ${c.alternatives.map(a => `${token(a.token)} ${a.prob.toFixed(3)}`).join(', ')}` : ''}` }} />
  )
}

function PatchingResult ({ view }: { view: PatchingView }) {
  return (
    <>
      <p>Logit difference (answer − distractor) at the last position: clean <strong data-testid="clean-diff">{view.cleanDiff.toFixed(3)}</strong>,
        corrupted <strong data-testid="corrupt-diff">{view.corruptDiff.toFixed(3)}</strong>. Recovery = (patched − corrupted) / (clean − corrupted): 1 restores the clean answer.</p>
      <Heatmap testId="patching-positions" scale="diverging" caption="Recovery after patching one layer's clean output at one position into the corrupted run"
        rows={view.layers} columns={view.positions.map(p => `${p}: ${token(view.tokens[p]!)}`)} values={view.recovery} />
      <table class="layer-recovery" data-testid="layer-recovery">
        <caption>Per-layer recovery at the last position</caption>
        <thead><tr><th scope="col">layer</th><th scope="col">recovery</th></tr></thead>
        <tbody>{view.layerRecovery.map((r, l) => <tr key={l}><th scope="row">{view.layers[l]}</th><td data-value={r}>{r.toFixed(3)}</td></tr>)}</tbody>
      </table>
      {view.heads !== null && (
        <Heatmap testId="patching-heads" scale="diverging" caption="Recovery after patching one head's clean output at the last position"
          rows={view.layers} columns={view.heads[0]!.map((_, h) => `head ${h}`)} values={view.heads} />
      )}
    </>
  )
}

function AttentionResult ({ view }: { view: AttentionView }) {
  const labels = view.tokens.map((t, i) => `${i}: ${token(t)}`)
  return (
    <div class="heads">
      {view.probs.map((head, h) => (
        <Heatmap key={h} testId={`attention-head-${h}`} caption={`Layer ${view.layer}, head ${h}: attention from each query (rows) to each key (columns)`}
          rows={labels} columns={view.tokens.map((_, i) => String(i))} values={head} min={0} max={1}
          cellText={(i, j) => j > i ? '' : head[i]![j]!.toFixed(2).replace(/^0/, '')} />
      ))}
    </div>
  )
}

function SteeringResult ({ view }: { view: SteeringView }) {
  return (
    <dl class="facts steering" data-testid="steering">
      <dt>prompt</dt><dd>{view.prompt}</dd>
      <dt>without the vector</dt><dd data-testid="plain">{view.plain}</dd>
      <dt>with the vector</dt><dd data-testid="steered">{view.steered}</dd>
      <dt>vector norm</dt><dd>{view.vectorNorm.toFixed(3)}</dd>
    </dl>
  )
}
