/**
 * The packages as a user gets them (issue #12): build (`tsc -b`, incremental: a no-op when `npm run build` ran),
 * `npm pack` what a researcher installs (@weft/sdk, @weft/core, @weft/onnx), install the tarballs into an empty
 * project under the OS temp dir (no access to this repository's node_modules; registry dependencies from the npm
 * cache), and there run a plain `node` ESM script (the logit lens of demo-gpt2 embedded) and typecheck a TypeScript
 * consumer with `tsc --noEmit`. Runs in ~30-60 s, most of it npm unpacking onnxruntime-node.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, existsSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { generateKeyPair, toHex } from '@weft/core'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '../..')
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const PACKAGES = ['@weft/core', '@weft/onnx', '@weft/sdk']

// Nothing of this checkout's set-up leaks into the consumer: no `@weft/source` condition (NODE_OPTIONS from the
// repository's .npmrc), no npm_* settings of the `npm test` that started us.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !/^npm_/i.test(name)))
env.ONNXRUNTIME_NODE_INSTALL = 'skip'

const dir = mkdtempSync(path.join(tmpdir(), 'weft-pack-'))
const project = path.join(dir, 'project')
const timings: Record<string, number> = {}

async function timed<T> (label: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now()
  try { return await work() } finally { timings[label] = Math.round(performance.now() - start) }
}

beforeAll(async () => {
  await timed('build', () => run(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: root, env }))
  const tarballs = path.join(dir, 'tarballs')
  mkdirSync(tarballs)
  const packed = await timed('pack', () => run('npm', ['pack', '--json', '--pack-destination', tarballs, ...PACKAGES.flatMap(name => ['--workspace', name])], { cwd: root, env }))
  const files = (JSON.parse(packed.stdout) as { filename: string }[]).map(entry => path.join(tarballs, entry.filename))
  expect(files).toHaveLength(PACKAGES.length)

  mkdirSync(project)
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'weft-consumer', private: true, type: 'module' }))
  writeFileSync(path.join(project, '.npmrc'), 'onnxruntime-node-install=skip\n')
  // the consumer's types for Node, at the version this checkout uses (so it comes from the npm cache)
  const typesNode = (JSON.parse(readFileSync(path.join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version
  await timed('install', () => run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...files, `@types/node@${typesNode}`], { cwd: project, env, maxBuffer: 1 << 24 }))
}, 300_000)

afterAll(() => {
  console.log(`pack-install timings (ms): ${JSON.stringify(timings)}`)
  rmSync(dir, { recursive: true, force: true })
})

describe('packed and installed outside the repository', () => {
  test('each package ships built ESM + .d.ts, no TypeScript sources', () => {
    for (const name of PACKAGES) {
      const installed = path.join(project, 'node_modules', ...name.split('/'))
      const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> }
      expect(manifest.exports['.']!.import).toBe('./dist/index.js')
      expect(existsSync(path.join(installed, 'dist', 'index.js'))).toBe(true)
      expect(existsSync(path.join(installed, 'dist', 'index.d.ts'))).toBe(true)
      expect(existsSync(path.join(installed, 'src'))).toBe(false)
    }
  })

  test('a plain client pulls no provider or directory stack (hono, SQLite, libp2p)', () => {
    const modules = readdirSync(path.join(project, 'node_modules'))
    for (const heavy of ['hono', '@hono', 'better-sqlite3', 'drizzle-orm', 'libp2p', '@libp2p', '@chainsafe', 'tsx']) expect(modules).not.toContain(heavy)
    expect(readdirSync(path.join(project, 'node_modules', '@weft')).sort()).toEqual(['core', 'onnx', 'sdk'])
  })

  test('plain node: the logit lens of demo-gpt2 (embedded) at the last layer predicts " Paris"', async () => {
    writeFileSync(path.join(project, 'lens.mjs'), `import { Weft } from '@weft/sdk'
const [modelsDir, prompt] = process.argv.slice(2)
const weft = await Weft.local({ modelsDir })
const model = await weft.model('demo-gpt2')
const out = await model.trace(prompt, (m) => {
  const blocks = m.transformer.h
  const last = blocks[blocks.length - 1].output.at(0, -1)
  return { top: m.lm_head.call(m.transformer.ln_f.call(last)).topk(1).indices.save() }
})
console.log(JSON.stringify(model.token(out.top.toFlat()[0])))
await weft.close()
`)
    const { stdout } = await timed('node', () => run(process.execPath, ['lens.mjs', path.join(root, 'models'), 'The capital of France is'], { cwd: project, env }))
    expect(JSON.parse(stdout.trim())).toBe(' Paris')
  })

  test('routing without @weft/federation installed is BACKEND_CAPABILITY_MISSING naming the package', async () => {
    const script = `import { Weft } from '@weft/sdk'
try { await Weft.discover({ key: '11'.repeat(32), bootstrap: ['/ip4/127.0.0.1/tcp/1/p2p/x'] }) } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project, env })
    const error = JSON.parse(stdout.trim()) as { code: string; message: string }
    expect(error.code).toBe('BACKEND_CAPABILITY_MISSING')
    expect(error.message).toContain('npm install @weft/federation')
  })

  test('a TypeScript consumer typechecks against the shipped .d.ts (tsc --noEmit)', async () => {
    writeFileSync(path.join(project, 'consumer.ts'), `import { Weft, loadKey, saveTensors, type GPT2, type Model, type TopToken } from '@weft/sdk'

export async function lens (modelsDir: string, prompt: string): Promise<TopToken[]> {
  const weft = await Weft.local({ modelsDir })
  const model: Model<GPT2> = await weft.model<GPT2>('demo-gpt2')
  const out = await model.trace(prompt, (m) => ({ logits: m.lm_head.output.at(0, -1).save() }))
  await saveTensors('out.safetensors', out)
  await weft.close()
  return model.topTokens(out.logits, 3)
}
export const key = (file: string) => loadKey(file)
// @ts-expect-error GPT2 has no module \`nonexistent\` (fails as "unused" if the SDK's types were lost to any)
export const typo = (m: GPT2) => m.transformer.nonexistent
`)
    // skipLibCheck as `tsc --init` sets it: the SDK's routing declarations name the optional @weft/federation
    writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, noEmit: true, types: ['node'] },
      include: ['consumer.ts'],
    }))
    const result = await timed('tsc', () => run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, env }).then(r => r, (e: { stdout: string; code: number }) => e))
    expect(result.stdout).toBe('')
  })
})

describe('the built provider (dist/) in this checkout', () => {
  test('`weft provider start` from dist finds its engine worker and its migrations; a trace over HTTP predicts " Paris"', async () => {
    const weft = path.join(root, 'sdk', 'cli', 'test', 'fixtures', 'weft-dist.mjs')
    const child = spawn(process.execPath, [weft, 'provider', 'start', '--model', path.join(root, 'models', 'demo-gpt2'), '--port', '0', '--db', path.join(dir, 'provider.db')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no provider within 60 s:\n${output}`)), 60_000)
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString()
          const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
          if (found !== undefined && output.includes('models: demo-gpt2')) { clearTimeout(timer); resolve(found) }
        })
        child.once('exit', code => { clearTimeout(timer); reject(new Error(`provider exited (${code}):\n${output}`)) })
      })
      writeFileSync(path.join(project, 'remote.mjs'), `import { Weft } from '@weft/sdk'
const [provider, key] = process.argv.slice(2)
const weft = await Weft.connect({ provider, key })
const model = await weft.model('demo-gpt2')
const out = await model.trace('The capital of France is', (m) => ({ logits: m.lm_head.output.at(0, -1).save() }))
console.log(JSON.stringify(model.topTokens(out.logits, 1)[0].token))
await weft.close()
`)
      const { stdout } = await run(process.execPath, ['remote.mjs', url, toHex(generateKeyPair().secretKey)], { cwd: project, env })
      expect(JSON.parse(stdout.trim())).toBe(' Paris')
      expect(output).not.toMatch(/tsx|\.ts:/)
    } finally {
      child.kill('SIGTERM')
      await new Promise(resolve => child.exitCode !== null ? resolve(null) : child.once('exit', resolve))
    }
  })
})
