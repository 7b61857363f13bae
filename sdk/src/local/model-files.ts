/**
 * Finds models on disk for embedded mode: `WEFT_MODELS`, else the nearest `models/` folder from the working
 * directory upwards, else the repository's own `models/`. A model is a checkpoint folder or an `.onnx` file.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WeftError, isHubName, resolveHubModel } from '@weft/core'

/** The models folder embedded mode reads, by the rules above. */
export function defaultModelsDir (cwd = process.cwd()): string {
  const fromEnv = process.env.WEFT_MODELS
  if (fromEnv !== undefined && fromEnv !== '') return resolve(cwd, fromEnv)
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, 'models')
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate
    if (dirname(dir) === dir) break
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../models')
}

/**
 * The path to hand the backend for `name`: a checkpoint folder (config.json) or an .onnx file under `modelsDir`,
 * or for `org/name[@revision]` the snapshot in the Hugging Face cache (HF_HUB_CACHE / HF_HOME, offline).
 */
export function resolveModelPath (modelsDir: string, name: string): string {
  // `org/name[@revision]` comes from the Hugging Face cache unless the models folder has such a folder
  if (isHubName(name) && !existsSync(join(modelsDir, name, 'config.json'))) return resolveHubModel(name).path
  if (name.includes('..') || name.startsWith('/')) throw new WeftError('MODEL_NOT_FOUND', `model name '${name}' must be a plain folder name under ${modelsDir}`)
  const folder = join(modelsDir, name)
  if (existsSync(join(folder, 'config.json'))) return folder
  if (existsSync(join(folder, 'model.onnx'))) return join(folder, 'model.onnx')
  if (existsSync(`${folder}.onnx`)) return `${folder}.onnx`
  const known = listModelNames(modelsDir)
  throw new WeftError('MODEL_NOT_FOUND', `no model '${name}' in ${modelsDir} (found: ${known.join(', ') || 'none'}); set WEFT_MODELS or pass { modelsDir }`, { name, modelsDir })
}

/** Model names available under `modelsDir`. */
export function listModelNames (modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return []
  return readdirSync(modelsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory()
      ? existsSync(join(modelsDir, entry.name, 'config.json')) || existsSync(join(modelsDir, entry.name, 'model.onnx'))
      : entry.name.endsWith('.onnx'))
    .map((entry) => entry.name.replace(/\.onnx$/, ''))
    .sort()
}
