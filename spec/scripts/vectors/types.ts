/** A vector file the generator writes: path under spec/vectors/ and its JSON body. */
export interface VectorFile { path: string; body: Record<string, unknown> }
