/** Key files live in @weft/core (shared with the SDK's `loadKey`); `readKeyFile` is the host's historical name. */
export { newKeyFile, writeKeyFile, loadKey as readKeyFile } from '@weft/core'
export type { KeyFile } from '@weft/core'
