/**
 * The multi-node load driver (the e2e test and `npm run bench`): N clients, each submitting to the provider's nodes
 * in turn, following its job's events on another node and fetching the result from a third. A node that stops
 * answering (killed) is skipped from then on; a job it accepted is followed on the others until it ends.
 */
import { createRequestEnvelope, decodeCbor, type Program } from '@weft/core'
import type { ProviderProcess } from './process.js'

export interface LoadUser { secretKey: Uint8Array; kid: string }

export interface LoadReport {
  /** jobs a node answered 202 for, and which node */
  accepted: { job: string; node: string }[]
  /** requests that failed (a dead node's connections), by node URL */
  clientErrors: { node: string; message: string }[]
  /** refusals (non-202 answers to a submission) */
  refused: { status: number; code: string }[]
  /** result bytes (egress.bytes of the result as fetched) per completed job */
  resultBytes: Map<string, number>
  failed: string[]
  elapsedMs: number
}

export async function runMultiNodeLoad (options: { nodes: ProviderProcess[]; users: LoadUser[]; durationMs: number; program: Program; during?: () => Promise<void> }): Promise<LoadReport> {
  const { nodes, users, program } = options
  const dead = new Set<string>()
  const report: LoadReport = { accepted: [], clientErrors: [], refused: [], resultBytes: new Map(), failed: [], elapsedMs: 0 }
  const alive = (from: number): ProviderProcess[] => {
    const list = nodes.map((_, i) => nodes[(from + i) % nodes.length]!).filter(n => !dead.has(n.url))
    if (list.length === 0) throw new Error('every node is down')
    return list
  }
  const failedOn = (node: ProviderProcess, error: unknown): void => {
    report.clientErrors.push({ node: node.url, message: (error as Error).message })
    dead.add(node.url)
  }
  const started = performance.now()
  const stopAt = started + options.durationMs

  async function follow (job: string, turn: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const node = alive(turn + 1 + attempt)[0]!
      let ended: 'job-end' | 'job-error'
      try {
        ended = await untilEnd(`${node.url}/v1/jobs/${job}/events`)
      } catch (error) { failedOn(node, error); continue }
      if (ended === 'job-error') { report.failed.push(job); return }
      const from = alive(turn + 2 + attempt)[0]!
      let response: Response
      try { response = await fetch(`${from.url}/v1/jobs/${job}/result`) } catch (error) { failedOn(from, error); continue }
      if (response.status !== 200) throw new Error(`result of ${job} from ${from.url}: ${response.status} ${await response.text()}`)
      const result = decodeCbor(new Uint8Array(await response.arrayBuffer())) as { egress: { bytes: number } }
      report.resultBytes.set(job, result.egress.bytes)
      return
    }
  }

  async function client (index: number): Promise<void> {
    const user = users[index % users.length]!
    for (let turn = index; performance.now() < stopAt; turn++) {
      const node = alive(turn)[0]!
      const envelope = createRequestEnvelope({ program, audience: node.providerId, secretKey: user.secretKey, kid: user.kid })
      let response: Response
      try {
        response = await fetch(`${node.url}/v1/jobs`, { method: 'POST', body: envelope, headers: { 'content-type': 'application/cose' } })
      } catch (error) { failedOn(node, error); continue }
      if (response.status !== 202) {
        report.refused.push({ status: response.status, code: ((await response.json()) as { code: string }).code })
        await new Promise(resolve => setTimeout(resolve, 20))
        continue
      }
      const { job } = (await response.json()) as { job: string }
      report.accepted.push({ job, node: node.url })
      await follow(job, turn)
    }
  }

  await Promise.all([...users.map(async (_, i) => await client(i)), options.during?.()])
  report.elapsedMs = performance.now() - started
  return report
}

/** Reads a job's SSE stream until its terminal event. */
async function untilEnd (url: string): Promise<'job-end' | 'job-error'> {
  const response = await fetch(url, { headers: { accept: 'text/event-stream' } })
  if (response.status !== 200 || response.body === null) throw new Error(`events ${url}: ${response.status}`)
  const decoder = new TextDecoder()
  let text = ''
  for await (const chunk of response.body) {
    text += decoder.decode(chunk as Uint8Array, { stream: true })
    const match = /event: (job-end|job-error)\n/.exec(text)
    if (match !== null) { await response.body.cancel().catch(() => {}); return match[1] as 'job-end' | 'job-error' }
  }
  throw new Error(`events ${url}: the stream ended before the job did`)
}
