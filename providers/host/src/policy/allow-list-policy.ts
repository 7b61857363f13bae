/** allowListPolicy: only the listed key ids may run jobs (registration alone is not enough). */
import type { Decision, PolicyV1 } from '@weft/core'
import type { PolicyFactory } from './components.js'

export interface AllowListPolicyInit { keys: Iterable<string> }

export function allowListPolicy (init: AllowListPolicyInit): PolicyFactory {
  const allowed = new Set(init.keys)
  const decide = ({ keyId }: { keyId: string }): Decision => allowed.has(keyId)
    ? { allow: true }
    : { allow: false, code: 'POLICY_DENIED', reason: `key ${keyId} is not on this provider's allow list; ask the operator to add it`, details: { kid: keyId } }
  return (): PolicyV1 => ({
    specificationVersion: 'v1',
    name: 'allow-list',
    summary: () => ({ name: 'allow-list', keys: allowed.size }),
    admit: decide,
    admitDownload: decide,
  })
}
