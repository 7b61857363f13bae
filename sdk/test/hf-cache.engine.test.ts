// Models by Hugging Face name: a hub cache laid out like huggingface_hub's (blobs/ + snapshots/ symlinks + refs/)
// is built from the demo checkpoint; names resolve offline to the same manifest and revision digest as the folder.
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WeftError, hubCacheDir, resolveHubModel } from '@weft/core'
import { loadModel } from '@weft/onnx'
import { Weft, type GPT2 } from '../src/index.js'
import { MODELS_DIR } from './fixtures/reference.js'

const DEMO = join(MODELS_DIR, 'demo-gpt2')
const MAIN = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef'
const OLD = 'b'.repeat(40)
let home: string
let hub: string

/** One snapshot: each file a relative symlink to its blob (named by content hash), as the hub cache stores them. */
function snapshot (repoDir: string, commit: string, files: string[]): void {
  const snap = join(repoDir, 'snapshots', commit)
  mkdirSync(snap, { recursive: true })
  for (const file of files) {
    const blob = createHash('sha256').update(file + commit).digest('hex')
    copyFileSync(join(DEMO, file), join(repoDir, 'blobs', blob))
    symlinkSync(join('..', '..', 'blobs', blob), join(snap, file))
  }
}

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'weft-hf-'))
  hub = join(home, 'hub')
  const repoDir = join(hub, 'models--weft-test--demo-gpt2')
  mkdirSync(join(repoDir, 'blobs'), { recursive: true })
  mkdirSync(join(repoDir, 'refs'), { recursive: true })
  const files = readdirSync(DEMO).filter(f => ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'].includes(f))
  snapshot(repoDir, MAIN, files)
  snapshot(repoDir, OLD, ['config.json', 'model.safetensors'])
  writeFileSync(join(repoDir, 'refs', 'main'), MAIN) // huggingface_hub writes the hash without a newline
  mkdirSync(join(repoDir, 'refs', 'pr'), { recursive: true })
  writeFileSync(join(repoDir, 'refs', 'pr', '1'), OLD + '\n')
  process.env.HF_HOME = home
  delete process.env.HF_HUB_CACHE
})

afterAll(() => { rmSync(home, { recursive: true, force: true }) })

describe('the hub cache layout', () => {
  test('the cache folder follows HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/x/hub', HF_HOME: '/y' })).toBe('/x/hub')
    expect(hubCacheDir({ HF_HOME: '/y' })).toBe('/y/hub')
    expect(hubCacheDir({ XDG_CACHE_HOME: '/z' })).toBe('/z/huggingface/hub')
    expect(hubCacheDir()).toBe(hub)
  })

  test('a name resolves by refs/main, by a nested ref, and by commit; snapshot files are symlinks into blobs/', () => {
    const main = resolveHubModel('weft-test/demo-gpt2')
    expect(main).toMatchObject({ repo: 'weft-test/demo-gpt2', commit: MAIN, revision: 'main', path: join(hub, 'models--weft-test--demo-gpt2', 'snapshots', MAIN) })
    expect(lstatSync(join(main.path, 'model.safetensors')).isSymbolicLink()).toBe(true)
    expect(resolveHubModel('weft-test/demo-gpt2@pr/1').commit).toBe(OLD)
    expect(resolveHubModel('weft-test/demo-gpt2', { revision: OLD }).commit).toBe(OLD)
    expect(resolveHubModel(`weft-test/demo-gpt2@${OLD}`).path.endsWith(OLD)).toBe(true)
  })

  test.each([
    ['weft-test/absent', /not in the Hugging Face cache/],
    ['weft-test/demo-gpt2@v9', /no ref 'v9'.*refs: main, pr/],
    [`weft-test/demo-gpt2@${'c'.repeat(40)}`, /no snapshot c{40}/],
    ['weft-test/demo-gpt2@../../x', /not a Hugging Face model name|bad revision/],
  ])('%s fails offline with MODEL_NOT_FOUND naming the problem', (name, message) => {
    let error: unknown
    try { resolveHubModel(name) } catch (e) { error = e }
    expect(WeftError.is(error, 'MODEL_NOT_FOUND')).toBe(true)
    expect((error as Error).message).toMatch(message)
  })
})

describe('loading by name', () => {
  test('loadModel(org/name) gives the manifest and revision digest of the folder form', async () => {
    const byName = await loadModel('weft-test/demo-gpt2')
    const byFolder = await loadModel(DEMO, { name: 'weft-test/demo-gpt2' })
    try {
      expect(byName.graph.manifest.name).toBe('weft-test/demo-gpt2')
      expect(byName.graph.manifest.revision).toBe(byFolder.graph.manifest.revision)
      expect(byName.graph.manifest).toEqual(byFolder.graph.manifest)
      expect(byName.tokenizer?.encode('The capital of France is')).toEqual(byFolder.tokenizer?.encode('The capital of France is'))
    } finally { await Promise.all([byName.dispose(), byFolder.dispose()]) }
  })

  test("weft.model('org/name') traces from the cache: the logit lens says ' Paris'", async () => {
    const weft = await Weft.local({ modelsDir: join(home, 'no-models-here') })
    try {
      const model = await weft.model<GPT2>('weft-test/demo-gpt2')
      const out = await model.trace('The capital of France is', m => ({ logits: m.lm_head.output.at(0, -1).save() }))
      expect(model.topTokens(out.logits, 1)[0]!.token).toBe(' Paris')
    } finally { await weft.close() }
  })
})
