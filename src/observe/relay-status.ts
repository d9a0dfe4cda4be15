/**
 * What a relay and a track show: a relay is a client upstream and a server downstream, so
 * its status has both halves (`mounts` and `clients`, `servers`); a track shows its client
 * half (its server half runs in a worker thread), with the two folders.
 *
 * @packageDocumentation
 */
import type { Relay } from '../relay/relay.js'
import { type ClientLike, type ClientStatus, observeClient } from './client-status.js'
import { processRegistry } from './common.js'
import { observeServer, type ServerStatus } from './server-status.js'
import type { StatusSource } from './status-server.js'

/** `/api/status` of a relay: the server's fields, with the upstream servers of its client half. */
export type RelayStatus = Omit<ServerStatus, 'role' | 'totals'> &
  Pick<ClientStatus, 'servers' | 'inbox' | 'deliveries'> & {
    role: 'relay'
    totals: ServerStatus['totals'] & ClientStatus['totals']
  }

/** `/api/status` of a track: its client half's, with SRC. */
export type TrackStatus = Omit<ClientStatus, 'role'> & { role: 'track'; source: string }

/**
 * The status and metrics of a relay: the server's and the client's metrics in one registry.
 *
 * @example
 * ```ts
 * const http = await StatusServer.start(parseHttpAddress('8080'), observeRelay(relay))
 * ```
 */
export function observeRelay(relay: Relay): StatusSource<RelayStatus> {
  const registry = processRegistry()
  const down = observeServer(relay.server, registry)
  const up = observeClient(relay.client, { endpoints: relay.upstream, registry })
  return {
    registry,
    status(): RelayStatus {
      const server = down.status()
      const client = up.status()
      const recent = [...server.recent, ...client.recent].sort((a, b) => a.time.localeCompare(b.time))
      return { ...server, role: 'relay', inbox: client.inbox, servers: client.servers, deliveries: client.deliveries, totals: { ...server.totals, ...client.totals }, recent }
    },
  }
}

/**
 * The status and metrics of a track (`fmq track SRC DST`): what its client half receives into DST.
 *
 * @example
 * ```ts
 * const track = await Track.start('./photos', '/backup/photos')
 * const http = await StatusServer.start(parseHttpAddress('8080'), observeTrack(track, track.source, track.target))
 * ```
 */
export function observeTrack(track: ClientLike, source: string, target: string): StatusSource<TrackStatus> {
  const client = observeClient(track, { inbox: target })
  return {
    registry: client.registry,
    status: () => ({ ...client.status(), role: 'track', source }),
  }
}
