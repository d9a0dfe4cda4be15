/**
 * What a client shows at `/api/status` and `/metrics`: kept from its events, so it must
 * observe the client before `connect()`. No password or key.
 *
 * @packageDocumentation
 */
import type { Registry } from 'prom-client'

import type { EventEmitter } from 'node:events'

import type { Client } from '../client/client.js'
import type { ClientEventMap } from '../client/events.js'
import { DigestMismatchError } from '../client/errors.js'
import { liveGauge, type NodeFacts, nodeFacts, processRegistry, RecentLog, type RecentEntry, totalCounter } from './common.js'
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

/** The events observed, as a client emits them or `fmq track`'s Track passes them on. */
type Observed = Omit<ClientEventMap, 'skipped'>

/** What is observed: a client, or any emitter passing its events on (`fmq track`'s Track, which src/ does not import). */
export type ClientLike = EventEmitter<any>

/** How a client is observed. */
export interface ObserveClientOptions {
  /** Endpoints listed as `connecting` before they answer. */
  endpoints?: readonly string[]
  /** The inbox shown (default: the client's). */
  inbox?: string
  /** The registry the metrics go in (default: a new one with the process metrics). */
  registry?: Registry
}

/** `/api/status` of a client. */
export interface ClientStatus extends NodeFacts {
  role: 'client'
  inbox: string | null
  servers: ClientServerStatus[]
  totals: { bytesReceived: number; filesDelivered: number; verifyFailures: number }
  /** The last files delivered, newest last. */
  deliveries: Array<{ time: string; endpoint: string; virtualPath: string; size: number }>
  recent: RecentEntry[]
}

/** How many recent deliveries are kept. */
const DELIVERIES = 20

/**
 * The status and metrics of a client, for {@link StatusServer}.
 *
 * @example
 * ```ts
 * const source = observeClient(client, { endpoints: ['tcp://127.0.0.1:5670'] })
 * await client.connect('tcp://127.0.0.1:5670')
 * const http = await StatusServer.start(parseHttpAddress('8081'), source)
 * ```
 */
export function observeClient(client: ClientLike, options: ObserveClientOptions = {}): StatusSource<ClientStatus> {
  const started = Date.now()
  const recent = new RecentLog()
  const servers = new Map<string, ClientServerStatus>()
  const on = <K extends keyof Observed>(event: K, listener: (...args: Observed[K]) => void): void => void (client as EventEmitter).on(event, listener as (...args: unknown[]) => void)
  let verifyFailures = 0
  const deliveries: ClientStatus['deliveries'] = []
  const server = (endpoint: string): ClientServerStatus => {
    let entry = servers.get(endpoint)
    if (entry === undefined) {
      entry = { endpoint, state: 'connecting', protocolVersion: null, subscriptions: [], lastSync: null, pending: 0, bytesReceived: 0, filesDelivered: 0, currentFile: null }
      servers.set(endpoint, entry)
    }
    return entry
  }
  for (const endpoint of options.endpoints ?? []) server(endpoint)
  /** Content from a server means a conversation with it, even if its greeting came before we listened. */
  const talking = (endpoint: string): ClientServerStatus => {
    const entry = server(endpoint)
    if (entry.state === 'connecting') entry.state = 'connected'
    return entry
  }

  on('connected', ({ endpoint, version }) => {
    const entry = server(endpoint)
    entry.state = 'connected'
    entry.protocolVersion = version
  })
  on('disconnected', ({ endpoint, reason }) => {
    server(endpoint).state = 'disconnected'
    if (reason !== 'closed') recent.add('warn', `${endpoint}: disconnected (${reason})`)
  })
  on('access-denied', ({ endpoint, reason }) => {
    server(endpoint).state = 'denied'
    recent.add('error', `${endpoint}: access denied${reason === '' ? '' : ` (${reason})`}`)
  })
  on('subscribed', ({ endpoint, path }) => {
    const entry = talking(endpoint)
    if (!entry.subscriptions.includes(path)) entry.subscriptions.push(path)
  })
  on('queued', ({ endpoint, files }) => {
    talking(endpoint).pending += files
  })
  on('progress', ({ endpoint, virtualPath, bytes, size }) => {
    const entry = talking(endpoint)
    // Octets count as they arrive: what this file's last progress did not count yet.
    const before = entry.currentFile?.virtualPath === virtualPath ? entry.currentFile.bytes : 0
    entry.bytesReceived += Math.max(0, bytes - before)
    entry.currentFile = { virtualPath, bytes, size: size ?? null }
  })
  on('delivered', ({ endpoint, virtualPath, size }) => {
    const entry = talking(endpoint)
    const before = entry.currentFile?.virtualPath === virtualPath ? entry.currentFile.bytes : 0
    entry.bytesReceived += Math.max(0, size - before)
    entry.filesDelivered++
    deliveries.push({ time: new Date().toISOString(), endpoint, virtualPath, size })
    if (deliveries.length > DELIVERIES) deliveries.shift()
    entry.pending = Math.max(0, entry.pending - 1)
    entry.currentFile = null
  })
  on('synced', ({ endpoint }) => {
    const entry = talking(endpoint)
    entry.lastSync = new Date().toISOString()
    entry.pending = 0
    entry.currentFile = null
  })
  on('error', ({ endpoint, error }) => {
    if (error instanceof DigestMismatchError) verifyFailures++
    recent.add('error', endpoint === undefined ? error.message : `${endpoint}: ${error.message}`)
  })

  const sum = (field: 'bytesReceived' | 'filesDelivered' | 'pending'): number => [...servers.values()].reduce((total, entry) => total + entry[field], 0)
  const registry = options.registry ?? processRegistry()
  totalCounter(registry, 'fmq_bytes_received_total', 'Octets of file content received (a resumed file counts from 0, its earlier part included)', () => sum('bytesReceived'))
  totalCounter(registry, 'fmq_files_delivered_total', 'Files delivered into the inbox', () => sum('filesDelivered'))
  totalCounter(registry, 'fmq_verify_failures_total', 'Files discarded because their digest or size did not match', () => verifyFailures)
  const stats = (client as Partial<Pick<Client, 'stats'>>).stats
  // Only a Client counts its resumes (a track's client is its own).
  if (stats !== undefined) totalCounter(registry, 'fmq_resumes_total', 'Partial files continued where an earlier conversation left them', () => stats.resumes)
  liveGauge(registry, 'fmq_files_pending', 'Files announced by the servers and not arrived yet', () => sum('pending'))
  liveGauge(registry, 'fmq_connected', 'Whether the client is in conversation with each server (1) or not (0)', () =>
    new Map([...servers.values()].map((entry) => [entry.endpoint, entry.state === 'connected' ? 1 : 0])), 'endpoint',
  )

  return {
    registry,
    status(): ClientStatus {
      return {
        role: 'client',
        ...nodeFacts(started),
        inbox: options.inbox ?? (client as Partial<Pick<Client, 'inbox'>>).inbox ?? null,
        servers: [...servers.values()].map((entry) => ({ ...entry, subscriptions: [...entry.subscriptions], currentFile: entry.currentFile && { ...entry.currentFile } })),
        totals: { bytesReceived: sum('bytesReceived'), filesDelivered: sum('filesDelivered'), verifyFailures },
        deliveries: [...deliveries],
        recent: [...recent.entries],
      }
    },
  }
}
