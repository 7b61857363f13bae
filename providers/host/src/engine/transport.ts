/**
 * How the host talks to an engine worker: a worker thread (cheapest messages, zero-copy results) or a child process
 * (can be killed at any moment: onnxruntime aborts the whole process if a thread is terminated mid-run).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import type { FromWorker, ToWorker } from './protocol.js'

export type Isolation = 'thread' | 'process'

export interface EngineTransport {
  /** whether `kill` is safe while a run is in progress */
  readonly killable: boolean
  send (message: ToWorker): void
  onMessage (listener: (message: FromWorker) => void): void
  onExit (listener: (reason: string) => void): void
  kill (): Promise<void>
}

// run from the TypeScript sources (this checkout), the worker starts through a boot file that registers tsx and the
// `@weft/source` export condition; built (dist/), it starts from the compiled module itself
const BOOT = import.meta.url.endsWith('.ts') ? new URL('./engine-worker-boot.mjs', import.meta.url) : new URL('./engine-worker.js', import.meta.url)

export function spawnTransport (isolation: Isolation): EngineTransport {
  return isolation === 'process' ? processTransport() : threadTransport()
}

function threadTransport (): EngineTransport {
  const worker = new Worker(BOOT)
  return {
    killable: false,
    send: message => worker.postMessage(message),
    onMessage: listener => { worker.on('message', listener) },
    onExit: listener => {
      worker.on('error', error => listener(`engine thread crashed: ${error.message}`))
      worker.on('exit', code => listener(`engine thread exited (${code})`))
    },
    kill: async () => { await worker.terminate() },
  }
}

function processTransport (): EngineTransport {
  const child: ChildProcess = fork(fileURLToPath(BOOT), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
  return {
    killable: true,
    send: message => { child.send(message) },
    onMessage: listener => { child.on('message', message => listener(message as FromWorker)) },
    onExit: listener => { child.on('exit', (code, signal) => listener(`engine process exited (${signal ?? code})`)) },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
      child.kill('SIGKILL')
      await exited
    },
  }
}
