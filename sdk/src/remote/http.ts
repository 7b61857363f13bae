/** The SDK's HTTP layer for remote mode: protocol header on every request, wire errors rebuilt as WeftError. */
import { WeftError, type WireError } from '@weft/core'
import { nodeHttpFetch } from './node-fetch.js'

export const PROTOCOL_VERSION = '1'

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
      if ((error as Error).name === 'AbortError') throw new WeftError('JOB_CANCELLED', 'request aborted by the caller', {}, { cause: error })
      throw new WeftError('PROVIDER_UNAVAILABLE', `cannot reach the provider at ${this.baseUrl}: ${(error as Error).message}`, { url: this.baseUrl }, { cause: error })
    }
    if (!response.ok) throw await errorOf(response)
    return response
  }

  async json<T> (path: string, init?: RequestInit): Promise<T> { return await (await this.request(path, init)).json() as T }

  async bytes (path: string, init?: RequestInit): Promise<Uint8Array> { return new Uint8Array(await (await this.request(path, init)).arrayBuffer()) }
}

/** A non-2xx response as the typed error the provider named (INTERNAL when the body is not a Weft error). */
export async function errorOf (response: Response): Promise<WeftError> {
  const text = await response.text()
  try {
    const wire = JSON.parse(text) as Partial<WireError>
    if (typeof wire.code === 'string' && typeof wire.message === 'string') {
      return WeftError.fromWire({ code: wire.code, message: wire.message, details: { ...wire.details, status: response.status } })
    }
  } catch { /* not JSON */ }
  const code = response.status === 503 ? 'PROVIDER_UNAVAILABLE' : 'INTERNAL'
  return new WeftError(code, `provider answered ${response.status}: ${text.slice(0, 200)}`, { status: response.status })
}
