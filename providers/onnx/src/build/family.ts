/** What a family builder returns besides the nodes it adds; the driver (build/checkpoint.ts) assembles the rest. */
export interface FamilyBuild {
  /** value name of the logits graph output */
  logits: string
  hasPositionIds: boolean
  vocabSize: number
  maxPositions: number | null
  /** which checkpoint tensors count as parameters (buffers such as GPT-2's `attn.bias` do not) */
  isParameter: (name: string) => boolean
}
