/**
 * Body of the host's tokenizer thread: tokenizes text invokes with a model's tokenizer.json (+ tokenizer_config.json),
 * so a large text never blocks the HTTP event loop. Tokenizers are built once per tokenizer key (its digest) and kept.
 */
import { parentPort } from 'node:worker_threads'
import { textTokenizer, type TextTokenizer } from '@weft/core'
import type { FromTokenizer, ToTokenizer } from './tokenizer-thread.js'

const port = parentPort
if (port === null) throw new Error('tokenizer-worker.ts must run in a worker thread')
const tokenizers = new Map<string, TextTokenizer>()

port.on('message', (message: ToTokenizer) => {
  try {
    if (message.files !== undefined) {
      tokenizers.set(message.key, textTokenizer(message.files.json, message.files.config))
    }
    const tokenizer = tokenizers.get(message.key)
    if (tokenizer === undefined) throw new Error(`no tokenizer loaded for '${message.key}'`)
    const ids = message.texts.map(text => tokenizer.encode(text))
    port.postMessage({ id: message.id, ids } satisfies FromTokenizer)
  } catch (error) {
    port.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) } satisfies FromTokenizer)
  }
})
