/**
 * What a client shows at `/api/status` and `/metrics`: kept from its events, so it must
 * observe the client before `connect()`. No password or key.
 *
 * @packageDocumentation
 */
import { Counter, Gauge } from 'prom-client'

import type { Client } from '../client/client.js'
import { DigestMismatchError } from '../client/errors.js'
import { packageVersion } from '../util/version.js'
import { processRegistry, RecentLog, type RecentEntry } from './server-status.js'
import type { StatusSource } from './status-server.js'

/** One server of a client, as `/api/status` shows it. */
export interface ClientServerStatus {
  endpoint: string
  /** `connecting` until OHAI-OK, then `connected`; `disconnected` while it reconnects; `denied` stops. */
  state: 'connecting' | 'connected' | 'disconnected' | 'denied'
  protocolVersion: number | null
  subscriptions: string[]
  /** When the server last said everything queued had arrived (our servers only). */
  lastSync: string | null
  /** Files the server announced and that have not arrived yet (our servers only). */
  pending: number
  bytesReceived: number
  filesDelivered: number
  currentFile: { virtualPath: string; bytes: number; size: number | null } | null
}

/** `/api/status` of a client. */
export interface ClientStatus {
  role: 'client'
  version: string
  pid: number
  startedAt: string
  uptimeSeconds: number
  inbox: string | null
  servers: ClientServerStatus[]
  totals: { bytesReceived: number; filesDelivered: number; verifyFailures: number }
  recent: RecentEntry[]
}

/**
 * The status and metrics of a client, for {@link StatusServer}. `endpoints` are listed as
 * `connecting` before they answer.
 *
 * @example
 * ```ts
 * const source = observeClient(client, ['tcp://127.0.0.1:5670'])
 * await client.connect('tcp://127.0.0.1:5670')
 * const http = await StatusServer.start(parseHttpAddress('8081'), source)
 * ```
 */
export function observeClient(client: Client, endpoints: readonly string[] = []): StatusSource & { status(): ClientStatus } {
  const started = Date.now()
  const recent = new RecentLog()
  const servers = new Map<string, ClientServerStatus>()
  let verifyFailures = 0
  const server = (endpoint: string): ClientServerStatus => {
    let entry = servers.get(endpoint)
    if (entry === undefined) {
      entry = { endpoint, state: 'connecting', protocolVersion: null, subscriptions: [], lastSync: null, pending: 0, bytesReceived: 0, filesDelivered: 0, currentFile: null }
      servers.set(endpoint, entry)
    }
    return entry
  }
  for (const endpoint of endpoints) server(endpoint)

  client.on('connected', ({ endpoint, version }) => {
    const entry = server(endpoint)
    entry.state = 'connected'
    entry.protocolVersion = version
  })
  client.on('disconnected', ({ endpoint, reason }) => {
    server(endpoint).state = 'disconnected'
    if (reason !== 'closed') recent.add('warn', `${endpoint}: disconnected (${reason})`)
  })
  client.on('access-denied', ({ endpoint, reason }) => {
    server(endpoint).state = 'denied'
    recent.add('error', `${endpoint}: access denied${reason === '' ? '' : ` (${reason})`}`)
  })
  client.on('subscribed', ({ endpoint, path }) => {
    const entry = server(endpoint)
    if (!entry.subscriptions.includes(path)) entry.subscriptions.push(path)
  })
  client.on('queued', ({ endpoint, files }) => {
    server(endpoint).pending += files
  })
  client.on('progress', ({ endpoint, virtualPath, bytes, size }) => {
    const entry = server(endpoint)
    // Octets count as they arrive: what this file's last progress did not count yet.
    const before = entry.currentFile?.virtualPath === virtualPath ? entry.currentFile.bytes : 0
    entry.bytesReceived += Math.max(0, bytes - before)
    entry.currentFile = { virtualPath, bytes, size: size ?? null }
  })
  client.on('delivered', ({ endpoint, virtualPath, size }) => {
    const entry = server(endpoint)
    const before = entry.currentFile?.virtualPath === virtualPath ? entry.currentFile.bytes : 0
    entry.bytesReceived += Math.max(0, size - before)
    entry.filesDelivered++
    entry.pending = Math.max(0, entry.pending - 1)
    entry.currentFile = null
  })
  client.on('synced', ({ endpoint }) => {
    const entry = server(endpoint)
    entry.lastSync = new Date().toISOString()
    entry.pending = 0
    entry.currentFile = null
  })
  client.on('error', ({ endpoint, error }) => {
    if (error instanceof DigestMismatchError) verifyFailures++
    recent.add('error', endpoint === undefined ? error.message : `${endpoint}: ${error.message}`)
  })

  const sum = (field: 'bytesReceived' | 'filesDelivered' | 'pending'): number => [...servers.values()].reduce((total, entry) => total + entry[field], 0)
  const registry = processRegistry()
  const total = (name: string, help: string, value: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(value())
      },
    })
  }
  total('fmq_bytes_received_total', 'Octets of file content received', () => sum('bytesReceived'))
  total('fmq_files_delivered_total', 'Files delivered into the inbox', () => sum('filesDelivered'))
  total('fmq_verify_failures_total', 'Files discarded because their digest or size did not match', () => verifyFailures)
  new Gauge({
    name: 'fmq_files_pending',
    help: 'Files announced by the servers and not arrived yet',
    registers: [registry],
    collect() {
      this.set(sum('pending'))
    },
  })
  new Gauge({
    name: 'fmq_connected',
    help: 'Whether the client is in conversation with each server (1) or not (0)',
    labelNames: ['endpoint'],
    registers: [registry],
    collect() {
      this.reset()
      for (const entry of servers.values()) this.set({ endpoint: entry.endpoint }, entry.state === 'connected' ? 1 : 0)
    },
  })

  return {
    registry,
    status(): ClientStatus {
      return {
        role: 'client',
        version: packageVersion(),
        pid: process.pid,
        startedAt: new Date(started).toISOString(),
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        inbox: client.inbox ?? null,
        servers: [...servers.values()].map((entry) => ({ ...entry, subscriptions: [...entry.subscriptions], currentFile: entry.currentFile && { ...entry.currentFile } })),
        totals: { bytesReceived: sum('bytesReceived'), filesDelivered: sum('filesDelivered'), verifyFailures },
        recent: [...recent.entries],
      }
    },
  }
}
