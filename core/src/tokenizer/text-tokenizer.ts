/**
 * A model's text tokenizer from its tokenizer.json and tokenizer_config.json, through @huggingface/tokenizers (pure
 * JavaScript, no native code). The one way every package builds one: the engine from a checkpoint folder, the host's
 * tokenizer thread from the files it serves, the SDK from the files a provider serves (checked against the manifest).
 */
import { Tokenizer } from '@huggingface/tokenizers'
import { WeftError } from '../errors/weft-error.js'

export interface TextTokenizer {
  encode (text: string): number[]
  decode (ids: readonly number[]): string
}

/** A tokenizer file: its bytes (UTF-8 JSON), its text, or its parsed JSON. */
export type TokenizerFile = Uint8Array | string | Record<string, unknown>

const decoder = new TextDecoder()

function parsed (file: TokenizerFile, name: string): Record<string, unknown> {
  if (typeof file === 'object' && !(file instanceof Uint8Array)) return file
  try {
    const value: unknown = JSON.parse(typeof file === 'string' ? file : decoder.decode(file))
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object')
    return value as Record<string, unknown>
  } catch (error) {
    throw new WeftError('MODEL_LOAD_FAILED', `${name} is not a JSON object (${(error as Error).message})`, { file: name }, { cause: error })
  }
}

/** The tokenizer of `json` (tokenizer.json) with `config` (tokenizer_config.json: special tokens, flags; optional). */
export function textTokenizer (json: TokenizerFile, config: TokenizerFile | null = null): TextTokenizer {
  const tokenizerJson = parsed(json, 'tokenizer.json')
  const tokenizerConfig = config === null ? {} : parsed(config, 'tokenizer_config.json')
  let tokenizer: Tokenizer
  try {
    tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig)
  } catch (error) {
    throw new WeftError('MODEL_LOAD_FAILED', `tokenizer.json could not be loaded: ${(error as Error).message}`, { file: 'tokenizer.json' }, { cause: error })
  }
  return {
    encode: text => tokenizer.encode(text).ids,
    decode: ids => tokenizer.decode([...ids]),
  }
}
