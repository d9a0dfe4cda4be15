/**
 * The FILEMQ client: an explicit list of what is public.
 *
 * @example
 * ```ts
 * import { Client } from './client/index.js'
 * const client = new Client({ inbox: './inbox' })
 * await client.connect('tcp://127.0.0.1:5670')
 * await client.subscribe('/')
 * ```
 *
 * @packageDocumentation
 */
export { Client, type ConnectOptions } from './client.js'
export type { ClientStats } from './durable.js'
export {
  CLIENT_EVENTS,
  type AccessDeniedEvent,
  type ClientEventMap,
  type ClientEventName,
  type ClientEventRecord,
  type ConnectedEvent,
  type DeletedEvent,
  type DeliveredEvent,
  type DisconnectReason,
  type DisconnectedEvent,
  type ErrorEvent,
  type ProgressEvent,
  type SkippedEvent,
  type SubscribedEvent,
  type SyncedEvent,
  type QueuedEvent,
  type PlannedEvent,
  type UnmatchedEvent,
} from './events.js'
export {
  AccessRefusedError,
  ClientClosedError,
  CreditOverrunError,
  CurveHandshakeError,
  DigestMismatchError,
  InboxFullError,
  InboxNotSetError,
  InboxWriteError,
  InvalidClientOptionError,
  OutOfOrderChunkError,
  ProtocolError,
  RefusedFileNameError,
  SubscriptionRefusedError,
  DryRunUnsupportedError,
  MAX_REASKS,
  type DigestCheck,
  type HandshakeProblem,
  type RefusedNameReason,
} from './errors.js'
export {
  DEFAULT_CREDIT_SLICE,
  DEFAULT_CREDIT_WINDOW,
  DEFAULT_EXPIRY,
  DEFAULT_GREETING_TIMEOUT,
  DEFAULT_HEARTBEAT,
  DEFAULT_RECONNECT_DELAY,
  DEFAULT_VERSIONS,
  MAX_RECONNECT_DELAY,
  type ClientOptions,
  type ResolvedClientOptions,
} from './options.js'
