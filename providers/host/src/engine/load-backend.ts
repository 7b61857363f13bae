/** Builds a BackendV1 from a BackendSpec: import the module, call its factory (and the returned components function, if any). */
import { WeftError, type BackendV1 } from '@weft/core'
import type { BackendSpec } from './protocol.js'

export async function loadBackend (spec: BackendSpec): Promise<BackendV1> {
  const module = await import(spec.module) as Record<string, unknown>
  const factory = module[spec.factory]
  if (typeof factory !== 'function') {
    throw new WeftError('MODEL_LOAD_FAILED', `module '${spec.module}' has no factory '${spec.factory}'`, { module: spec.module, factory: spec.factory })
  }
  let backend = (factory as (init: unknown) => unknown)(spec.init ?? {})
  if (typeof backend === 'function') backend = (backend as (components: object) => unknown)({})
  const candidate = backend as BackendV1
  if (candidate?.specificationVersion !== 'v1') {
    throw new WeftError('MODEL_LOAD_FAILED', `backend from '${spec.module}'.${spec.factory} is not a BackendV1 (specificationVersion '${String(candidate?.specificationVersion)}')`, { module: spec.module })
  }
  return candidate
}
