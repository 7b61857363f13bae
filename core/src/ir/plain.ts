/**
 * Shape checks on decoded (untrusted) values, shared by structure, generate options, op attrs and COSE. A leaf
 * module: it imports nothing from `ir/`, so structure.ts and generate.ts can both use it without a cycle.
 */
import { CborTag } from '../cbor/encode.js'

/** An object that is neither an array nor a typed array / DataView (a `Map` passes). */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v)

/** A plain map with text keys: an object that is not an array, typed array, `Map` or `CborTag`. */
export const isPlainMap = (v: unknown): v is Record<string, unknown> => isObject(v) && !(v instanceof Map) && !(v instanceof CborTag)

export const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v)

export const isUint = (v: unknown): v is number => isInt(v) && v >= 0
