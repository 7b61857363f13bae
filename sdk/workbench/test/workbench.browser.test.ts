/**
 * The workbench driven in a real Chromium (Debian's `chromium`, through playwright-core; nothing is downloaded):
 * embedded — the logit lens reads " Paris" at the last layer and position, the IOI patching sweep's per-layer
 * recovery, the model view's search, bad input as messages, keyboard use, desktop and phone screenshots; and against
 * a closed provider process on 127.0.0.1 — page load time, the egress budget going down after a run, a verified
 * receipt, and the policy's refusal of the logit lens shown in the page.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { newKeyFile, writeKeyFile } from '@weft/core'
import { createBackend, startWorkbench, type Backend, type WorkbenchServer } from '../src/index.js'
import { reference, referencePrompts, row } from '../../test/fixtures/reference.js'
import { startProviderProcess, type ProviderProcess } from '../../../providers/host/test/process.js'
import { DEMO, tempDb } from '../../../providers/host/test/helpers.js'

const CHROMIUM = '/usr/bin/chromium'
const SHOTS = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url))
const MODEL = 'demo-gpt2'
const hasChromium = existsSync(CHROMIUM)
if (!hasChromium) console.warn(`workbench browser tests skipped: ${CHROMIUM} is absent (apt-get install -y chromium; .ci/run installs it)`)

const softmaxAt = (logits: Float64Array, id: number): number => {
  const max = Math.max(...logits)
  return Math.exp(logits[id]! - max) / logits.reduce((a, v) => a + Math.exp(v - max), 0)
}

let browser: Browser

async function launch (): Promise<Browser> {
  const { chromium } = await import('playwright-core')
  return await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
}

async function newPage (width = 1280, height = 800): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height } })
  page.on('pageerror', error => { throw new Error(`page error: ${error.message}`) })
  return page
}

const shot = async (page: Page, name: string): Promise<void> => {
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

/** Runs the form on screen with the keyboard (Tab to Run, Enter) and waits until the run ends. */
async function runWithKeyboard (page: Page, firstField: string): Promise<void> {
  await page.getByRole('button', { name: 'Run' }).waitFor()   // enabled once the models are listed
  await page.focus(firstField)
  for (let i = 0; i < 12; i++) {
    if (await page.evaluate("document.activeElement?.textContent === 'Run'")) break
    await page.keyboard.press('Tab')
  }
  expect(await page.evaluate('document.activeElement?.textContent')).toBe('Run')
  await page.keyboard.press('Enter')
  await page.waitForSelector('[data-testid="result"], .problem', { timeout: 90_000 })
  const problem = page.locator('.problem')
  if (await problem.count() > 0) throw new Error(`the run failed in the page: ${await problem.first().textContent()}`)
}

