/**
 * CLI: write a seeded random HF checkpoint.
 *   tsx providers/onnx/scripts/make-checkpoint.ts <preset> <dir> [--seed N] [--dtype float32|float16|bfloat16] [--shards N]
 */
import { CHECKPOINT_PRESETS, writePresetCheckpoint } from './presets.js'
import type { CheckpointOptions, SafetensorsDType } from './checkpoint.js'

function main (argv: string[]): void {
  const positional: string[] = []
  const overrides: CheckpointOptions = {}
  let seed = 0
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--seed') seed = Number(argv[++i])
    else if (flag === '--dtype') overrides.dtype = argv[++i] as SafetensorsDType
    else if (flag === '--shards') overrides.shards = Number(argv[++i])
    else positional.push(flag)
  }
  const [preset, dir] = positional
  if (preset === undefined || dir === undefined) {
    console.error('usage: make-checkpoint <preset> <dir> [--seed N] [--dtype float32|float16|bfloat16] [--shards N]')
    for (const [name, entry] of Object.entries(CHECKPOINT_PRESETS)) console.error(`  ${name.padEnd(22)} ${entry.family} ${JSON.stringify(entry.dims)}${entry.note ? ` — ${entry.note}` : ''}`)
    process.exit(2)
  }
  const started = performance.now()
  const parameters = writePresetCheckpoint(dir, preset, seed, overrides)
  console.log(`${preset}: ${parameters.toLocaleString('en')} parameters written to ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

main(process.argv.slice(2))
