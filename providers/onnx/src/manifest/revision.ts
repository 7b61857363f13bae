/**
 * Revision digests: `sha256:` + SHA-256 over the weight files (sorted by name, bytes in order), memoised in the
 * cache folder by (path, size, mtime) so a large checkpoint is hashed once.
 */
import { createHash } from 'node:crypto'
import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { progress, type Progress } from '@weft/core'

export function fileDigest (file: string): string {
  return 'sha256:' + createHash('sha256').update(readFileSync(file)).digest('hex')
}

function hashInto (hash: ReturnType<typeof createHash>, file: string, bar?: Progress): void {
  const fd = openSync(file, 'r')
  const chunk = Buffer.alloc(8 << 20)
  try {
    for (let position = 0; ;) {
      const n = readSync(fd, chunk, 0, chunk.length, position)
      if (n === 0) break
      hash.update(n === chunk.length ? chunk : chunk.subarray(0, n))
      position += n
      bar?.tick(n)
    }
  } finally { closeSync(fd) }
}

/** Digest of the weight files `names` in `dir` (sorted by name). */
export function revisionDigest (dir: string, names: string[], cacheRoot?: string): string {
  const sorted = [...names].sort()
  const stamp = sorted.map(name => {
    const stat = statSync(path.join(dir, name))
    return `${path.resolve(dir, name)}|${stat.size}|${stat.mtimeMs}`
  }).join('\n')
  const memo = cacheRoot === undefined ? undefined : path.join(cacheRoot, 'digests', createHash('sha256').update(stamp).digest('hex').slice(0, 32))
  if (memo !== undefined) {
    try { return readFileSync(memo, 'utf8') } catch { /* not memoised yet */ }
  }
  const hash = createHash('sha256')
  const total = sorted.reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0)
  const bar = progress(`hashing ${path.basename(path.resolve(dir))}`, total)
  for (const name of sorted) hashInto(hash, path.join(dir, name), bar)
  bar.end()
  const digest = 'sha256:' + hash.digest('hex')
  if (memo !== undefined) {
    mkdirSync(path.dirname(memo), { recursive: true })
    writeFileSync(memo, digest)
  }
  return digest
}
