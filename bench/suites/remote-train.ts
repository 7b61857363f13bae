/**
 * Remote training cost (issue #11): 30 Adam steps of a steering vector on demo-gpt2 (4 prompts) as ONE signed
 * request to a provider process on loopback (engine in a worker thread, progress followed over SSE, receipt
 * verified), against the same 30 forward+backward passes run back to back embedded as separate Programs (a
 * client-driven loop without the network). Target: ≤ 1.2×. Also shown: the client-driven loop run remotely (30 signed
 * requests, v up and its gradient down every step), and the bytes each remote variant received.
 */
import { loadavg } from 'node:os'
import path from 'node:path'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { Optimizer, generateKeyPair, toHex, type Program, type ProgramNode } from '@weft/core'
import { connectRemote } from '../../sdk/src/remote/index.js'
import { onnxBackend } from '../../providers/onnx/src/backend/onnx-backend.js'
import { startProviderProcess } from '../../providers/host/test/process.js'
import { REFERENCE, steeringTraining } from '../../providers/host/test/training-programs.js'
import { ROOT, fmt, loadNote, paired, ratioCI, timeIt, type BenchSuite } from '../harness.js'

const STEPS = 30
const DEMO = path.join(ROOT, 'models', 'demo-gpt2')

/** One client-driven step: the loss and dloss/dv for the given v (what a client would send each step). */
function stepProgram (training: Program, v: Float32Array): Program {
  const { train, keep: _k, ...rest } = training
  const nodes: ProgramNode[] = [...training.nodes, ['grad', {}, [train!.loss, 0]], ['save', { name: 'g' }, [training.nodes.length]], ['save', { name: 'loss' }, [train!.loss]]]
  return { ...rest, nodes, params: { v: { shape: [256], dtype: 'float32', init: { tensor: { dtype: 'float32', shape: [256], data: v } } } } }
}

const suite: BenchSuite = {
  name: 'remote-train',
  async run () {
    const load = loadavg()[0]!
    const handle = await onnxBackend({ sessionCacheSize: 16 }).loadModel({ name: 'demo-gpt2', path: DEMO })
    const provider = await startProviderProcess(['--model', DEMO, '--db', path.join(mkdtempSync(path.join(tmpdir(), 'weft-bench-')), 'bench.db'), '--policy', 'open'])
    try {
      const bytes = { oneRequest: 0, clientLoop: 0 }
      const counting = (key: keyof typeof bytes): typeof fetch => async (input, init) => {
        const response = await fetch(input, init)
        const body = new Uint8Array(await response.arrayBuffer())
        bytes[key] += body.byteLength
        return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
      }
      const secretKey = toHex(generateKeyPair().secretKey)
      const remote = await connectRemote({ provider: provider.url, key: secretKey, fetch: counting('oneRequest'), waitSeconds: 0 })
      const loopClient = await connectRemote({ provider: provider.url, key: secretKey, fetch: counting('clientLoop') })
      await remote.register()
      const training = steeringTraining(text => handle.tokenize(text), { steps: STEPS })
      const check = (r: Awaited<ReturnType<typeof handle.run>>[number]): typeof r & { ok: true } => { if (!r.ok) throw new Error(r.error.message); return r }

      const oneRequest = async (): Promise<void> => {
        const result = await remote.run(training, { onProgress: () => {} })
        if (result.training?.completed !== STEPS) throw new Error('the remote run did not complete its steps')
      }
      const backToBack = async (): Promise<void> => {
        const v = new Float32Array(256)
        const adam = new Optimizer({ kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 })
        for (let s = 0; s < STEPS; s++) {
          const r = check((await handle.run([{ id: `step${s}`, program: stepProgram(training, v) }]))[0]!)
          adam.update({ v }, { v: r.saves.g!.data as Float32Array })
        }
      }
      const remoteLoop = async (): Promise<void> => {
        const v = new Float32Array(256)
        const adam = new Optimizer({ kind: 'adam', lr: 0.05, betas: [0.9, 0.999], eps: 1e-8 })
        for (let s = 0; s < STEPS; s++) {
          const r = await loopClient.run(stepProgram(training, v))
          adam.update({ v }, { v: r.saves.g!.data as Float32Array })
        }
      }
      await oneRequest(); await backToBack(); await remoteLoop()
      const s = await paired(backToBack, oneRequest, { minPairs: 3, maxPairs: 10, budgetMs: 40_000 })
      bytes.oneRequest = 0
      await oneRequest()
      const loop = await timeIt(remoteLoop, { warmup: 0, reps: 3 })
      bytes.clientLoop = 0
      await remoteLoop()
      return [{
        title: `remote training: ${STEPS} Adam steps of a steering vector (demo-gpt2, 4 prompts; provider process, engine thread)`,
        columns: ['variant', 'p50 ms', 'per step ms', 'ratio [95% CI]', 'bytes received', 'pairs'],
        rows: [
          [`${STEPS} fwd+bwd Programs back to back, embedded (baseline)`, fmt(s.aP50), fmt(s.aP50 / STEPS), '1.000×', '—', s.n],
          ['one signed request: train 30 steps on the provider (SSE progress, receipt verified)', fmt(s.bP50), fmt(s.bP50 / STEPS), ratioCI(s), bytes.oneRequest, s.n],
          [`client-driven loop, remote: ${STEPS} signed requests (v up, gradient down)`, fmt(loop.p50), fmt(loop.p50 / STEPS), `${(loop.p50 / s.aP50).toFixed(3)}× (unpaired)`, bytes.clientLoop, 3],
        ],
        note: `${loadNote(load)} Ratio = remote one-request training / embedded back-to-back passes (target ≤ 1.2×). ` +
          `The one-request run receives the loss curve (${STEPS} float32), ${STEPS} progress events and the receipt; the trained v stays on the provider. ` +
          `Reference losses: ${REFERENCE.steering_vector.loss_per_step[0]!.toFixed(2)} → ${REFERENCE.steering_vector.loss_per_step[STEPS - 1]!.toFixed(4)}.`,
      }]
    } finally {
      await provider.stop()
      await handle.dispose()
    }
  },
}
export default suite