describe.skipIf(!hasChromium)('workbench in Chromium', () => {
  beforeAll(async () => { browser = await launch() })
  afterAll(async () => { await browser?.close() })

  describe('embedded (models/)', () => {
    let backend: Backend
    let server: WorkbenchServer
    beforeAll(async () => {
      backend = await createBackend({ mode: 'embedded' })
      server = await startWorkbench(backend, { port: 0 })
    })
    afterAll(async () => { await server?.close(); await backend?.close() })

    test('logit lens of "The capital of France is": " Paris" in the heatmap cell of the last layer at the last position', async () => {
      const page = await newPage()
      await page.goto(`${server.url}/#/experiments/logit-lens`)
      const prompt = referencePrompts(MODEL).prompts[0]!
      expect(prompt).toBe('The capital of France is')
      await page.getByLabel('Prompt').fill(prompt)
      // the code panel shows the Program's TypeScript with the prompt as typed
      expect(await page.getByTestId('program-source').textContent()).toContain(`model.trace("${prompt}"`)
      await runWithKeyboard(page, '#f-logit-lens-prompt')
      const last = page.locator('[data-testid="lens"] tbody tr:last-child td:last-child')
      expect(await page.locator('[data-testid="lens"] tbody tr:last-child th').textContent()).toBe('layer 5')
      expect(await last.locator('.tok').getAttribute('data-token')).toBe(' Paris')
      expect(await last.locator('.tok').textContent()).toBe('␣Paris')
      // its probability is the transformers model's own softmax at the last position
      const [paris] = await (await backend.weft.model(MODEL)).tokenize(' Paris')
      const expected = softmaxAt(row(reference(MODEL, 'p0.logits'), -1), paris!)
      expect(Number(await last.getAttribute('data-value'))).toBeCloseTo(expected, 4)
      expect(await page.getByTestId('progress').textContent()).toMatch(/completed in \d+ ms/)
      expect(await page.getByTestId('result').textContent()).toContain('embedded run: no provider signs a receipt')
      // the downloads answer with safetensors, CBOR and JSON
      const links = await page.locator('.downloads a').evaluateAll(as => as.map(a => (a as unknown as { href: string }).href))
      const [tensors, cbor, json] = await Promise.all(links.slice(0, 3).map(async href => await fetch(href)))
      const header = new DataView((await tensors!.arrayBuffer()))
      expect(Number(header.getBigUint64(0, true))).toBeGreaterThan(10)
      expect(cbor!.headers.get('content-type')).toBe('application/cbor')
      expect(((await json!.json()) as { model: { name: string } }).model.name).toBe(MODEL)
      await shot(page, 'logit-lens')
      await page.setViewportSize({ width: 390, height: 844 })
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390)
      await shot(page, 'logit-lens-phone')
      await page.close()
    })

    test('IOI patching sweep: the per-layer recovery, from the transformers clean logit difference to 1 at the last layer', async () => {
      const page = await newPage()
      await page.goto(`${server.url}/#/experiments/patching`)
      // the defaults are the first IOI template of training_data_spec.json with the names swapped
      expect(await page.getByLabel('Clean prompt').inputValue()).toBe(referencePrompts(MODEL).prompts[1])
      expect(await page.getByLabel('Corrupted prompt').inputValue()).toBe('When John and Mary went to the store, Mary gave a drink to')
      await page.getByRole('button', { name: 'Run' }).click()
      await page.waitForSelector('[data-testid="layer-recovery"]', { timeout: 90_000 })
      const logits = row(reference(MODEL, 'p1.logits'), -1)
      const model = await backend.weft.model(MODEL)
      const [[mary], [john]] = [await model.tokenize(' Mary'), await model.tokenize(' John')]
      expect(Number(await page.getByTestId('clean-diff').textContent())).toBeCloseTo(logits[mary]! - logits[john]!, 2)
      expect(Number(await page.getByTestId('corrupt-diff').textContent())).toBeLessThan(0)
      const recovery = await page.locator('[data-testid="layer-recovery"] td').evaluateAll(cells => cells.map(c => Number((c as unknown as { dataset: { value: string } }).dataset.value)))
      expect(recovery).toHaveLength(6)
      expect(recovery.at(-1)!).toBeCloseTo(1, 4)           // patching the last layer's output restores the clean run
      expect(recovery[0]!).toBeLessThan(0.5)                // the name information has not yet moved to the last position
      expect(await page.locator('[data-testid="patching-heads"] tbody tr').count()).toBe(6)
      expect(await page.locator('[data-testid="patching-heads"] tbody tr:first-child td').count()).toBe(8)
      await shot(page, 'patching')
      await page.close()
    })

    test('fabric, model (searchable module tree) and attention views; bad input is a message, never a blank page', async () => {
      const page = await newPage()
      await page.goto(`${server.url}/#/fabric`)
      await page.waitForSelector('[data-testid="provider"]')
      expect(await page.getByTestId('provider').textContent()).toContain(MODEL)
      await shot(page, 'fabric-embedded')

      await page.getByRole('link', { name: MODEL, exact: true }).click()
      await page.waitForSelector('[data-testid="modules"]')
      expect(await page.locator('[data-testid="modules"]').textContent()).toContain('[batch, seq, 256] float32')
      await page.getByLabel('Search modules').fill('h.3.attn')
      await page.waitForFunction('document.querySelectorAll(\'[data-testid="modules"] tbody tr\').length < 30')
      const paths = await page.locator('[data-testid="modules"] tbody tr th .path').allTextContents()
      expect(paths.length).toBeGreaterThan(1)
      expect(paths.every(p => p.includes('transformer') && (p.includes('h.3.attn') || !p.includes('h.3.')))).toBe(true)
      await shot(page, 'model')

      await page.goto(`${server.url}/#/experiments/attention`)
      await page.getByLabel('Layer', { exact: true }).fill('2')
      await page.getByRole('button', { name: 'Run' }).click()
      await page.waitForSelector('[data-testid="attention-head-7"]')
      // causal attention: the first query attends only to itself
      expect(Number(await page.locator('[data-testid="attention-head-0"] tbody tr:first-child td:first-of-type').getAttribute('data-value'))).toBeCloseTo(1, 5)
      await shot(page, 'attention')

      // bad input: a layer that does not exist, an empty prompt, text for a number, an unknown view
      await page.getByLabel('Layer', { exact: true }).fill('99')
      await page.getByRole('button', { name: 'Run' }).click()
      expect(await page.getByRole('alert').textContent()).toContain('layer 99 does not exist')
      await page.getByLabel('Layer', { exact: true }).fill('two')
      await page.getByRole('button', { name: 'Run' }).click()
      expect(await page.getByRole('alert').textContent()).toContain('layer must be a whole number')
      await page.goto(`${server.url}/#/experiments/patching`)
      await page.getByLabel('Answer token').fill(' Mary Jane')
      await page.getByRole('button', { name: 'Run' }).click()
      await page.waitForSelector('.problem')
      expect(await page.getByRole('alert').textContent()).toContain('must be exactly one')
      await page.goto(`${server.url}/#/experiments/nonsense`)
      expect(await page.getByRole('alert').textContent()).toContain("no experiment 'nonsense'")
      await page.goto(`${server.url}/#/model/no-such-model`)
      expect(await page.getByRole('alert').textContent()).toContain('MODEL_NOT_FOUND')
      await page.close()
    })

    test('steering: generation with the vector, progress as step k of n', async () => {
      const page = await newPage()
      await page.goto(`${server.url}/#/experiments/steering`)
      await page.getByRole('button', { name: 'Run' }).click()
      await page.waitForSelector('[data-testid="steering"]', { timeout: 90_000 })
      expect(await page.getByTestId('plain').textContent()).toMatch(/^ Paris/)
      expect(await page.getByTestId('steered').textContent()).toMatch(/^ Tokyo/)
      await shot(page, 'steering')
      await page.close()
    })
  })

  describe('against a closed provider process on 127.0.0.1', () => {
    let provider: ProviderProcess
    let backend: Backend
    let server: WorkbenchServer
    beforeAll(async () => {
      const key = newKeyFile()
      const keyFile = join(mkdtempSync(join(tmpdir(), 'weft-workbench-')), 'me.json')
      writeKeyFile(keyFile, key)
      provider = await startProviderProcess(['--model', DEMO, '--db', tempDb('workbench'), '--policy', 'closed',
        '--egress-per-key-per-day', '1MB', '--egress-per-day', '50MB', '--register', key.publicKey])
      backend = await createBackend({ mode: 'provider', provider: provider.url, key: keyFile })
      server = await startWorkbench(backend, { port: 0 })
    })
    afterAll(async () => { await server?.close(); await backend?.close(); await provider?.stop() })

    test('the page loads in under a second; a run takes egress and the remaining budget goes down; the receipt verifies', async () => {
      const page = await newPage()
      const started = performance.now()
      await page.goto(`${server.url}/#/fabric`, { waitUntil: 'load' })
      const loaded = performance.now() - started
      await page.waitForSelector('[data-testid="egress-remaining"]')
      const rendered = performance.now() - started
      writeFileSync(join(tmpdir(), 'weft-workbench-load.json'), JSON.stringify({ loadMs: loaded, fabricRenderedMs: rendered }))
      console.log(`workbench page load from a provider on loopback: load event ${loaded.toFixed(0)} ms, fabric rendered ${rendered.toFixed(0)} ms`)
      expect(loaded).toBeLessThan(1000)
      expect(await page.getByTestId('policy').textContent()).toBe('closed')
      expect(await page.getByTestId('health').textContent()).toBe('ok')
      const before = Number(await page.getByTestId('egress-remaining').getAttribute('data-bytes'))
      expect(before).toBe(1_000_000)
      await shot(page, 'fabric-closed-provider')

      // the logit lens applies modules to arbitrary tensors (module_call): this closed model refuses it, in the page
      await page.goto(`${server.url}/#/experiments/logit-lens`)
      await page.getByRole('button', { name: 'Run' }).click()
      await page.waitForSelector('.problem')
      expect(await page.getByRole('alert').textContent()).toContain('POLICY_DENIED')

      await page.goto(`${server.url}/#/experiments/patching`)
      await page.getByLabel('Also patch each head').uncheck()
      await page.getByRole('button', { name: 'Run' }).click()
      await page.waitForSelector('[data-testid="layer-recovery"]', { timeout: 90_000 })
      expect(await page.getByTestId('receipt').textContent()).toBe('verified')
      expect(await page.getByTestId('run-egress').textContent()).toMatch(/\d+ B taken/)

      await page.goto(`${server.url}/#/fabric`)
      await page.waitForSelector('[data-testid="egress-remaining"]')
      const after = Number(await page.getByTestId('egress-remaining').getAttribute('data-bytes'))
      expect(after).toBeLessThan(before)
      expect(Number(await page.getByTestId('egress-used').getAttribute('data-bytes'))).toBe(before - after)
      await page.close()
    })
  })
})
