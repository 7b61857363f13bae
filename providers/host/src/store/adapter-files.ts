/**
 * Adapter values on disk: one file per kept adapter in the provider's adapter directory, holding the deterministic
 * CBOR map param name → tensor. A file is written under a temporary name, fsynced, renamed to its final name and the
 * directory fsynced, all before the store commits the row naming it: a row always names a complete file, and a crash
 * (kill -9, power loss) before the commit leaves a file no row names, which `sweep` deletes at start.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { WeftError, decodeCbor, encodeCbor, isTensor, sha256Digest, type Tensor } from '@weft/core'

const SUFFIX = '.cbor'
const TEMP = '.tmp'
/** adapter files are at most a few params of ≤ 2^24 float32 elements; allow 1 GiB of CBOR */
const READ_LIMITS = { maxBytes: 2 ** 30, maxStringBytes: 2 ** 30 }

export interface WrittenFile { file: string; digest: string; bytes: number }

export class AdapterFiles {
  constructor (readonly dir: string) {
    mkdirSync(dir, { recursive: true })
  }

  /** Writes the values durably under a fresh name (temp file, fsync, rename, fsync of the directory). */
  write (values: Record<string, Tensor>): WrittenFile {
    const encoded = encodeCbor(values)
    const file = `adp_${randomBytes(16).toString('hex')}${SUFFIX}`
    const temp = path.join(this.dir, `${file}${TEMP}`)
    const fd = openSync(temp, 'wx', 0o600)
    try {
      let offset = 0
      while (offset < encoded.byteLength) offset += writeSync(fd, encoded, offset, encoded.byteLength - offset)
      fsyncSync(fd)
    } catch (error) {
      closeSync(fd)
      rmSync(temp, { force: true })
      throw error
    }
    closeSync(fd)
    renameSync(temp, path.join(this.dir, file))
    this.syncDir()
    return { file, digest: sha256Digest(encoded), bytes: Object.values(values).reduce((n, t) => n + t.data.byteLength, 0) }
  }

  /** The raw file, checked against the digest its row recorded (a damaged file is a provider fault, never silently used). */
  readBytes (file: string, digest: string): Uint8Array {
    let bytes: Uint8Array
    try { bytes = readFileSync(this.pathOf(file)) } catch (error) {
      throw new WeftError('INTERNAL', `adapter file ${file} cannot be read: ${(error as Error).message}`, { file })
    }
    const got = sha256Digest(bytes)
    if (got !== digest) throw new WeftError('INTERNAL', `adapter file ${file} is damaged (digest ${got}, recorded ${digest})`, { file })
    return bytes
  }

  read (file: string, digest: string): Record<string, Tensor> {
    const values = decodeCbor(this.readBytes(file, digest), READ_LIMITS) as Record<string, Tensor>
    if (typeof values !== 'object' || values === null || !Object.values(values).every(isTensor)) {
      throw new WeftError('INTERNAL', `adapter file ${file} does not hold a map of tensors`, { file })
    }
    return values
  }

  /** Deletes a file (missing is fine: a delete interrupted after its row was removed). */
  remove (file: string): void {
    rmSync(this.pathOf(file), { force: true })
  }

  /** Deletes every file no row names (and temp files): what a crash between a write and its commit left. */
  sweep (known: ReadonlySet<string>): string[] {
    const removed: string[] = []
    for (const entry of readdirSync(this.dir)) {
      if (entry.endsWith(TEMP) || (entry.endsWith(SUFFIX) && !known.has(entry))) {
        rmSync(path.join(this.dir, entry), { force: true })
        removed.push(entry)
      }
    }
    if (removed.length > 0) this.syncDir()
    return removed
  }

  private pathOf (file: string): string {
    if (!/^adp_[0-9a-f]{32}\.cbor$/.test(file)) throw new WeftError('INTERNAL', `not an adapter file name: ${file}`)
    return path.join(this.dir, file)
  }

  private syncDir (): void {
    try {
      const fd = openSync(this.dir, 'r')
      try { fsyncSync(fd) } finally { closeSync(fd) }
    } catch { /* some file systems do not fsync directories; the rename is still atomic */ }
  }
}
