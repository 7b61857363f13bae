/**
 * `weft workbench [--provider URL --key file | --directory multiaddr --key file | --models dir] [--port N]`:
 * serves the workbench page on 127.0.0.1 until interrupted.
 */
import { parseArgs } from 'node:util'
import { existsSync } from 'node:fs'
import { UsageError } from '@weft/core'
import { createBackend, type BackendOptions } from './backend.js'
import { startWorkbench } from './server.js'

const USAGE = `usage: weft workbench [--models DIR | --provider URL --key FILE | --directory MULTIADDR --key FILE] [--port N]
  --models DIR          embedded: run the models of this folder in this process (default: ./models or $WEFT_MODELS)
  --provider URL        one provider over HTTP (e.g. http://127.0.0.1:8740); needs --key
  --directory MULTIADDR every provider on the libp2p directory reached through this bootstrap peer (repeatable); needs --key
  --key FILE            your key file (weft keys new --out me.json): signs every Program
  --port N              the page's port on 127.0.0.1 (default 8750; 0: any free port)
  -h, --help            this text`

const OPTIONS = {
  models: { type: 'string' }, provider: { type: 'string' }, directory: { type: 'string', multiple: true },
  key: { type: 'string' }, port: { type: 'string', default: '8750' }, help: { type: 'boolean', short: 'h' },
} as const

/** The backend the flags choose; UsageError for flags that do not fit together. */
export function backendOptionsOf (argv: string[]): { backend: BackendOptions; port: number } {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true })
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`)
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port is a port number (0–65535), not '${values.port}'`)
  const chosen = [values.models !== undefined, values.provider !== undefined, values.directory !== undefined].filter(Boolean).length
  if (chosen > 1) throw new UsageError('choose one of --models, --provider and --directory')
  if (values.provider !== undefined || values.directory !== undefined) {
    if (values.key === undefined) throw new UsageError(`--${values.provider !== undefined ? 'provider' : 'directory'} needs --key FILE (weft keys new --out me.json)`)
    if (!existsSync(values.key)) throw new UsageError(`--key: no file ${values.key}`)
  } else if (values.key !== undefined) throw new UsageError('--key goes with --provider or --directory')
  if (values.provider !== undefined) {
    let url: URL
    try { url = new URL(values.provider) } catch { throw new UsageError(`--provider is an http(s) URL, not '${values.provider}'`) }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--provider is an http(s) URL, not '${values.provider}'`)
    return { port, backend: { mode: 'provider', provider: values.provider.replace(/\/+$/, ''), key: values.key! } }
  }
  if (values.directory !== undefined) return { port, backend: { mode: 'directory', bootstrap: values.directory, key: values.key! } }
  if (values.models !== undefined && !existsSync(values.models)) throw new UsageError(`--models: no folder ${values.models}`)
  return { port, backend: { mode: 'embedded', ...(values.models === undefined ? {} : { modelsDir: values.models }) } }
}

export const workbenchCommand = {
  summary: 'the web workbench: browse the fabric and run experiments (`workbench [--provider URL --key file] [--port N]`)',
  usage: USAGE,
  async run (argv: string[]): Promise<number> {
    const { backend: options, port } = backendOptionsOf(argv)
    const backend = await createBackend(options)
    const server = await startWorkbench(backend, { port })
    console.log(`weft workbench (${options.mode}) listening on ${server.url}`)
    await new Promise<void>(resolve => {
      const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve() }
      process.on('SIGINT', stop); process.on('SIGTERM', stop)
    })
    await server.close()
    await backend.close()
    return 0
  },
}
