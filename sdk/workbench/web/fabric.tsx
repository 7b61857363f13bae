/** Fabric: every provider with its models, revisions, policies, queue and health, and the caller's egress left. */
import { useEffect, useState } from 'preact/hooks'
import { api, messageOf } from './api.ts'
import { bytes, short } from './format.ts'
import { Problem } from './ui.tsx'

interface Provider {
  id: string; endpoint: string; status: string
  models: { name: string; revision: string; family: string }[]
  policies: Record<string, unknown>[]
  queue: { queued?: number; running?: number } | null
  recordQueueDepth?: number
  error?: string
}
interface Fabric {
  mode: string; kid: string | null; providers: Provider[]
  egress: Record<string, { usedToday: number; remainingToday: number | null } | { error: string }>
}

function PolicyFacts ({ policy }: { policy: Record<string, unknown> }) {
  const name = String(policy.name)
  const kind = name === 'closed-model' ? 'closed' : name
  const horizon = policy.exfiltrationHorizonDays as Record<string, number | null> | undefined
  const facts: [string, string][] = []
  if (kind === 'closed') {
    facts.push(['egress per day (all keys)', bytes(policy.egressPerDay as number | null)])
    facts.push(['egress per key per day', bytes(policy.egressPerKeyPerDay as number | null)])
    if (policy.perJobCap !== undefined) facts.push(['per job', bytes(policy.perJobCap as number | null)])
    if (horizon !== undefined) {
      for (const [model, days] of Object.entries(horizon)) facts.push([`exfiltration horizon (${model})`, days === null ? 'unbounded' : `${days >= 100 ? days.toFixed(0) : days.toFixed(1)} days`])
    }
    const forbidden = policy.forbiddenOps as string[] | undefined
    if (forbidden !== undefined) facts.push(['forbidden ops', forbidden.join(', ') || 'none'])
  } else if (kind === 'allow-list') facts.push(['keys allowed', String(policy.keys)])
  else if (kind === 'open') facts.push(['rate limit', policy.rateLimit === null ? 'none' : JSON.stringify(policy.rateLimit)])
  else if (policy.note !== undefined) facts.push(['', String(policy.note)])
  return (
    <div class="policy">
      <span class={`badge policy-${kind}`} data-testid="policy">{kind}</span>
      <dl>{facts.map(([k, v]) => <><dt>{k}</dt><dd>{v}</dd></>)}</dl>
    </div>
  )
}

export function FabricView () {
  const [fabric, setFabric] = useState<Fabric | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [loading, setLoading] = useState(false)
  const load = (): void => {
    setLoading(true)
    api<Fabric>('/api/fabric').then(f => { setFabric(f); setError(null) }, e => setError(messageOf(e))).finally(() => setLoading(false))
  }
  useEffect(load, [])
  return (
    <section aria-labelledby="fabric-title">
      <div class="section-head">
        <h2 id="fabric-title">Fabric</h2>
        <button type="button" onClick={load} disabled={loading}>{loading ? 'Refreshing…' : 'Refresh'}</button>
      </div>
      {error !== null && <Problem>The fabric could not be read: {error}</Problem>}
      {fabric === null && error === null && <p role="status">Reading the fabric…</p>}
      {fabric !== null && (
        <>
          <p class="lede">{fabric.mode === 'embedded' ? 'Embedded: models run in the workbench\'s own process.' : `Your key ${fabric.kid ?? ''}; ${fabric.providers.length} provider${fabric.providers.length === 1 ? '' : 's'}.`}</p>
          {fabric.providers.length === 0 && <p>No provider is listed yet.</p>}
          <ul class="providers">
            {fabric.providers.map(p => {
              const egress = fabric.egress[p.id]
              return (
                <li class="provider card" key={p.id} data-testid="provider">
                  <h3 title={p.id}>{short(p.id)}</h3>
                  <p class="endpoint">{p.endpoint}</p>
                  <p>
                    <span class={`badge health-${p.status}`} data-testid="health">{p.status}</span>{' '}
                    {p.queue !== null && <span data-testid="queue">queue: {p.queue.queued ?? 0} queued, {p.queue.running ?? 0} running</span>}
                    {p.recordQueueDepth !== undefined && <span> · announced queue depth {p.recordQueueDepth}</span>}
                  </p>
                  {p.error !== undefined && <Problem>{p.error}</Problem>}
                  <table class="models">
                    <caption>Models</caption>
                    <thead><tr><th scope="col">model</th><th scope="col">family</th><th scope="col">revision</th></tr></thead>
                    <tbody>{p.models.map(m => (
                      <tr key={m.name}><td><a href={`#/model/${encodeURIComponent(m.name)}`}>{m.name}</a></td><td>{m.family}</td><td><code title={m.revision}>{short(m.revision, 18)}</code></td></tr>
                    ))}</tbody>
                  </table>
                  {p.policies.map((policy, i) => <PolicyFacts key={i} policy={policy} />)}
                  {egress !== undefined && (
                    'error' in egress
                      ? <p class="egress">Your egress: <span>{egress.error}</span></p>
                      : <p class="egress">Your egress today: <strong data-testid="egress-used" data-bytes={egress.usedToday}>{bytes(egress.usedToday)}</strong> used,{' '}
                          <strong data-testid="egress-remaining" data-bytes={egress.remainingToday ?? ''}>{bytes(egress.remainingToday)}</strong> remaining</p>
                  )}
                </li>
              )
            })}
          </ul>
        </>
      )}
    </section>
  )
}
