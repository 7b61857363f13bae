// Type tests (checked by `npm run typecheck`): the tracing API's op rows are complete and name real members.
// Each `@ts-expect-error` below must stay an error; if the table stopped checking, `tsc` would fail here.
import type { OpName } from '@weft/core'
import { OP_METHODS, type OpMethodRow } from '../src/trace/value-proxy.js'

/** An op added to core's table (here `fake`) without a row in OP_METHODS fails: the record lacks the key. */
// @ts-expect-error: Property 'fake' is missing
export const missingRow: Record<OpName | 'fake', OpMethodRow> = OP_METHODS

/** A row naming a method the proxy does not have fails. */
// @ts-expect-error: 'logSoftMax' is not a member of ValueProxy
export const misspelled: OpMethodRow = { on: 'ValueProxy', method: 'logSoftMax' }

/** The table as it is type-checks against the current op names. */
export const complete: Record<OpName, OpMethodRow> = OP_METHODS

/** Rows on the other recorders (added to OpRecorders by their own modules) are checked against their members too. */
// @ts-expect-error: 'trainable' is not a member of SessionBuilder (the op is recorded by `param`)
export const misspelledSession: OpMethodRow = { on: 'SessionBuilder', method: 'trainable' }
