/** The page's calls to the workbench server: JSON in, JSON out, errors as readable messages. */

export class ApiError extends Error {
  constructor (readonly code: string, message: string, readonly field?: string) { super(message) }
}

export async function api<T> (path: string, init: RequestInit = {}): Promise<T> {
  let response: Response
  try {
    response = await fetch(path, init)
  } catch (error) {
    throw new ApiError('NETWORK', `the workbench server did not answer (${(error as Error).message})`)
  }
  let body: unknown
  try { body = await response.json() } catch { throw new ApiError('DECODE_FAILED', `the server answered ${response.status} without JSON`) }
  if (!response.ok) {
    const error = (body as { error?: { code?: string; message?: string; details?: { field?: string } } }).error
    throw new ApiError(error?.code ?? `HTTP_${response.status}`, error?.message ?? `HTTP ${response.status}`, error?.details?.field)
  }
  return body as T
}

export const postJson = <T>(path: string, value: unknown): Promise<T> =>
  api<T>(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) })

export function messageOf (error: unknown): string {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`
  return error instanceof Error ? error.message : String(error)
}
