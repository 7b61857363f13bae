/** CLI commands owned by @weft/federation, dispatched by `weft` (sdk/src/cli/main.ts). */
export { directoryCommand, DIRECTORY_USAGE } from './directory-command.js'
