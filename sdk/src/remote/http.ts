/** The SDK's HTTP layer for remote mode: protocol header on every request, wire errors rebuilt as WeftError. */
import { WeftError, type WireError } from '@weft/core'
import { nodeHttpExchange, nodeHttpFetch } from './node-fetch.js'
import { EndpointPool } from './endpoints.js'

const PROTOCOL_VERSION = '1'

/** A response read to its end: what job submission and result retrieval need, without WHATWG objects. */
export interface BufferedResponse {
  status: number
  /** header value by case-insensitive name, or null */
  header (name: string): string | null
  body: Uint8Array
}

export interface BufferedInit { method?: string; headers?: Record<string, string>; body?: Uint8Array | string; signal?: AbortSignal }

/** Where a request goes: by default the first live node, failing over to the others (a multi-node provider). */
export interface RequestTarget {
  /** ask this endpoint first */
  endpoint?: string
  /** this endpoint only, no failover (a submission: its caller signs it afresh for another node) */
  only?: boolean
  /** skip the node's identity check (the check's own request) */
  unchecked?: boolean
}

/**
 * A node failure: another node of the same provider may answer (connection refused or reset, timeout, 5xx).
 * Refusals, bad requests and the caller's abort are answers, not failures.
 */
export function isNodeFailure (error: unknown): boolean {
  if (!WeftError.is(error)) return false
  const status = error.details.status
  if (typeof status === 'number') return status >= 500
  return error.code === 'PROVIDER_UNAVAILABLE' && typeof error.details.url === 'string'
}

/** system error codes that mean the request never left this machine or was never taken by the node */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * false when a failed request surely did not reach the node's handler: the connection was refused or the name did
 * not resolve, or the node answered with the protocol's 503 (it refused the request; a refusal creates nothing).
 * Anything else (a reset or timeout after sending, another 5xx) may have been acted on.
 */
export function mayHaveArrived (error: unknown): boolean {
  if (!WeftError.is(error)) return true
  if (typeof error.details.status === 'number') return error.details.status !== 503
  let cause: unknown = error.cause
  for (let depth = 0; depth < 4 && cause !== undefined && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === 'string' && NOT_SENT.has(code)) return false
    cause = (cause as { cause?: unknown }).cause
  }
  return true
}

export class ProviderHttp {
  /** the provider's nodes: `baseUrl` as constructed first, then the other endpoints */
  readonly pool: EndpointPool
  /**
   * Checks a node before its first use (that it answers as the provider: RemoteExecutor.connect sets it when there
   * are several). A node that fails the check with an answer is left out; one that cannot be reached is retried later.
   */
  verifyEndpoint: ((base: string) => Promise<void>) | null = null
  private readonly checked = new Map<string, Promise<void>>()

  constructor (baseUrl: string, private readonly fetchImpl: typeof fetch = nodeHttpFetch, endpoints: readonly string[] = []) {
    this.pool = new EndpointPool([baseUrl, ...endpoints])
  }

  /** the node requests go to first (the first live one) */
  get baseUrl (): string { return this.pool.preferred() }

  url (path: string, base = this.baseUrl): string { return new URL(path, base).toString() }

  /** Marks a node as verified (the one `connect` read the identity from). */
  trust (base: string): void { this.checked.set(base, Promise.resolve()) }

  /** true when `base` may be asked (verified, or no check needed); else the reason it may not, as an error */
  private async check (base: string): Promise<unknown> {
    if (this.verifyEndpoint === null) return null
    let pending = this.checked.get(base)
    if (pending === undefined) {
      pending = this.verifyEndpoint(base)
      this.checked.set(base, pending)
    }
    try {
      await pending
      return null
    } catch (error) {
      if (this.checked.get(base) === pending) this.checked.delete(base)
      if (isNodeFailure(error)) this.pool.markDown(base, error)
      else this.pool.exclude(base) // it answered, as someone else: never asked again
      return error
    }
  }

