import { describe, expect, test } from 'vitest'
import { WeftError } from '../src/index.js'

describe('WeftError.fromWire', () => {
  test('keeps a known code', () => {
    expect(WeftError.fromWire({ code: 'JOB_NOT_FOUND', message: 'x', details: {} }).status).toBe(404)
  })

  test('an unknown code, inherited Object members included, becomes INTERNAL', () => {
    for (const code of ['NOPE', 'constructor', 'toString', '__proto__']) {
      const error = WeftError.fromWire({ code: code as never, message: 'x', details: {} })
      expect(error.code).toBe('INTERNAL')
      expect(error.status).toBe(500)
    }
  })
})
