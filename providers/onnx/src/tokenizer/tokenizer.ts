/** Tokenizers for checkpoint folders: tokenizer.json + tokenizer_config.json, built by core's `textTokenizer`. */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { WeftError, textTokenizer, type TextTokenizer, type TokenizerInfo } from '@weft/core'
import { fileDigest } from '../manifest/revision.js'

export type { TextTokenizer }

function readJson (file: string): Record<string, unknown> {
  try { return JSON.parse(readFileSync(file, 'utf8')) } catch (error) {
    throw new WeftError('MODEL_LOAD_FAILED', `${file} is not valid JSON`, { file }, { cause: error })
  }
}

/** Loads the folder's tokenizer, or returns null when it has no tokenizer.json. */
export function loadTokenizer (dir: string): TextTokenizer | null {
  const file = path.join(dir, 'tokenizer.json')
  if (!existsSync(file)) return null
  const configFile = path.join(dir, 'tokenizer_config.json')
  const config = existsSync(configFile) ? readJson(configFile) : {}
  return textTokenizer(readJson(file), config)
}

function idOf (value: unknown): number | null {
  return typeof value === 'number' ? value : Array.isArray(value) && typeof value[0] === 'number' ? value[0] : null
}

/** Manifest tokenizer info: digest of tokenizer.json, vocabulary size, BOS/EOS ids from config.json. */
export function tokenizerInfo (dir: string): TokenizerInfo | null {
  const file = path.join(dir, 'tokenizer.json')
  if (!existsSync(file)) return null
  const json = readJson(file) as { model?: { vocab?: Record<string, number> | unknown[] }; added_tokens?: { id: number }[] }
  const vocab = json.model?.vocab
  let size = Array.isArray(vocab) ? vocab.length : vocab ? Object.keys(vocab).length : 0
  for (const token of json.added_tokens ?? []) size = Math.max(size, token.id + 1)
  const config = existsSync(path.join(dir, 'config.json')) ? readJson(path.join(dir, 'config.json')) : {}
  return { digest: fileDigest(file), vocabSize: size, bosTokenId: idOf(config.bos_token_id), eosTokenId: idOf(config.eos_token_id) }
}
