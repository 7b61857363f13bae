/**
 * Body of the host's tokenizer thread: tokenizes text invokes with a model's tokenizer.json (+ tokenizer_config.json),
 * so a large text never blocks the HTTP event loop. Tokenizers are built once per tokenizer key (its digest) and kept.
 */
import { parentPort } from 'node:worker_threads'
import { Tokenizer } from '@huggingface/tokenizers'
import type { FromTokenizer, ToTokenizer } from './tokenizer-thread.js'

const port = parentPort
if (port === null) throw new Error('tokenizer-worker.ts must run in a worker thread')
const tokenizers = new Map<string, Tokenizer>()
const decoder = new TextDecoder()

port.on('message', (message: ToTokenizer) => {
  try {
    if (message.files !== undefined) {
      const json = JSON.parse(decoder.decode(message.files.json)) as Record<string, unknown>
      const config = message.files.config === null ? {} : JSON.parse(decoder.decode(message.files.config)) as Record<string, unknown>
      tokenizers.set(message.key, new Tokenizer(json, config))
    }
    const tokenizer = tokenizers.get(message.key)
    if (tokenizer === undefined) throw new Error(`no tokenizer loaded for '${message.key}'`)
    const ids = message.texts.map(text => tokenizer.encode(text).ids)
    port.postMessage({ id: message.id, ids } satisfies FromTokenizer)
  } catch (error) {
    port.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) } satisfies FromTokenizer)
  }
})
