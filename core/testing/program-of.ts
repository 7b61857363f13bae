/** Terse Program construction for tests: `programOf([[op, attrs, inputs], …], { invokes })`. */
import type { Invoke, Program, ProgramNode } from '../src/ir/program.js'

export function programOf (nodes: ProgramNode[], options: { invokes?: Invoke[]; model?: string } = {}): Program {
  return {
    version: 1,
    model: { name: options.model ?? 'demo-gpt2', revision: null },
    mode: 'trace',
    invokes: options.invokes ?? [{ ids: [328, 370, 293, 3606, 297] }],
    nodes,
  }
}
