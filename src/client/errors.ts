/**
 * Typed errors of the FILEMQ client: one class per failure, each with `name` set, a
 * Node-style `code`, and the underlying `cause` kept. The client never throws these from a
 * socket loop: transfer problems arrive as `error` events, API misuse as rejected promises.
 *
 * @packageDocumentation
 */

/**
 * The server answered a subscription with SRSLY (or the subscription cannot be put on the wire
 * in the version the server speaks). `await client.subscribe(path)` rejects with it.
 *
 * @example
 * ```ts
 * try { await client.subscribe('/secret') } catch (error) {
 *   if (error instanceof SubscriptionRefusedError) console.error(error.path, error.reason)
 * }
 * ```
 */
export class SubscriptionRefusedError extends Error {
  override readonly name = 'SubscriptionRefusedError'
  readonly code = 'ERR_FMQ_SUBSCRIPTION_REFUSED'

  constructor(
    /** The subscription, normalised. */
    readonly path: string,
    /** The server that refused it. */
    readonly endpoint: string,
    /** The SRSLY reason; may be empty (the reference sends none). */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`subscription ${JSON.stringify(path)} refused by ${endpoint}${reason === '' ? '' : `: ${reason}`}`, options)
  }
}

/**
 * Every server the client talks to refused access (SRSLY in the greeting, or no SASL mechanism
 * the client can use): a pending `subscribe` can never be answered.
 *
 * @example
 * ```ts
 * client.subscribe('/').catch((error) => { if (error instanceof AccessRefusedError) exit(1) })
 * ```
 */
export class AccessRefusedError extends Error {
  override readonly name = 'AccessRefusedError'
  readonly code = 'ERR_FMQ_ACCESS_DENIED'

  constructor(
    readonly endpoint: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`access denied by ${endpoint}${reason === '' ? '' : `: ${reason}`}`, options)
  }
}

/**
 * The client was closed while a promise was pending (e.g. a `subscribe` not answered yet), or
 * a method was called after `close()`.
 *
 * @example
 * ```ts
 * const pending = client.subscribe('/'); await client.close()
 * await pending // rejects with ClientClosedError
 * ```
 */
export class ClientClosedError extends Error {
  override readonly name = 'ClientClosedError'
  readonly code = 'ERR_FMQ_CLIENT_CLOSED'

  constructor(message = 'the client is closed') {
    super(message)
  }
}

/**
 * `connect()` was called before an inbox was set (option `inbox` or `setInbox`).
 *
 * @example
 * ```ts
 * const client = new Client(); client.setInbox('/var/inbox'); await client.connect(endpoint)
 * ```
 */
export class InboxNotSetError extends Error {
  override readonly name = 'InboxNotSetError'
  readonly code = 'ERR_FMQ_NO_INBOX'

  constructor() {
    super('no inbox: pass the inbox option or call setInbox() before connect()')
  }
}

/**
 * An option given to `new Client()` is out of range or of the wrong type.
 *
 * @example
 * ```ts
 * new Client({ creditSlice: 0 }) // throws InvalidClientOptionError, option 'creditSlice'
 * ```
 */
export class InvalidClientOptionError extends RangeError {
  override readonly name = 'InvalidClientOptionError'
  readonly code = 'ERR_FMQ_INVALID_OPTION'

  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`)
  }
}

/**
 * The server said RTFM, or sent a message the conversation did not expect; the client
 * reconnects by itself. Reported as an `error` event.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof ProtocolError) log(error.received) })
 * ```
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError'
  readonly code = 'ERR_FMQ_PROTOCOL'

