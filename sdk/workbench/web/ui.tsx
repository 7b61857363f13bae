/** Shared bits of the page: the problem banner and the types the views share. */
import type { ComponentChildren } from 'preact'
import type { ExperimentInfo } from '../src/shared/experiments.ts'

export interface Info { mode: 'embedded' | 'provider' | 'directory'; connect: string; experiments: ExperimentInfo[] }
export interface ModelInfo { name: string; revision: string; family: string }

/** A message in the page instead of a blank screen. */
export function Problem ({ children }: { children: ComponentChildren }) {
  return <div class="problem" role="alert">{children}</div>
}
