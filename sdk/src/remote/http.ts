/** The SDK's HTTP layer for remote mode: protocol header on every request, wire errors rebuilt as WeftError. */
import { WeftError, type WireError } from '@weft/core'
import { nodeHttpExchange, nodeHttpFetch } from './node-fetch.js'

const PROTOCOL_VERSION = '1'

/** A response read to its end: what job submission and result retrieval need, without WHATWG objects. */
export interface BufferedResponse {
  status: number
  /** header value by case-insensitive name, or null */
  header (name: string): string | null
  body: Uint8Array
}

export interface BufferedInit { method?: string; headers?: Record<string, string>; body?: Uint8Array | string; signal?: AbortSignal }

export class ProviderHttp {
  constructor (readonly baseUrl: string, private readonly fetchImpl: typeof fetch = nodeHttpFetch) {}

  url (path: string): string { return new URL(path, this.baseUrl).toString() }

  async request (path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('Weft-Protocol', PROTOCOL_VERSION)
    let response: Response
    try {
      response = await this.fetchImpl(this.url(path), { ...init, headers })
    } catch (error) {
      throw transportError(error, this.baseUrl)
    }
    if (!response.ok) throw await errorOf(response)
    return response
  }

  /**
   * Like `request`, but the body is read whole before returning. With the default transport on http:// this goes
   * straight through node:http (no Headers/Response/stream objects); an injected `fetch` is used as given.
   */
  async buffered (path: string, init: BufferedInit = {}): Promise<BufferedResponse> {
    const url = new URL(path, this.baseUrl)
    if (this.fetchImpl !== nodeHttpFetch || url.protocol !== 'http:') {
      const response = await this.request(path, init)
      return { status: response.status, header: name => response.headers.get(name), body: new Uint8Array(await response.arrayBuffer()) }
    }
    let exchange
    try {
      exchange = await nodeHttpExchange(url, { ...init, headers: { ...init.headers, 'weft-protocol': PROTOCOL_VERSION } })
    } catch (error) {
      throw transportError(error, this.baseUrl)
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

  async json<T> (path: string, init?: RequestInit): Promise<T> { return await (await this.request(path, init)).json() as T }

  async bytes (path: string, init?: RequestInit): Promise<Uint8Array> { return new Uint8Array(await (await this.request(path, init)).arrayBuffer()) }
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
