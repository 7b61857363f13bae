/** Starts `weft provider start …` as a real child process on 127.0.0.1 and waits for its URL (e2e tests, bench). */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../../sdk/cli/bin/weft.mjs', import.meta.url))

export interface ProviderProcess { child: ChildProcess; url: string; providerId: string; output: () => string; stop: () => Promise<void> }

export async function startProviderProcess (args: string[], timeoutMs = 60_000): Promise<ProviderProcess> {
  const child = spawn(process.execPath, [BIN, 'provider', 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const ready = await new Promise<{ url: string; providerId: string }>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`provider did not start within ${timeoutMs} ms:\n${output}`)) }, timeoutMs)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1]
      const providerId = /provider id: (\S+)/.exec(output)?.[1]
      if (url !== undefined && providerId !== undefined) { clearTimeout(timer); resolve({ url, providerId }) }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`provider exited (${code}) before it was ready:\n${output}`)) })
  })
  return {
    child, ...ready, output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await exited
    },
  }
}

export async function killHard (provider: ProviderProcess): Promise<void> {
  const exited = new Promise<void>(resolve => provider.child.once('exit', () => resolve()))
  provider.child.kill('SIGKILL')
  await exited
}
