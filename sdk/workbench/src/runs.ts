/**
 * Experiment runs: each is started from a form, runs in the background through the backend's Weft, streams its
 * progress to listeners (the page's SSE) and keeps what the downloads need: the tensors, the Programs, the receipt.
 */
import { randomUUID } from 'node:crypto'
import { WeftError, encodeProgram, programDigest, toJsonForm, type Program, type Tensor } from '@weft/core'
import type { RunProgress, RunResult } from '@weft/sdk'
import { withCapture, type Backend } from './backend.js'
import { runExperiment } from './experiments.js'
import type { ExperimentKind, ParamsOf, ProgressEvent, RunSummary } from './shared/experiments.js'

export interface Run {
  summary: RunSummary
  programs: Program[]
  results: RunResult[]
  tensors: Record<string, Tensor>
  events: ProgressEvent[]
  listeners: Set<(event: ProgressEvent | null) => void>
  startedAt: number
}

const MAX_RUNS = 50

export class Runs {
  private readonly runs = new Map<string, Run>()

  constructor (private readonly backend: Backend) {}

  get (id: string): Run {
    const run = this.runs.get(id)
    if (run === undefined) throw new WeftError('JOB_NOT_FOUND', `no run '${id}' (runs are kept while the workbench runs, the latest ${MAX_RUNS})`, { run: id })
    return run
  }

  /** Starts a run; the model is loaded first so an unknown model fails here, as a message in the form. */
  async start<K extends ExperimentKind> (kind: K, modelName: string, params: ParamsOf[K]): Promise<Run> {
    const model = await this.backend.weft.model(modelName)
    const id = randomUUID()
    const run: Run = {
      summary: {
        id, kind, model: modelName, status: 'queued', progress: 'submitted', view: null, error: null,
        provider: null, programDigest: null, programs: 0, receipt: null, egress: null, elapsedMs: null,
      },
      programs: [], results: [], tensors: {}, events: [], listeners: new Set(), startedAt: Date.now(),
    }
    this.runs.set(id, run)
    for (const old of [...this.runs.keys()].slice(0, Math.max(0, this.runs.size - MAX_RUNS))) this.runs.delete(old)
    const emit = (event: ProgressEvent): void => {
      if (run.events.at(-1)?.text === event.text) return // engines report 'running' per stage; once is enough
      run.summary.progress = event.text
      if (run.summary.status === 'queued' && event.stage !== 'queued' && event.stage !== 'received') run.summary.status = 'running'
      run.events.push(event)
      for (const listener of run.listeners) listener(event)
    }
    const onProgress = (event: RunProgress): void => {
      const n = run.programs.length
      const of = n > 1 ? ` (program ${n})` : ''
      if (event.stage === 'queued') emit({ stage: 'queued', text: `queued${event.position === undefined ? '' : ` at position ${event.position}`}${of}` })
      else if (event.stage === 'running') emit({ stage: 'running', text: `running${of}` })
      else if (event.stage === 'train-step') emit({ stage: 'step', text: `step ${String(event.detail?.step)} of ${String(event.detail?.steps)}`, step: Number(event.detail?.step), steps: Number(event.detail?.steps) })
    }
    const capture = { programs: run.programs, results: run.results, onProgress }
    void withCapture(capture, async () => {
      emit({ stage: 'received', text: 'recording the Program' })
      return await runExperiment(kind, model, params, {
        onStep: (step, steps, what) => emit({ stage: 'step', text: `step ${step} of ${steps} (${what})`, step, steps }),
      })
    }).then(async (output) => {
      run.tensors = output.tensors
      run.summary.view = output.view
      await this.finish(run)
      run.summary.status = 'completed'
      emit({ stage: 'completed', text: `completed in ${run.summary.elapsedMs} ms` })
    }, async (error: unknown) => {
      await this.finish(run)
      run.summary.status = 'failed'
      run.summary.error = WeftError.is(error) ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) }
      emit({ stage: 'failed', text: `failed: ${run.summary.error.message}` })
    }).finally(() => {
      for (const listener of run.listeners) listener(null)
      run.listeners.clear()
    })
    return run
  }

  private async finish (run: Run): Promise<void> {
    run.summary.elapsedMs = Date.now() - run.startedAt
    run.summary.programs = run.programs.length
    const program = mainProgram(run)
    run.summary.programDigest = program === null ? null : programDigest(program)
    const result = run.results.at(-1)
    if (result !== undefined) {
      run.summary.provider = result.provider
      run.summary.receipt = await this.backend.verifyReceipt(result)
      // egress: what every Program of the run took out, and what the last one left today
      const egress = run.results.filter(r => r.egress !== undefined)
      if (egress.length > 0) run.summary.egress = { bytes: egress.reduce((a, r) => a + r.egress!.bytes, 0), remainingToday: egress.at(-1)!.egress!.remainingToday ?? null }
    }
  }
}

/** The Program a run's downloads describe: its last (the experiment's own; earlier ones build inputs like a vector). */
export function mainProgram (run: Run): Program | null {
  return run.programs.at(-1) ?? null
}

export function programCbor (program: Program): Uint8Array { return encodeProgram(program) }

export function programJson (program: Program): string {
  return JSON.stringify(toJsonForm(program as never), null, 1)
}

export function receiptBytes (run: Run): Uint8Array | null {
  return run.results.at(-1)?.receipt?.bytes ?? null
}
