/**
 * The events a client reports, declared once: names in {@link CLIENT_EVENTS}, payloads in
 * {@link ClientEventMap} (the typed EventEmitter map), and {@link ClientEventRecord}, the
 * tagged union `client.events()` yields.
 *
 * @packageDocumentation
 */
import type { DryRunAction } from '../protocol/extensions.js'
import type { ProtocolVersion } from '../protocol/generated/fmq_msg.js'

/** Event names. */
export const CLIENT_EVENTS = {
  CONNECTED: 'connected',
  DISCONNECTED: 'disconnected',
  ACCESS_DENIED: 'access-denied',
  SUBSCRIBED: 'subscribed',
  DELIVERED: 'delivered',
  DELETED: 'deleted',
  PROGRESS: 'progress',
  SYNCED: 'synced',
  QUEUED: 'queued',
  PLANNED: 'planned',
  UNMATCHED: 'unmatched',
  SKIPPED: 'skipped',
  ERROR: 'error',
} as const
export type ClientEventName = (typeof CLIENT_EVENTS)[keyof typeof CLIENT_EVENTS]

/** A server accepted the client (OHAI-OK), in this protocol version. */
export interface ConnectedEvent {
  endpoint: string
  version: ProtocolVersion
}

/** Why a conversation ended. */
export type DisconnectReason =
  /** The server stayed silent for `expiry` heartbeats. */
  | 'expired'
  /** The server said KTHXBAI. */
  | 'server-closed'
  /** The server said RTFM or something unexpected (see the `error` event before it). */
  | 'protocol-error'
  /** `client.close()`. */
  | 'closed'

/** A conversation that had reached OHAI-OK ended; unless `reason` is `closed`, the client reconnects by itself. */
export interface DisconnectedEvent {
  endpoint: string
  reason: DisconnectReason
}

/** The server refused the client (SRSLY in the greeting, or no usable SASL mechanism). The link stops: no retries. */
export interface AccessDeniedEvent {
  endpoint: string
  reason: string
}

/** A server accepted a subscription (ICANHAZ-OK). Sent again after each reconnection. */
export interface SubscribedEvent {
  endpoint: string
  path: string
}

/** A file arrived completely and is in place under its final name. */
export interface DeliveredEvent {
  endpoint: string
  /** The name it travelled under. */
  virtualPath: string
  /** Where it is now. */
  path: string
  /** Octets. */
  size: number
  /**
   * Octets of its content that travelled to make it: the size for a file sent whole, what
   * follows the offset for a resumed one, the octets that differ for a delta (DELTA), 0 for a
   * file made from content the inbox held (TREE=1).
   */
  sent: number
}

/** The server deleted a file, and the client removed it from the inbox. */
export interface DeletedEvent {
  endpoint: string
  virtualPath: string
  path: string
}

/** Some of a file has arrived (throttled: not for every chunk). */
export interface ProgressEvent {
  endpoint: string
  virtualPath: string
  /** Octets received so far. */
  bytes: number
  /** The file's size, when the server said it (header `size`). */
  size?: number
}

/**
 * A server has sent everything it had queued for this client, and all of it is in the inbox:
 * after the resync of each subscription (even when nothing was missing) and after each burst
 * of changes. Only our servers say it (ICANHAZ option SYNCED=1); a reference server never does.
 */
export interface SyncedEvent {
  endpoint: string
  /**
   * Entries under the subscriptions that the server could not publish (unreadable, special
   * files, names not UTF-8): the mirror is complete but for those. Absent when none.
   */
  skipped?: number
}

/**
 * Our server queued more files for this client (ICANHAZ option QUEUED=1): `files` more, whose
 * content takes `bytes` more octets. Added up, the whole transfer as it grows: a progress
 * display's totals. A file queued again (it changed) counts again. A reference server never says it.
 */
export interface QueuedEvent {
  endpoint: string
  files: number
  bytes: number
}

/**
 * A subscription matches nothing the server publishes (our servers only, ICANHAZ option
 * UNMATCHED=1): likely a mistyped path. It stays subscribed (something may be published there later).
 */
export interface UnmatchedEvent {
  endpoint: string
  /** The subscription. */
  path: string
  /** The virtual paths the server publishes. */
  published: string[]
}

/** A dry run (`dryRun`): what the server would do with one entry, not done. */
export interface PlannedEvent {
  endpoint: string
  virtualPath: string
  /** `copy` (the inbox lacks it), `update` (it holds another version), `delete` (not published any more). */
  action: DryRunAction
  /** Octets of a file copied or updated. */
  size?: number
}

/**
 * A file the server sent that the client will not write (a refused name: see
 * `RefusedFileNameError`, also reported as an `error` event): the inbox lacks it.
 */
export interface SkippedEvent {
  endpoint?: string
  /** The name as the server sent it. */
  virtualPath: string
  /** Why, in words. */
  reason: string
  /** The error's code (`ERR_FMQ_REFUSED_NAME`). */
  code: string
}

/** Something went wrong that the client handled by itself (a refused name, a malformed message...). */
export interface ErrorEvent {
  endpoint?: string
  error: Error
}

/** Event payloads by name, for `EventEmitter<ClientEventMap>`. */
export interface ClientEventMap {
  connected: [ConnectedEvent]
  disconnected: [DisconnectedEvent]
  'access-denied': [AccessDeniedEvent]
  subscribed: [SubscribedEvent]
  delivered: [DeliveredEvent]
  deleted: [DeletedEvent]
  progress: [ProgressEvent]
  synced: [SyncedEvent]
  queued: [QueuedEvent]
  planned: [PlannedEvent]
  unmatched: [UnmatchedEvent]
  skipped: [SkippedEvent]
  error: [ErrorEvent]
}

/** One event as `client.events()` yields it: the payload tagged with its `type`. */
export type ClientEventRecord = {
  [K in keyof ClientEventMap]: { type: K } & ClientEventMap[K][0]
}[keyof ClientEventMap]
