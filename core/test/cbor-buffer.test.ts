// Tensors decode correctly from node Buffers (pooled, non-zero byteOffset), as received from sockets and SQLite.
import { expect, test } from 'vitest'
import { decodeCbor, encodeCbor, type Tensor } from '@weft/core'

test('typed-array tensors decoded from a pooled Buffer hold their own values', () => {
  const saves = { h: { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }, i: { dtype: 'int32', shape: [3], data: new Int32Array([7, -8, 9]) } }
  const encoded = encodeCbor(saves)
  const pooled = Buffer.from(encoded) // small Buffers come from node's shared pool at some byteOffset
  const nested = Buffer.from(encodeCbor({ saves: encoded })) // a byte string inside a Buffer decodes to a Buffer view
  for (const bytes of [pooled, decodeCbor(nested) as { saves: Uint8Array }].map(b => b instanceof Uint8Array ? b : b.saves)) {
    const decoded = decodeCbor(bytes) as Record<string, Tensor>
    expect([...decoded.h!.data as Float32Array]).toEqual([1, 2, 3, 4])
    expect([...decoded.i!.data as Int32Array]).toEqual([7, -8, 9])
  }
})