  /** Runs `attempt` on each node in turn until one answers; node failures set the node aside. */
  async across<T> (target: RequestTarget, attempt: (base: string) => Promise<T>): Promise<{ value: T, endpoint: string }> {
    const order = target.only === true ? [target.endpoint ?? this.baseUrl] : this.pool.order(target.endpoint)
    let failure: unknown
    for (const base of order) {
      const refused = target.unchecked === true ? null : await this.check(base)
      if (refused !== null) { failure = refused; continue }
      try {
        const value = await attempt(base)
        this.pool.markUp(base)
        return { value, endpoint: base }
      } catch (error) {
        if (!isNodeFailure(error)) throw error
        this.pool.markDown(base, error)
        failure = error
      }
    }
    throw failure ?? new WeftError('PROVIDER_UNAVAILABLE', 'no endpoint of the provider may be asked', { endpoints: this.pool.urls })
  }

  async request (path: string, init: RequestInit = {}, target: RequestTarget = {}): Promise<Response> {
    return (await this.requestAt(path, init, target)).value
  }

  /** `request`, also saying which node answered */
  async requestAt (path: string, init: RequestInit = {}, target: RequestTarget = {}): Promise<{ value: Response, endpoint: string }> {
    return await this.across(target, async base => await this.fetchFrom(base, this.url(path, base), init))
  }

  /** One request to one node through the injected `fetch`: a transport failure or a non-2xx answer throws. */
  private async fetchFrom (base: string, url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('Weft-Protocol', PROTOCOL_VERSION)
    let response: Response
    try {
      response = await this.fetchImpl(url, { ...init, headers })
    } catch (error) {
      throw transportError(error, base)
    }
    if (!response.ok) throw await errorOf(response)
    return response
  }

  /**
   * Like `request`, but the body is read whole before returning. With the default transport on http:// this goes
   * straight through node:http (no Headers/Response/stream objects); an injected `fetch` is used as given.
   */
  async buffered (path: string, init: BufferedInit = {}, target: RequestTarget = {}): Promise<BufferedResponse> {
    return (await this.bufferedAt(path, init, target)).value
  }

  /** `buffered`, also saying which node answered */
  async bufferedAt (path: string, init: BufferedInit = {}, target: RequestTarget = {}): Promise<{ value: BufferedResponse, endpoint: string }> {
    return await this.across(target, async base => await this.bufferedFrom(base, path, init))
  }

  private async bufferedFrom (base: string, path: string, init: BufferedInit): Promise<BufferedResponse> {
    const url = new URL(path, base)
    if (this.fetchImpl !== nodeHttpFetch || url.protocol !== 'http:') {
      const response = await this.fetchFrom(base, url.toString(), init)
      return { status: response.status, header: name => response.headers.get(name), body: new Uint8Array(await response.arrayBuffer()) }
    }
    let exchange
    try {
      exchange = await nodeHttpExchange(url, { ...init, headers: { ...init.headers, 'weft-protocol': PROTOCOL_VERSION } })
    } catch (error) {
      throw transportError(error, base)
    }
    const { status, headers, body } = exchange
    if (status < 200 || status > 299) throw errorFrom(status, new TextDecoder().decode(body))
    return {
      status,
      body,
      header: name => {
        const value = headers[name.toLowerCase()]
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
      },
    }
  }

  async json<T> (path: string, init?: RequestInit, target?: RequestTarget): Promise<T> { return await (await this.request(path, init, target)).json() as T }

  async bytes (path: string, init?: RequestInit, target?: RequestTarget): Promise<Uint8Array> { return new Uint8Array(await (await this.request(path, init, target)).arrayBuffer()) }
}

function transportError (error: unknown, baseUrl: string): WeftError {
  if ((error as Error).name === 'AbortError') return new WeftError('JOB_CANCELLED', 'request aborted by the caller', {}, { cause: error })
  return new WeftError('PROVIDER_UNAVAILABLE', `cannot reach the provider at ${baseUrl}: ${(error as Error).message}`, { url: baseUrl }, { cause: error })
}

/** A non-2xx response as the typed error the provider named (INTERNAL when the body is not a Weft error). */
async function errorOf (response: Response): Promise<WeftError> {
  return errorFrom(response.status, await response.text())
}

function errorFrom (status: number, text: string): WeftError {
  try {
    const wire = JSON.parse(text) as Partial<WireError>
    if (typeof wire.code === 'string' && typeof wire.message === 'string') {
      return WeftError.fromWire({ code: wire.code, message: wire.message, details: { ...wire.details, status } })
    }
  } catch { /* not JSON */ }
  const code = status === 503 ? 'PROVIDER_UNAVAILABLE' : 'INTERNAL'
  return new WeftError(code, `provider answered ${status}: ${text.slice(0, 200)}`, { status })
}
