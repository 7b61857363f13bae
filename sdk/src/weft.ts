/**
 * Weft: the entry point. An Executor is injected (`new Weft(executor)`); `Weft.local()` builds the embedded
 * one, and remote mode adds `Weft.connect()` with a remote Executor — tracing code does not change.
 */
import type { Executor, ModelInfo } from './executor.js'
import { LocalExecutor, type LocalOptions } from './local/local-executor.js'
import { Model } from './model.js'
import type { Envoy } from './trace/envoy.js'
import type { DiscoverOptions } from './routing/index.js'
import type { RouteChoice } from './routing/choice.js'

/** What `Weft.connect` takes: the provider URL, your key (bytes, hex, `{ secretKey }` or `{ file }`), options. */
export type RemoteConnectOptions = Parameters<typeof import('./remote/index.js').connectRemote>[0]

export class Weft {
  readonly executor: Executor
  private readonly models = new Map<string, Promise<Model<unknown>>>()

  constructor (executor: Executor) {
    this.executor = executor
  }

  /** Embedded mode: models from `./models` (or WEFT_MODELS), run in this process on the ONNX engine. */
  static async local (options: LocalOptions = {}): Promise<Weft> {
    return new Weft(new LocalExecutor(options))
  }

  /** Embedded mode that round-trips every Program through the wire encoding first (what a host would see). */
  static async simulate (options: Omit<LocalOptions, 'simulate'> = {}): Promise<Weft> {
    return new Weft(new LocalExecutor({ ...options, simulate: true }))
  }

  /**
   * Remote mode: one provider over HTTP (`{ provider: 'http://127.0.0.1:8740', key }`). Programs are signed with
   * `key`, results come with a provider-signed receipt that is verified before they are returned.
   */
  static async connect (options: RemoteConnectOptions): Promise<Weft> {
    const { connectRemote } = await import('./remote/index.js')
    return new Weft(await connectRemote(options))
  }

  /**
   * Routing mode: providers found on the libp2p directory (bootstrap multiaddrs), the best live one per model,
   * failover to the next when one fails mid-job. libp2p is loaded only here.
   */
  static async discover (options: DiscoverOptions): Promise<Weft> {
    const { connectRouted } = await import('./routing/index.js')
    return new Weft(await connectRouted(options))
  }

  /**
   * A model by name. Pass its envoy tree type for compile-time module names, e.g. `weft.model<GPT2>('demo-gpt2')`;
   * without one, any module name type-checks and unknown names throw while recording. In routing mode,
   * `{ require, prefer }` choose the providers its Programs run on (e.g. `{ require: { policy: 'open' } }`,
   * `{ prefer: { provider: 'ed25519:…' } }`, `{ require: { maxQueue: 4 } }`); other modes ignore them.
   */
  async model<T = Envoy> (name: string, route?: RouteChoice): Promise<Model<T>> {
    const key = route === undefined ? name : `${name}\n${JSON.stringify(route)}`
    let pending = this.models.get(key)
    if (pending === undefined) {
      pending = (async () => {
        const manifest = await this.executor.manifest(name)
        const tokenizer = (await this.executor.tokenizer?.(name)) ?? null
        return new Model<unknown>(this.executor, name, manifest, tokenizer, route)
      })()
      pending.catch(() => this.models.delete(key))
      this.models.set(key, pending)
    }
    return pending as Promise<Model<T>>
  }

  listModels (): Promise<ModelInfo[]> { return this.executor.listModels() }

  /** Releases the executor (unloads models, closes connections). */
  close (): Promise<void> { return this.executor.close() }
}
