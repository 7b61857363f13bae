/** CLI commands owned by @weft/federation, dispatched by `weft` (sdk/cli/src/main.ts, package @weft/cli). */
export { directoryCommand, DIRECTORY_USAGE } from './directory-command.js'
export { endorseCommand, readEndorsementFile, ENDORSE_USAGE } from './endorse-command.js'
export type { EndorsementFile } from './endorse-command.js'