  constructor(
    readonly endpoint: string,
    /** The message that was not expected, by model name (e.g. `RTFM`, `CHEEZBURGER`). */
    readonly received: string,
    /** RTFM's reason, when there was one. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${endpoint}: unexpected ${received}${reason === '' ? '' : ` (${reason})`}; reconnecting`, options)
  }
}

/** Why a file name from a server was refused. */
export type RefusedNameReason =
  /** The name breaks the inbox rules: `..`, NUL, backslash, empty... (see `cause`). */
  | 'unsafe'
  /** A directory on the way is a symbolic link, so the file would land outside the inbox. */
  | 'outside-inbox'
  /** The name points into the client's own state directory (e.g. `/.fmq/partial/x`). */
  | 'state-dir'

/**
 * A CHEEZBURGER named a file the client will not write or delete. Nothing is written for that
 * file; the rest of the transfer goes on. Reported as an `error` event.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof RefusedFileNameError) audit(error.virtualPath) })
 * ```
 */
export class RefusedFileNameError extends Error {
  override readonly name = 'RefusedFileNameError'
  readonly code = 'ERR_FMQ_REFUSED_NAME'

  constructor(
    /** The name as the server sent it. */
    readonly virtualPath: string,
    readonly reason: RefusedNameReason,
    options?: ErrorOptions,
  ) {
    super(`refused file name ${JSON.stringify(virtualPath)} (${reason})`, options)
  }
}

/**
 * A chunk did not start where the file being received ends (or a new file did not start at
 * offset 0): the partial file is discarded, never written sparse. Reported as an `error` event.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof OutOfOrderChunkError) log(error.expected, error.offset) })
 * ```
 */
export class OutOfOrderChunkError extends Error {
  override readonly name = 'OutOfOrderChunkError'
  readonly code = 'ERR_FMQ_CHUNK_ORDER'

  constructor(
    readonly virtualPath: string,
    /** Where the next chunk had to start. */
    readonly expected: number,
    /** Where it started. */
    readonly offset: bigint,
  ) {
    super(`${virtualPath}: chunk at offset ${offset}, expected ${expected}`)
  }
}

/**
 * The server sent more file content than the credit the client granted, or more than the file's
 * announced size: the partial file is discarded. Reported as an `error` event.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof CreditOverrunError) alarm(error.endpoint) })
 * ```
 */
export class CreditOverrunError extends Error {
  override readonly name = 'CreditOverrunError'
  readonly code = 'ERR_FMQ_CREDIT_OVERRUN'

  constructor(
    readonly virtualPath: string,
    /** Octets in the chunk. */
    readonly received: number,
    /** Octets the server was allowed to send (credit left, or size left). */
    readonly allowed: number,
    readonly limit: 'credit' | 'size',
  ) {
    super(`${virtualPath}: chunk of ${received} octets exceeds the ${limit} left (${allowed})`)
  }
}

/**
 * Writing, renaming or deleting a received file failed on the local file system (see `cause`).
 * Reported as an `error` event; the transfer goes on.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof InboxWriteError) console.error(error.cause) })
 * ```
 */
export class InboxWriteError extends Error {
  override readonly name = 'InboxWriteError'
  readonly code = 'ERR_FMQ_INBOX_WRITE'

  constructor(
    readonly virtualPath: string,
    options?: ErrorOptions,
  ) {
    super(`${virtualPath}: ${options?.cause instanceof Error ? options.cause.message : 'write failed'}`, options)
  }
}

/**
 * The inbox's disk (or the state folder's) is full: a received file could not be written
 * (ENOSPC, or EDQUOT over a quota). Nothing is promoted; a partial file worth resuming is
 * kept, and the client asks for the file again after a backoff until there is room, so a
 * disk that gets space back completes without a restart. Reported as an `error` event; its
 * `code` is the system's (`ENOSPC` or `EDQUOT`).
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof InboxFullError) alarm(`disk full at ${error.virtualPath}`) })
 * ```
 */
export class InboxFullError extends Error {
  override readonly name = 'InboxFullError'

  constructor(
    readonly virtualPath: string,
    readonly code: 'ENOSPC' | 'EDQUOT',
    options?: ErrorOptions,
  ) {
    super(`${virtualPath}: no space left on the inbox's disk (${code}); nothing promoted, the file is asked for again once there is room`, options)
  }
}

/** What a received file failed: its announced length, or its announced digest (SHA-1, or XXH128 from a server that negotiated it). */
export type DigestCheck = 'size' | 'sha1' | 'xxh128'

/**
 * A received file is not what the server announced (header `size` or `sha1`): it is discarded
 * before it reaches the inbox, and the client asks the server for it again (ICANHAZ with
 * `RESYNC=1` and `ONCE=1`), at most {@link MAX_REASKS} times in a row for one file. Reported
 * as an `error` event.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => {
 *   if (error instanceof DigestMismatchError && !error.retrying) alarm(error.virtualPath)
 * })
 * ```
 */
export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError'
  readonly code = 'ERR_FMQ_DIGEST_MISMATCH'

  constructor(
    readonly virtualPath: string,
    /** What the server announced: a digest in hex, or a length in octets (decimal). */
    readonly expected: string,
    /** What arrived, in the same form. */
    readonly actual: string,
    readonly check: DigestCheck = 'sha1',
    /** Whether the client asked for the file again; false once it gave up. */
    readonly retrying = false,
  ) {
    super(
      `${virtualPath}: received ${check === 'size' ? `${actual} octets, announced ${expected}` : `${check === 'sha1' ? 'SHA-1' : 'XXH128'} ${actual}, announced ${expected}`}; ` +
        (retrying ? 'discarded, asking again' : 'discarded, giving up'),
    )
  }
}

/** Consecutive digest mismatches of one file the client asks again for; then it gives up. */
export const MAX_REASKS = 3

/** Why a connection's security handshake failed, as far as the client can tell. */
export type HandshakeProblem =
  /** We speak CURVE and the server does not, or the other way round. */
  | 'mechanism'
  /** The server lets in only the client keys it knows, and ours is not one of them. */
  | 'refused'
  /** Both speak CURVE and the handshake broke: almost always the wrong server key. */
  | 'curve'
  /** Anything else libzmq reported (see `cause`). */
  | 'other'

/**
 * The ZeroMQ security handshake with a server failed, so no message can get through: the
 * server key is wrong (a CURVE server drops a client whose HELLO it cannot decrypt), or one
 * side has CURVE and the other not. libzmq keeps retrying and the client with it; this is
 * reported once as an `error` event, again only after a handshake has succeeded since.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof CurveHandshakeError) console.error(error.message) })
 * ```
 */
export class CurveHandshakeError extends Error {
  override readonly name = 'CurveHandshakeError'
  readonly code = 'ERR_FMQ_CURVE_HANDSHAKE'

