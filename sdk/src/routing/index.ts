/**
 * Routing mode: Programs go to whichever provider the libp2p directory lists for the model, with failover.
 * `Weft.discover({ bootstrap, key })` wires it; `connectRouted` returns the Executor.
 *
 * @example
 * ```ts
 * import { Weft } from '@weft/sdk'
 * const weft = await Weft.discover({ bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…'], key: secretKeyHex })
 * const model = await weft.model('demo-gpt2')      // the best live provider of demo-gpt2
 * ```
 */
import { WeftError, resolveKey } from '@weft/core'
import type { DirectoryNodeOptions } from '@weft/federation'
import { RoutingExecutor, type DirectoryLike, type RoutingOptions } from './routing-executor.js'
import { directoryModule } from './federation.js'

export { RoutingExecutor, shouldFailover, isRefusal } from './routing-executor.js'
export type { DirectoryLike, RoutingOptions, RouteEvent } from './routing-executor.js'
export type { ProviderChoice, RouteChoice } from './choice.js'
export type { TrustOptions } from './trust.js'

export interface DiscoverOptions extends Omit<RoutingOptions, 'directory' | 'key'> {
  /** the researcher's signing key: a key object (`loadKey(path)`, `{ secretKey }`, `{ file }`), bytes, hex or a key-file path */
  key: RoutingOptions['key']
  /** bootstrap multiaddrs of directory nodes (with /p2p/…); a client directory node is started and owned */
  bootstrap?: string[]
  /** or an existing directory (e.g. a DirectoryNode the caller runs) */
  directory?: DirectoryLike
  /** options for the owned client node (listen addresses, clock, …) */
  node?: Omit<DirectoryNodeOptions, 'bootstrap'>
}

export async function connectRouted (options: DiscoverOptions): Promise<RoutingExecutor> {
  const key = resolveKey(options.key).secretKey
  if (options.directory !== undefined) return new RoutingExecutor({ ...options, key, directory: options.directory })
  if (options.bootstrap === undefined || options.bootstrap.length === 0) {
    throw new WeftError('PROVIDER_NOT_FOUND', 'routing needs directory bootstrap multiaddrs (or a directory): e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…')
  }
  const { createDirectoryNode } = await directoryModule() // libp2p loads only in routing mode
  const node = await createDirectoryNode({ ...options.node, bootstrap: options.bootstrap })
  return new RoutingExecutor({ ...options, key, directory: node }).own(() => node.stop())
}
