/**
 * `/weft/directory/1`: a one-shot exchange of record sets, so late joiners learn what gossip delivered before they
 * came. The dialer sends `{ v: 1, records: [bstr] }` and closes its side; the listener offers them to its set and
 * answers with its own live records in the same shape. Sizes are bounded on both sides.
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { WeftError, decodeCbor, encodeCbor } from '@weft/core'
import type { RecordSet } from './directory.js'
import { MAX_RECORD_BYTES } from './provider-record.js'

export const DIRECTORY_PROTOCOL = '/weft/directory/1'
const MAX_SYNC_RECORDS = 1024
const MAX_SYNC_BYTES = MAX_SYNC_RECORDS * (MAX_RECORD_BYTES + 8)
const DEFAULT_SYNC_TIMEOUT_MS = 5000

export interface SyncStats { sent: number; received: number; accepted: number }

async function readAll (stream: Stream, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  for await (const chunk of stream) {
    const bytes = chunk.subarray()
    total += bytes.length
    if (total > maxBytes) {
      stream.abort(new Error(`directory exchange larger than ${maxBytes} bytes`))
      throw new WeftError('RECORD_INVALID', `directory exchange larger than ${maxBytes} bytes`)
    }
    chunks.push(bytes)
  }
  return Buffer.concat(chunks)
}

function encodeSet (set: RecordSet): { bytes: Uint8Array; count: number } {
  const records = set.all().slice(0, MAX_SYNC_RECORDS).map(entry => entry.bytes)
  return { bytes: encodeCbor({ v: 1, records }), count: records.length }
}

function decodeSet (bytes: Uint8Array): Uint8Array[] {
  const value = decodeCbor(bytes, { maxBytes: MAX_SYNC_BYTES, maxDepth: 4, maxItems: MAX_SYNC_RECORDS + 8 }) as { v?: unknown; records?: unknown }
  if (typeof value !== 'object' || value === null || value.v !== 1 || !Array.isArray(value.records) || !value.records.every(r => r instanceof Uint8Array)) {
    throw new WeftError('RECORD_INVALID', 'a directory exchange is { v: 1, records: [bstr] }')
  }
  return value.records as Uint8Array[]
}

/** Offers the batch to the set (listeners hear of it once all is in); returns how many were new. Invalid ones are dropped one by one. */
function offerAll (set: RecordSet, records: Uint8Array[]): number {
  return set.offerMany(records).filter(r => r.accepted).length
}

/** Serves the exchange on `libp2p`. */
export async function handleDirectoryProtocol (libp2p: Libp2p, set: RecordSet): Promise<void> {
  await libp2p.handle(DIRECTORY_PROTOCOL, async (stream) => {
    const signal = AbortSignal.timeout(DEFAULT_SYNC_TIMEOUT_MS)
    const onAbort = (): void => { stream.abort(new Error('directory exchange timed out')) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      offerAll(set, decodeSet(await readAll(stream, MAX_SYNC_BYTES)))
      stream.send(encodeSet(set).bytes)
      await stream.close({ signal })
    } catch (error) {
      stream.abort(error as Error)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }, { maxInboundStreams: 16, maxOutboundStreams: 16 })
}

/** Exchanges record sets with `peer` (which must already be reachable). */
export async function exchangeRecords (libp2p: Libp2p, set: RecordSet, peer: PeerId, timeoutMs = DEFAULT_SYNC_TIMEOUT_MS): Promise<SyncStats> {
  const signal = AbortSignal.timeout(timeoutMs)
  const stream = await libp2p.dialProtocol(peer, DIRECTORY_PROTOCOL, { signal })
  const onAbort = (): void => { stream.abort(new Error('directory exchange timed out')) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const request = encodeSet(set)
    stream.send(request.bytes)
    await stream.close({ signal })
    const records = decodeSet(await readAll(stream, MAX_SYNC_BYTES))
    return { sent: request.count, received: records.length, accepted: offerAll(set, records) }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