  constructor(
    readonly endpoint: string,
    readonly problem: HandshakeProblem,
    /** Whether this client was given a server key (spoke CURVE). */
    readonly curve: boolean,
    options?: ErrorOptions,
  ) {
    // Without the endpoint, which the error event carries: the message is what to check.
    super(handshakeAdvice(problem, curve), options)
  }
}

function handshakeAdvice(problem: HandshakeProblem, curve: boolean): string {
  if (problem === 'mechanism') {
    return curve
      ? 'the server does not use CURVE, and we were given a server key (is it the right server?)'
      : 'the server requires CURVE encryption: give its public key (--server-key KEY|FILE, or curveServerKey)'
  }
  if (problem === 'refused') {
    return "the server does not let this client's key in: give the client a key pair (--curve-keys FILE, or curvePublicKey/curveSecretKey) whose public file is in the server's --client-keys folder"
  }
  if (problem === 'curve' || curve) return 'CURVE handshake failed: check the server key (the public key of this server, from fmq keygen)'
  // A CURVE server hangs up on a client without CURVE; which side notices the mismatch first is a race.
  return 'security handshake failed: does the server require CURVE? give its public key (--server-key KEY|FILE, or curveServerKey)'
}

/**
 * A dry run asked a server that does not do dry runs (a reference server, which ignores
 * DRYRUN=1 and sends content): what it sent was dropped, the inbox is untouched, and what
 * would be done is not known.
 *
 * @example
 * ```ts
 * client.on('error', ({ error }) => { if (error instanceof DryRunUnsupportedError) exit(1) })
 * ```
 */
export class DryRunUnsupportedError extends Error {
  override readonly name = 'DryRunUnsupportedError'
  readonly code = 'ERR_FMQ_DRY_RUN_UNSUPPORTED'

  constructor(readonly endpoint: string) {
    super(`${endpoint} does not do dry runs (it sends content instead): nothing was written`)
  }
}
