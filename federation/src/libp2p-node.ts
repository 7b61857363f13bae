/**
 * The libp2p stack of a directory node: TCP + Noise + Yamux, identify, gossipsub. Loopback-only nodes get the
 * settings a one-IP fabric needs (DESIGN.md §5): a higher inbound connection rate per IP and no gossipsub
 * penalty for many peers behind one IP address.
 */
import './polyfill.js'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Ed25519PrivateKey } from '@libp2p/interface'

export type DirectoryLibp2p = Libp2p<{ identify: Identify; pubsub: GossipSub }>

export interface StackOptions {
  privateKey: Ed25519PrivateKey
  listen: string[]
  /** gossipsub heartbeat (default 700 ms: mesh repair is quick on small fabrics) */
  heartbeatMs?: number
}

/** true when every listen address is an IPv4 loopback address */
function isLoopbackOnly (listen: string[]): boolean {
  return listen.length > 0 && listen.every(address => address.startsWith('/ip4/127.'))
}

export async function createDirectoryLibp2p (options: StackOptions): Promise<DirectoryLibp2p> {
  const loopback = isLoopbackOnly(options.listen)
  return await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: loopback
      // one host IP for every peer: libp2p refuses > 5 inbound connections per second per IP by default
      ? { inboundConnectionThreshold: 100, maxIncomingPendingConnections: 64, maxConnections: 200 }
      : { maxConnections: 300 },
    services: {
      identify: identify(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        emitSelf: false,
        heartbeatInterval: options.heartbeatMs ?? 700,
        // records are ≤ 16 KiB; anything larger is not ours
        maxInboundDataLength: 64 * 1024,
        // many peers on 127.0.0.1 would otherwise drive every score below the publish threshold
        scoreParams: loopback ? { IPColocationFactorWeight: 0 } : {},
      }),
    },
  })
}
