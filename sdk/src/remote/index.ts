/**
 * Remote mode: an Executor over a provider's HTTP API. `connectRemote({ provider, key })` returns it;
 * `new Weft(await connectRemote(…))` (or `Weft.connect(…)` where the SDK wires it) traces exactly as locally.
 *
 * @example
 * ```ts
 * import { Weft, connectRemote } from '@weft/sdk'
 * const weft = new Weft(await connectRemote({ provider: 'http://127.0.0.1:8080', key: secretKeyHex }))
 * ```
 */
import { resolveKey } from '@weft/core'
import { RemoteExecutor, type ConnectOptions } from './remote-executor.js'

export { RemoteExecutor } from './remote-executor.js'
export type { AdapterValues, ConnectOptions, EgressStatus } from './remote-executor.js'
export { registrationProof } from './registration.js'

/**
 * Connects to a provider. `key` is a key object (`loadKey(path)`, `{ secretKey }`, `{ file }`), secret-key bytes,
 * a hex secret, or the path of a key file written by `weft keys new --out me.json`. A bad key fails here, before
 * any request, with KEY_FILE_INVALID naming what was wrong.
 */
export async function connectRemote (options: ConnectOptions): Promise<RemoteExecutor> {
  const key = resolveKey(options.key)
  return await RemoteExecutor.connect({ ...options, key })
}
