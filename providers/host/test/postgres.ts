/**
 * A real PostgreSQL server for tests and the bench: Debian's `postgresql` package (initdb, pg_ctl), a fresh cluster
 * in a temporary directory on a free 127.0.0.1 port, run as an unprivileged user (`nobody` when we are root: the
 * server refuses to run as root). Trust authentication on loopback only; fsync off (throwaway data).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'

export interface Postgres {
  url: (db?: string) => string
  createDatabase: (name?: string) => Promise<string>
  /** pids of the server's processes now (postmaster and its backends: the bench sums their CPU time) */
  pids: () => number[]
  stop: () => Promise<void>
}

function binDir (): string {
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter(v => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : []
  if (versions.length === 0) throw new Error("PostgreSQL's server binaries were not found under /usr/lib/postgresql: install Debian's `postgresql` package (.ci/run does)")
  return path.join(root, versions[0]!, 'bin')
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

export async function startPostgres (): Promise<Postgres> {
  const bin = binDir()
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-pg-'))
  const root = process.getuid?.() === 0
  const asUser = (file: string, args: string[]): void => {
    const [cmd, argv] = root ? ['runuser', ['-u', 'nobody', '--', file, ...args]] : [file, args]
    execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir })
  }
  if (root) { chownSync(dir, 65534, 65534); chmodSync(dir, 0o700) }
  const data = path.join(dir, 'data')
  asUser(path.join(bin, 'initdb'), ['-D', data, '-U', 'weft', '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-instructions'])
  const port = await freePort()
  asUser(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, 'start'])
  const url = (db = 'postgres'): string => `postgres://weft@127.0.0.1:${port}/${db}`
  let next = 0
  return {
    url,
    async createDatabase (name = `weft_${process.pid}_${next++}`) {
      const client = new pg.Client(url())
      await client.connect()
      try { await client.query(`CREATE DATABASE "${name}"`) } finally { await client.end() }
      return url(name)
    },
    pids () {
      const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
      const children = readdirSync('/proc').filter(d => /^\d+$/.test(d)).map(Number).filter(pid => {
        try { const stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster } catch { return false }
      })
      return [postmaster, ...children]
    },
    async stop () {
      try { asUser(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']) } catch { /* already stopped */ }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
