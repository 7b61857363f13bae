/**
 * The problem records that validation reports. A leaf of `ir/` (imports only program.ts's types), so the checkers
 * (structure, generate, causality, session) and validate.ts can all name them without importing each other.
 */
import type { SourceLocation } from './program.js'

/** `trace`: which trace of a session the node belongs to (absent = trace 0, the Program's own nodes). */
export interface ValidationIssue { node: number | null; op: string | null; message: string; location?: SourceLocation; trace?: number }

/** A structural problem (the shape of the data, not its types): found before any type is inferred. */
export interface StructureProblem { node: number | null; message: string }
