/**
 * @weft/federation is an optional peer of the SDK: routing mode (`Weft.discover`) needs it, a client of one
 * provider or of the local engine does not. Its pure modules (provider selection, endorsements; no libp2p) load
 * here when the package is installed; without it, routing fails with BACKEND_CAPABILITY_MISSING naming the package.
 */
import { WeftError } from '@weft/core'

type Selection = typeof import('@weft/federation/selection')
type Endorsements = typeof import('@weft/federation/endorsement')
type Directory = typeof import('@weft/federation')

const PACKAGE = '@weft/federation'

function isMissing (error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string }
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' || /^Cannot find (package|module)|^Failed to load url/.test(String(message))) &&
    String(message).includes(PACKAGE)
}

function missing (cause: unknown): WeftError {
  return new WeftError('BACKEND_CAPABILITY_MISSING', `routing mode (Weft.discover) needs the directory client: \`npm install ${PACKAGE}\``, { package: PACKAGE }, { cause })
}

// loaded with the SDK when present (small, pure modules); an absent package only matters once routing is used
const loaded: { selection: Selection; endorsements: Endorsements } | { error: unknown } = await Promise.all([
  import('@weft/federation/selection'), import('@weft/federation/endorsement'),
]).then(([selection, endorsements]) => ({ selection, endorsements }), (error: unknown) => {
  if (!isMissing(error)) throw error
  return { error }
})

/** `@weft/federation/selection` and `/endorsement`, or BACKEND_CAPABILITY_MISSING */
export function federation (): { selection: Selection; endorsements: Endorsements } {
  if ('error' in loaded) throw missing(loaded.error)
  return loaded
}

/** `@weft/federation` itself (libp2p), loaded only when a directory node is started */
export async function directoryModule (): Promise<Directory> {
  try {
    return await import('@weft/federation')
  } catch (error) {
    throw isMissing(error) ? missing(error) : error
  }
}
