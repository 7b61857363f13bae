/**
 * Models by Hugging Face name, read offline from the hub cache the `huggingface_hub` library writes:
 * `<cache>/models--<org>--<name>/{refs/<ref>, snapshots/<commit>/<file>, blobs/<etag>}` with the cache at
 * `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
 * Nothing is downloaded: a model missing from the cache is a MODEL_NOT_FOUND naming the folder looked in.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { WeftError } from '../errors/weft-error.js'

export interface HubModel {
  /** `org/name` */
  repo: string
  /** the snapshot folder (config.json, model.safetensors, tokenizer.json, or model.onnx) */
  path: string
  /** the commit the revision resolved to */
  commit: string
  /** what was asked for: a ref (`main`, a branch or tag) or a commit */
  revision: string
}

const PART = '[A-Za-z0-9][A-Za-z0-9._-]*'
const HUB_NAME = new RegExp(`^(${PART})/(${PART})(?:@([A-Za-z0-9._/-]+))?$`)
const COMMIT = /^[0-9a-f]{40}$/

/** `org/name` or `org/name@revision`: a hub name rather than a path (no `./`, `/`-leading or `..` parts). */
export function isHubName (name: string): boolean {
  return HUB_NAME.test(name) && !name.split(/[/@]/).some(part => part === '..' || part === '.')
}

export function parseHubName (name: string): { repo: string; revision: string } | null {
  const match = HUB_NAME.exec(name)
  if (match === null || !isHubName(name)) return null
  return { repo: `${match[1]}/${match[2]}`, revision: match[3] ?? 'main' }
}

/** The hub cache folder, by the environment rules huggingface_hub uses. */
export function hubCacheDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return resolve(env.HF_HUB_CACHE)
  if (env.HUGGINGFACE_HUB_CACHE) return resolve(env.HUGGINGFACE_HUB_CACHE)
  if (env.HF_HOME) return resolve(env.HF_HOME, 'hub')
  const xdg = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache')
  return join(xdg, 'huggingface', 'hub')
}

/**
 * Resolves `org/name[@revision]` (or `repo` plus `options.revision`) to its snapshot folder in the hub cache.
 * The revision is a commit hash, or a ref whose file under `refs/` names the commit (default `main`).
 */
export function resolveHubModel (name: string, options: { revision?: string; cacheDir?: string } = {}): HubModel {
  const parsed = parseHubName(name)
  if (parsed === null) throw new WeftError('MODEL_NOT_FOUND', `'${name}' is not a Hugging Face model name (org/name or org/name@revision)`, { name })
  const revision = options.revision ?? parsed.revision
  const cacheDir = options.cacheDir ?? hubCacheDir()
  const repoDir = join(cacheDir, `models--${parsed.repo.replace('/', '--')}`)
  const hint = `download it first (e.g. \`hf download ${parsed.repo}\`), or set HF_HOME / HF_HUB_CACHE`
  if (!existsSync(repoDir)) throw new WeftError('MODEL_NOT_FOUND', `${parsed.repo} is not in the Hugging Face cache (${repoDir} does not exist); ${hint}`, { name, cacheDir })
  let commit: string
  if (COMMIT.test(revision)) commit = revision
  else {
    if (revision.split('/').some(part => part === '..' || part === '.' || part === '')) throw new WeftError('MODEL_NOT_FOUND', `bad revision '${revision}'`, { name, revision })
    const ref = join(repoDir, 'refs', revision)
    if (!existsSync(ref)) {
      const refs = existsSync(join(repoDir, 'refs')) ? readdirSync(join(repoDir, 'refs')) : []
      throw new WeftError('MODEL_NOT_FOUND', `${parsed.repo} has no ref '${revision}' in the cache (refs: ${refs.join(', ') || 'none'}); pass a commit hash or a cached ref`, { name, revision })
    }
    commit = readFileSync(ref, 'utf8').trim()
    if (!COMMIT.test(commit)) throw new WeftError('MODEL_NOT_FOUND', `${ref} does not hold a commit hash`, { name, revision })
  }
  const path = join(repoDir, 'snapshots', commit)
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    const snapshots = existsSync(join(repoDir, 'snapshots')) ? readdirSync(join(repoDir, 'snapshots')) : []
    throw new WeftError('MODEL_NOT_FOUND', `${parsed.repo}: no snapshot ${commit} in the cache (snapshots: ${snapshots.map(s => s.slice(0, 12)).join(', ') || 'none'}); ${hint}`, { name, revision, commit })
  }
  const onnx = join(path, 'model.onnx')
  if (!existsSync(join(path, 'config.json')) && existsSync(onnx)) return { repo: parsed.repo, path: onnx, commit, revision }
  if (!existsSync(join(path, 'config.json'))) throw new WeftError('MODEL_NOT_FOUND', `${parsed.repo}@${commit.slice(0, 12)}: the snapshot has no config.json (only partly downloaded?); ${hint}`, { name, commit })
  return { repo: parsed.repo, path, commit, revision }
}
