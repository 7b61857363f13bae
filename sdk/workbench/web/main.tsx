/**
 * The workbench page: Fabric, Model and Experiments views behind hash routes (#/fabric, #/model/<name>,
 * #/experiments/<kind>). Every failure becomes a message in the page (an error boundary catches render errors).
 */
import { render, Component, type ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, messageOf } from './api.ts'
import { FabricView } from './fabric.tsx'
import { ModelView } from './model-view.tsx'
import { ExperimentsView } from './experiments.tsx'
import { Problem, type Info, type ModelInfo } from './ui.tsx'
import './style.css'


function useHash (): string {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const on = (): void => setHash(location.hash)
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return hash
}

class Boundary extends Component<{ children: ComponentChildren }, { error: string | null }> {
  override state = { error: null as string | null }
  override componentDidCatch (error: unknown): void { this.setState({ error: messageOf(error) }) }
  override render () {
    if (this.state.error !== null) {
      return <Problem>Something in this view failed: {this.state.error}. <button type="button" onClick={() => this.setState({ error: null })}>Try again</button></Problem>
    }
    return this.props.children
  }
}

function App () {
  const hash = useHash()
  const [info, setInfo] = useState<Info | null>(null)
  const [models, setModels] = useState<ModelInfo[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    api<Info>('/api/info').then(setInfo, e => setError(messageOf(e)))
    api<{ models: ModelInfo[] }>('/api/models').then(r => setModels(r.models), e => setError(`the models could not be listed: ${messageOf(e)}`))
  }, [])
  const [view, ...rest] = hash.replace(/^#\/?/, '').split('/')
  const route = view === '' || view === undefined ? 'fabric' : view
  const arg = rest.map(decodeURIComponent).join('/')
  const link = (to: string, label: string, active: boolean) => <a href={`#/${to}`} aria-current={active ? 'page' : undefined}>{label}</a>
  return (
    <>
      <header class="top">
        <h1><a href="#/fabric">Weft workbench</a></h1>
        <nav aria-label="views">
          {link('fabric', 'Fabric', route === 'fabric')}
          {link(`model/${encodeURIComponent(arg !== '' && route === 'model' ? arg : models?.[0]?.name ?? '')}`, 'Model', route === 'model')}
          {link('experiments/logit-lens', 'Experiments', route === 'experiments')}
        </nav>
        {info !== null && <span class="mode" title={info.connect}>{info.mode}</span>}
      </header>
      <main id="main">
        {error !== null && <Problem>{error}</Problem>}
        <Boundary key={route}>
          {route === 'fabric' && <FabricView />}
          {route === 'model' && <ModelView name={arg !== '' ? arg : models?.[0]?.name ?? ''} models={models} />}
          {route === 'experiments' && info !== null && <ExperimentsView kind={arg} info={info} models={models} />}
          {!['fabric', 'model', 'experiments'].includes(route) && <Problem>There is no view '{route}'. Choose Fabric, Model or Experiments above.</Problem>}
        </Boundary>
      </main>
    </>
  )
}

addEventListener('unhandledrejection', (event) => { console.error(event.reason) })
render(<App />, document.getElementById('app')!)
