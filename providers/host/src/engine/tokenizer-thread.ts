/**
 * TokenizerThread: the host tokenizes text invokes in one worker thread, not on the HTTP thread (a ~1 MB text took
 * the event loop for hundreds of milliseconds). It uses the model's own tokenizer.json and tokenizer_config.json —
 * the files the host serves at /v1/models/:name/tokenizer and the manifest's tokenizer digest pins — with the same
 * library the onnx backend uses, so the ids equal the backend's. Started on first use; a crash fails the calls in
 * flight with INTERNAL and the next call starts a fresh thread.
 */
import { Worker } from 'node:worker_threads'
import { WeftError } from '@weft/core'

export interface TokenizerFiles { json: Uint8Array; config: Uint8Array | null }

export interface ToTokenizer { id: number; key: string; files?: TokenizerFiles; texts: string[] }

export type FromTokenizer = { id: number; ids: number[][] } | { id: number; error: string }

// run from the TypeScript sources (this checkout), the worker starts through a boot file that registers tsx and the
// `@weft/source` export condition; built (dist/), it starts from the compiled module itself
const BOOT = import.meta.url.endsWith('.ts') ? new URL('./tokenizer-worker-boot.mjs', import.meta.url) : new URL('./tokenizer-worker.js', import.meta.url)

interface Call { resolve: (ids: number[][]) => void; reject: (error: unknown) => void }

export class TokenizerThread {
  private worker: Worker | null = null
  private nextId = 1
  private readonly calls = new Map<number, Call>()
  /** model keys whose tokenizer the current worker has (the files go with the first call only) */
  private readonly loaded = new Set<string>()
  private closed = false

  /** Token ids of each text, computed off the calling thread. `key` names the tokenizer (e.g. model + revision). */
  async tokenize (key: string, files: TokenizerFiles, texts: string[]): Promise<number[][]> {
    if (this.closed) throw new WeftError('PROVIDER_UNAVAILABLE', 'the provider is shutting down')
    const worker = this.start()
    const id = this.nextId++
    const first = !this.loaded.has(key)
    this.loaded.add(key)
    const done = new Promise<number[][]>((resolve, reject) => this.calls.set(id, { resolve, reject }))
    worker.postMessage({ id, key, texts, ...(first ? { files } : {}) } satisfies ToTokenizer)
    // the thread keeps the process alive only while it has work
    worker.ref()
    try { return await done } finally { if (this.calls.size === 0) this.worker?.unref() }
  }

  private start (): Worker {
    if (this.worker !== null) return this.worker
    const worker = new Worker(BOOT)
    worker.on('message', (message: FromTokenizer) => {
      const call = this.calls.get(message.id)
      if (call === undefined) return
      this.calls.delete(message.id)
      if ('ids' in message) call.resolve(message.ids)
      else call.reject(new WeftError('PROGRAM_INVALID', `text could not be tokenized: ${message.error}`))
    })
    const lost = (reason: string): void => {
      if (this.worker !== worker) return
      this.worker = null
      this.loaded.clear()
      for (const call of this.calls.values()) call.reject(new WeftError('INTERNAL', `the tokenizer thread stopped (${reason}); the request was not charged`))
      this.calls.clear()
    }
    worker.on('error', error => lost(error.message))
    worker.on('exit', code => lost(`exit ${code}`))
    worker.unref()
    this.worker = worker
    return worker
  }

  async close (): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.worker = null
    for (const call of this.calls.values()) call.reject(new WeftError('PROVIDER_UNAVAILABLE', 'the provider is shutting down'))
    this.calls.clear()
    await worker?.terminate()
  }
}
