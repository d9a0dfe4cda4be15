/**
 * Observability: a node's status as JSON, its Prometheus metrics and a status page, served
 * read-only over HTTP (`--http`).
 *
 * @packageDocumentation
 */
export { StatusServer, parseHttpAddress, formatAddress, InvalidHttpAddressError, HttpListenError, type HttpAddress, type StatusSource } from './status-server.js'
export { observeServer, type ServerStatus, type ServerClientStatus, type MountStatus } from './server-status.js'
export type { RecentEntry } from './common.js'
export { observeClient, type ClientStatus, type ClientServerStatus } from './client-status.js'
export { observeRelay, observeTrack, type RelayStatus, type TrackStatus } from './relay-status.js'
