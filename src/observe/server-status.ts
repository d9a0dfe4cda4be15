/**
 * What a server shows at `/api/status` and `/metrics`: read from its counters and its
 * clients when asked, never kept apart (nothing to drift). No password, hash or key.
 *
 * @packageDocumentation
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

import type { Server } from '../server/server.js'
import { packageVersion } from '../util/version.js'
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
export interface ServerStatus {
  role: 'server'
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  mounts: MountStatus[]
  clients: ServerClientStatus[]
  totals: { bytesSent: number; filesSent: number; loginsFailed: number; rescans: number; filesPublished: number }
  /** Recent errors and warnings, newest last. */
  recent: RecentEntry[]
}

/** One line of the recent log the page shows. */
export interface RecentEntry {
  time: string
  level: 'info' | 'warn' | 'error'
  text: string
}

/** How many recent lines are kept. */
const RECENT = 50

/** A bounded list of recent log lines, newest last. */
export class RecentLog {
  readonly entries: RecentEntry[] = []

  add(level: RecentEntry['level'], text: string): void {
    this.entries.push({ time: new Date().toISOString(), level, text })
    if (this.entries.length > RECENT) this.entries.shift()
  }
}

/** A registry with prom-client's process metrics (memory, CPU, event-loop lag). */
export function processRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/**
 * The status and metrics of a server, for {@link StatusServer}. Call it once per server.
 *
 * @example
 * ```ts
 * const http = await StatusServer.start(parseHttpAddress('8080'), observeServer(server))
 * ```
 */
export function observeServer(server: Server): StatusSource & { status(): ServerStatus } {
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

  const registry = processRegistry()
  new Gauge({
    name: 'fmq_clients_connected',
    help: 'Clients the server holds state for',
    registers: [registry],
    collect() {
      this.set(server.stats.clients)
    },
  })
  new Counter({
    name: 'fmq_bytes_sent_total',
    help: 'Octets of file content sent, to every client together',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(server.stats.contentBytes)
    },
  })
  new Counter({
    name: 'fmq_files_sent_total',
    help: 'Whole files sent, to every client together',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(server.stats.files)
    },
  })
  new Gauge({
    name: 'fmq_files_published',
    help: 'Files published, per mount (virtual path)',
    labelNames: ['mount'],
    registers: [registry],
    collect() {
      this.reset()
      for (const mount of mounts()) this.set({ mount: mount.virtualPath }, mount.files)
    },
  })
  new Gauge({
    name: 'fmq_credit_outstanding_bytes',
    help: 'Octets of credit the clients granted and the server has not used yet',
    registers: [registry],
    collect() {
      this.set(server.peerList.reduce((sum, peer) => sum + Math.max(0, peer.credit), 0))
    },
  })
  new Counter({
    name: 'fmq_logins_failed_total',
    help: 'Logins refused (wrong login or password, or an account cooling down)',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(server.stats.loginsFailed)
    },
  })
  new Counter({
    name: 'fmq_rescans_total',
    help: 'Reconciling rescans of published folders',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(server.stats.rescans)
    },
  })

  return {
    registry,
    status(): ServerStatus {
      const listed = mounts()
      return {
        role: 'server',
        version: packageVersion(),
        pid: process.pid,
        startedAt: new Date(started).toISOString(),
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
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
