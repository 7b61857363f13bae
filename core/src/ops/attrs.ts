/** Checks a node's attributes against its op's schema; returns every problem as a message. */
import { show } from '../errors/show.js'
import type { Attrs } from '../ir/program.js'
import { isTensor } from '../tensor/create.js'
import type { AttrSchema, OpDef } from './types.js'
import { DTYPES } from './elementwise.js'
import { checkIndexItem } from './index-spec.js'
import { isInt } from '../ir/plain.js'

function kindProblem (schema: AttrSchema, value: unknown): string | null {
  switch (schema.kind) {
    case 'int': return isInt(value) ? null : 'must be an integer'
    case 'number': return typeof value === 'number' ? null : 'must be a number'
    case 'bool': return typeof value === 'boolean' ? null : 'must be a boolean'
    case 'string': return typeof value === 'string' && value.length > 0 ? null : 'must be a non-empty string'
    case 'dtype': return DTYPES.includes(value as never) ? null : `must be one of ${DTYPES.join(', ')}`
    case 'tensor': return isTensor(value) ? null : 'must be a tensor'
    case 'ints': return Array.isArray(value) && value.every(isInt) ? null : 'must be a list of integers'
    case 'axes': return value === null || (Array.isArray(value) && value.every(isInt)) ? null : 'must be null or a list of integers'
    case 'step': return (isInt(value) && (value as number) >= 0) || value === 'all' ? null : "must be a non-negative integer or 'all'"
    case 'enum': return schema.values?.includes(value as never) === true ? null : `must be one of ${schema.values?.map(v => show(v)).join(', ')}`
    case 'index_spec': {
      if (!Array.isArray(value)) return 'must be a list of index items'
      try {
        for (const item of value) checkIndexItem('', item)
      } catch {
        return 'must hold only null, integers and [start, stop, step] slices with nonzero step'
      }
      return null
    }
  }
}

export function checkAttrs (op: OpDef, attrs: Attrs): string[] {
  const problems: string[] = []
  for (const key of Object.keys(attrs)) {
    if (!Object.hasOwn(op.attrs, key)) problems.push(`${op.name}: unknown attribute '${key}' (allowed: ${Object.keys(op.attrs).join(', ') || 'none'})`)
  }
  for (const [key, schema] of Object.entries(op.attrs)) {
    const value = attrs[key]
    if (value === undefined) {
      if (schema.required === true) problems.push(`${op.name}: missing required attribute '${key}'`)
      continue
    }
    const problem = kindProblem(schema, value)
    if (problem !== null) problems.push(`${op.name}: attribute '${key}' ${problem}, got ${describe(value)}`)
  }
  return problems
}

function describe (value: unknown): string {
  if (isTensor(value)) return `tensor ${value.dtype}[${value.shape.join(',')}]`
  return show(value)
}

export function checkArity (op: OpDef, count: number): string | null {
  const { arity } = op
  if (arity === 'variadic') return count >= 1 ? null : `${op.name}: needs at least 1 input, got 0`
  if (typeof arity === 'number') return count === arity ? null : `${op.name}: needs ${arity} input${arity === 1 ? '' : 's'}, got ${count}`
  return count >= arity[0] && count <= arity[1] ? null : `${op.name}: needs ${arity[0]}–${arity[1]} inputs, got ${count}`
}
