// Progress output: percentage lines every 10 % off a terminal, a redrawn bar on one, nothing unless WEFT_PROGRESS=1.
import { afterEach, expect, test } from 'vitest'
import { progress } from '../src/index.js'

const sink = (isTTY: boolean) => {
  const writes: string[] = []
  return { writes, stream: { isTTY, write: (s: string) => { writes.push(s); return true } } as unknown as NodeJS.WriteStream }
}
afterEach(() => { delete process.env.WEFT_PROGRESS })

test('silent unless WEFT_PROGRESS=1, and for small byte totals', () => {
  const { writes, stream } = sink(false)
  progress('hashing', 100 << 20, { stream }).tick(50 << 20)
  process.env.WEFT_PROGRESS = '1'
  progress('hashing', 1 << 20, { stream }).end()
  expect(writes).toEqual([])
})

test('off a terminal: one line per 10 % step and a final 100 %', () => {
  process.env.WEFT_PROGRESS = '1'
  const { writes, stream } = sink(false)
  const bar = progress('hashing demo', 100 << 20, { stream })
  for (let i = 0; i < 40; i++) bar.tick(2.5 * (1 << 20))
  bar.end()
  expect(writes.map(w => w.split(':')[1]!.trim().split(' ')[0])).toEqual(['0%', '10%', '20%', '30%', '40%', '50%', '60%', '70%', '80%', '90%', '100%'])
  expect(writes.at(-1)).toBe('hashing demo: 100% (100.0 MiB / 100.0 MiB)\n')
})

test('on a terminal: a bar redrawn in place, ending with a newline', () => {
  process.env.WEFT_PROGRESS = '1'
  const { writes, stream } = sink(true)
  const bar = progress('weft cache', 2, { stream, unit: 'items' })
  bar.tick(1)
  bar.end()
  expect(writes[0]).toMatch(/^\rweft cache \[#{12} {12}\]  50% 1 \/ 2$/)
  expect(writes.at(-1)).toMatch(/^\rweft cache \[#{24}\] 100% 2 \/ 2 \d+\.\d s\n$/)
})
