/** CLI commands owned by @weft/host, dispatched by `weft` (sdk/cli/src/main.ts, package @weft/cli). */
export { keysCommand } from './keys-command.js'
export { providerCommand } from './provider-command.js'
export { newKeyFile, readKeyFile, writeKeyFile } from './key-file.js'
export type { KeyFile } from './key-file.js'
