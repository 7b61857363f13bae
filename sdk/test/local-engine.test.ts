// The local engine is an optional peer: Weft.local() loads @weft/onnx on first use; without it, a typed error says what to install.
import { expect, test } from 'vitest'
import { WeftError } from '@weft/core'
import { loadOnnxBackend } from '../src/local/local-executor.js'

test('a missing engine package is BACKEND_CAPABILITY_MISSING naming the package to install', async () => {
  let error: unknown
  try { await loadOnnxBackend('@weft/onnx-not-installed') } catch (e) { error = e }
  expect(WeftError.is(error, 'BACKEND_CAPABILITY_MISSING')).toBe(true)
  expect((error as Error).message).toBe('embedded mode (Weft.local) needs the local engine: `npm install @weft/onnx-not-installed` (or use Weft.connect to run on a provider)')
})

test('the installed engine loads', async () => {
  const backend = await loadOnnxBackend()
  expect(typeof backend.loadModel).toBe('function')
})
