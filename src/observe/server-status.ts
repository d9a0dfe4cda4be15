/**
 * What a server shows at `/api/status` and `/metrics`: read from its counters and its
 * clients when asked, never kept apart (nothing to drift). No password, hash or key.
 *
 * @packageDocumentation
 */
import type { Registry } from 'prom-client'

import type { Server } from '../server/server.js'
import { liveGauge, type NodeFacts, nodeFacts, processRegistry, RecentLog, type RecentEntry, totalCounter } from './common.js'
import type { StatusSource } from './status-server.js'

/** One published folder, as `/api/status` shows it (its physical location is the operator's business, and shown). */
export interface MountStatus {
  virtualPath: string
  location: string
  files: number
  bytes: number
}

/** One client of a server, as `/api/status` shows it. */
export interface ServerClientStatus {
  /** The routing id, in hex. */
  identity: string
  /** The PLAIN login, or `anonymous`. */
  login: string
  protocolVersion: number
  subscriptions: string[]
  /** Octets the client allows us to send now. */
  credit: number
  bytesSent: number
  filesSent: number
  /** The file being sent, how far, of how much. */
  currentFile: { virtualPath: string; offset: number; size: number } | null
  /** Files queued for it. */
  queued: number
  connectedSince: string
  lastHeard: string
}

/** `/api/status` of a server. */
export interface ServerStatus extends NodeFacts {
  role: 'server'
  mounts: MountStatus[]
  clients: ServerClientStatus[]
  totals: { bytesSent: number; filesSent: number; loginsFailed: number; rescans: number; filesPublished: number }
  /** Recent errors and warnings, newest last. */
  recent: RecentEntry[]
}

/**
 * The status and metrics of a server, for {@link StatusServer}. Call it once per server.
 *
 * @example
 * ```ts
 * const http = await StatusServer.start(parseHttpAddress('8080'), observeServer(server))
 * ```
 */
export function observeServer(server: Server, registry: Registry = processRegistry()): StatusSource<ServerStatus> {
  const started = Date.now()
  const recent = new RecentLog()
  server.on('log', (level, text) => {
    if (level === 'warn') recent.add('warn', text)
  })
  server.on('error', (error) => recent.add('error', error.message))

  const mounts = (): MountStatus[] => {
    const table = server.publisher.mounts
    const byMount = new Map([...table].map((mount) => [mount, { virtualPath: mount.virtualPath, location: mount.location, files: 0, bytes: 0 }]))
    // A file belongs to the most specific mount that covers it (mounts may overlap).
    for (const file of server.publisher.under('/')) {
      const owner = table.owner(file.virtualPath)
      const entry = owner === undefined ? undefined : byMount.get(owner)
      if (entry === undefined) continue
      entry.files++
      entry.bytes += file.size
    }
    return [...byMount.values()]
  }

  liveGauge(registry, 'fmq_clients_connected', 'Clients the server holds state for', () => server.stats.clients)
  totalCounter(registry, 'fmq_bytes_sent_total', 'Octets of file content sent, to every client together', () => server.stats.contentBytes)
  totalCounter(registry, 'fmq_files_sent_total', 'Whole files sent, to every client together', () => server.stats.files)
  liveGauge(registry, 'fmq_files_published', 'Files published, per mount (virtual path)', () => new Map(mounts().map((mount) => [mount.virtualPath, mount.files])), 'mount')
  liveGauge(registry, 'fmq_credit_outstanding_bytes', 'Octets of credit the clients granted and the server has not used yet', () =>
    server.peerList.reduce((sum, peer) => sum + Math.max(0, peer.credit), 0),
  )
  totalCounter(registry, 'fmq_logins_failed_total', 'Logins refused (wrong login or password, or an account cooling down)', () => server.stats.loginsFailed)
  totalCounter(registry, 'fmq_rescans_total', 'Reconciling rescans of published folders', () => server.stats.rescans)

  return {
    registry,
    status(): ServerStatus {
      const listed = mounts()
      return {
        role: 'server',
        ...nodeFacts(started),
        mounts: listed,
        clients: server.peerList.map((peer) => ({
          identity: peer.key,
          login: peer.login ?? 'anonymous',
          protocolVersion: peer.version,
          subscriptions: [...peer.subscriptions],
          credit: peer.credit,
          bytesSent: peer.sentContent,
          filesSent: peer.filesSent,
          currentFile: peer.transfer === undefined ? null : { virtualPath: peer.transfer.virtualPath, offset: peer.transfer.offset, size: peer.transfer.file.size },
          queued: peer.queue.size,
          connectedSince: new Date(peer.since).toISOString(),
          lastHeard: new Date(peer.lastHeard).toISOString(),
        })),
        totals: {
          bytesSent: server.stats.contentBytes,
          filesSent: server.stats.files,
          loginsFailed: server.stats.loginsFailed,
          rescans: server.stats.rescans,
          filesPublished: listed.reduce((sum, mount) => sum + mount.files, 0),
        },
        recent: [...recent.entries],
      }
    },
  }
}
