/**
 * Remote mode: an Executor over a provider's HTTP API. `connectRemote({ provider, key })` returns it;
 * `new Weft(await connectRemote(…))` (or `Weft.connect(…)` where the SDK wires it) traces exactly as locally.
 *
 * @example
 * ```ts
 * import { Weft } from '@weft/sdk'
 * import { connectRemote } from '@weft/sdk/remote'   // or from '@weft/sdk' when re-exported
 * const weft = new Weft(await connectRemote({ provider: 'http://127.0.0.1:8080', key: secretKeyHex }))
 * ```
 */
import { readFileSync } from 'node:fs'
import { fromHex } from '@weft/core'
import { RemoteExecutor, type ConnectOptions } from './remote-executor.js'

export { RemoteExecutor } from './remote-executor.js'
export type { AdapterInfo, AdapterValues, ConnectOptions, EgressStatus, RemoteKey } from './remote-executor.js'
export { verifyResult } from './verify-result.js'
export type { ResultBody, VerifiedResult } from './verify-result.js'
export { registrationProof } from './registration.js'

/** Connects to a provider. `key` may also be `{ file }`: a key file written by `weft keys new`. */
export async function connectRemote (options: Omit<ConnectOptions, 'key'> & { key: ConnectOptions['key'] | { file: string } }): Promise<RemoteExecutor> {
  const key = typeof options.key === 'object' && 'file' in options.key
    ? fromHex((JSON.parse(readFileSync(options.key.file, 'utf8')) as { secretKey: string }).secretKey)
    : options.key
  return await RemoteExecutor.connect({ ...options, key })
}
