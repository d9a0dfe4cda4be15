/**
 * The client's options: a public `Partial` shape, resolved once into a frozen internal object.
 *
 * @packageDocumentation
 */
import { resolve } from 'node:path'

import { CHUNK_SIZE, VERSIONS, type ProtocolVersion } from '../protocol/generated/fmq_msg.js'
import { CurveKeyError, checkCurveKey } from '../security/curve.js'
import { InvalidClientOptionError } from './errors.js'

/** Options of `new Client(options)`; every one may be left out. */
export interface ClientOptions {
  /** Directory received files are written into. Required before `connect()` (or call `setInbox`). */
  inbox: string
  /** Ask servers for everything under each subscription, except files already in the inbox. Default `false`. */
  resync: boolean
  /**
   * With `resync`, also ask servers for deletes of files the inbox holds under a
   * subscription that they no longer publish (our ICANHAZ option MIRROR=1; the reference
   * server ignores it), so a client that was away ends an exact mirror. Default `false`.
   */
  mirror: boolean
  /**
   * Whether a file deleted at the source is deleted from the inbox. Default `true`; `false`
   * makes an add-only receiver (`--no-delete`): deletes are acknowledged and the inbox file,
   * and its manifest entry, stay (a transfer of that file in progress is still dropped, its
   * partial file deleted), and no 'deleted' event is emitted. Cannot go with `mirror`,
   * whose point is to delete.
   */
  deletes: boolean
  /**
   * A dry run (`--dry-run`, as rsync -n): with `resync`, ask our servers what they would send
   * and delete (ICANHAZ option DRYRUN=1, `planned` events), and write nothing to the inbox;
   * anything a server sends anyway (a reference server ignores the option) is dropped, with
   * a {@link DryRunUnsupportedError}. Default `false`.
   */
  dryRun: boolean
  /**
   * Delta transfer (our servers that name DELTA, version 2): a changed file of at least 256 KiB
   * whose older version the inbox holds travels as what differs (src/protocol/delta.ts).
   * Default `true`; `false` (`--whole-file`, as rsync's -W) has every file sent whole, which is
   * faster where the link is faster than reading both versions (a local copy, loopback).
   */
  delta: boolean
  /** SASL PLAIN login, used when a server asks (ORLY) and offers PLAIN. */
  login: string
  /** SASL PLAIN password. */
  password: string
  /** Milliseconds of server silence before the client asks with HUGZ. Default 1000. */
  heartbeat: number
  /** Silent heartbeats after which the server is considered gone and reconnected to. Default 5. */
  expiry: number
  /** Milliseconds without an answer to OHAI before trying the next protocol version. Default 3000. */
  greetingTimeout: number
  /** Protocol versions to offer, in order of preference. Default `[2, 1]`. */
  versions: readonly ProtocolVersion[]
  /** Most octets of file content the client lets a server have in flight. Default 8,000,000 (eight chunks). */
  creditWindow: number
  /** Credit is topped up once at least this much of the window is used. Default 1,000,000 (a chunk). */
  creditSlice: number
  /**
   * The most octets of file content per second this client lets each server send
   * (`--bwlimit`; `parseRate` reads `'500k'`, `'2M'`, `'1.5MB/s'`). Paced by the credit the
   * client grants, never by sleeping: credit goes out at most at this rate, and at most
   * 0.2 s of it at once. Default: no limit.
   */
  rateLimit: number
  /** Base of the reconnection backoff in milliseconds (doubling, capped at 5 s). Default 200. */
  reconnectDelay: number
  /**
   * The client's state directory: partial files while they arrive, and the node database
   * `fmq.db` (inbox manifest, partial files to resume). Default `<inbox>/.fmq`.
   */
  stateDir: string
  /**
   * CURVE (CurveZMQ): the public key of the servers, 40 characters of Z85 (`readCurvePublicKey`
   * reads it from the file `fmq keygen` wrote). Connections then complete the CURVE handshake
   * and travel encrypted; a server with another key (or without CURVE) never lets the client
   * in, and the client reports a `CurveHandshakeError`. `connect(endpoint, { curveServerKey })`
   * sets it for one server. Default: none (clear text).
   */
  curveServerKey: string
  /**
   * The client's own long-term CURVE key pair. Default: a new pair per server link, made when
   * it first connects (the server does not authenticate clients by key).
   */
  curvePublicKey: string
  curveSecretKey: string
}

/** The options as the client uses them. */
export interface ResolvedClientOptions {
  readonly inbox: string | undefined
  readonly resync: boolean
  readonly mirror: boolean
  readonly deletes: boolean
  readonly dryRun: boolean
  readonly delta: boolean
  readonly login: string | undefined
  readonly password: string | undefined
  readonly heartbeat: number
  readonly expiry: number
  readonly greetingTimeout: number
  readonly versions: readonly ProtocolVersion[]
  readonly creditWindow: number
  readonly creditSlice: number
  readonly rateLimit: number | undefined
  readonly reconnectDelay: number
  readonly stateDir: string | undefined
  readonly curveServerKey: string | undefined
  readonly curvePublicKey: string | undefined
  readonly curveSecretKey: string | undefined
}

export const DEFAULT_HEARTBEAT = 1000
export const DEFAULT_EXPIRY = 5
export const DEFAULT_GREETING_TIMEOUT = 3000
export const DEFAULT_VERSIONS: readonly ProtocolVersion[] = Object.freeze([2, 1] as const)
/**
 * Whole chunks (a server sends CHUNK_SIZE octets at a time): a grant is then what whole
 * chunks used, and the server's credit stays a multiple of a chunk. A window of 8 MiB left
 * the server 388,608 octets short of a chunk at every turn, and it cut two thirds of a 1 GiB
 * file's chunks in two (1,607 messages, not 1,074), the second half copied into its own frame.
 */
export const DEFAULT_CREDIT_WINDOW = 8 * CHUNK_SIZE
export const DEFAULT_CREDIT_SLICE = CHUNK_SIZE
export const DEFAULT_RECONNECT_DELAY = 200
/** The reconnection backoff never waits longer than this. */
export const MAX_RECONNECT_DELAY = 5000
/** Name of the default state directory inside the inbox. */
export const STATE_DIR_NAME = '.fmq'
/** Name of the directory of partial files inside the state directory. */
export const PARTIAL_DIR = 'partial'

/**
 * Checks the options and fills in the defaults.
 *
 * @example
 * ```ts
 * resolveClientOptions({ inbox: 'in', heartbeat: 100 }).expiry // 5
 * ```
 */
export function resolveClientOptions(options: Partial<ClientOptions> = {}): ResolvedClientOptions {
  const positive = (name: keyof ClientOptions, value: number | undefined, fallback: number, integer = false): number => {
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isSafeInteger(value))) {
      throw new InvalidClientOptionError(name, `must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`)
    }
    return value
  }
  const text = (name: keyof ClientOptions, value: string | undefined): string | undefined => {
    if (value === undefined) return undefined
    if (typeof value !== 'string' || value === '') throw new InvalidClientOptionError(name, 'must be a non-empty string')
    return value
  }

  const versions = options.versions ?? DEFAULT_VERSIONS
  if (!Array.isArray(versions) || versions.length === 0) {
    throw new InvalidClientOptionError('versions', 'must list at least one protocol version')
  }
  for (const version of versions) {
    if (!(VERSIONS as readonly number[]).includes(version)) {
      throw new InvalidClientOptionError('versions', `unknown protocol version ${String(version)}`)
    }
  }
  if (new Set(versions).size !== versions.length) throw new InvalidClientOptionError('versions', 'lists a version twice')

  const creditWindow = positive('creditWindow', options.creditWindow, DEFAULT_CREDIT_WINDOW, true)
  const creditSlice = positive('creditSlice', options.creditSlice, Math.min(DEFAULT_CREDIT_SLICE, creditWindow), true)
  if (creditSlice > creditWindow) throw new InvalidClientOptionError('creditSlice', 'cannot exceed creditWindow')

  const reconnectDelay = options.reconnectDelay ?? DEFAULT_RECONNECT_DELAY
  if (typeof reconnectDelay !== 'number' || !Number.isFinite(reconnectDelay) || reconnectDelay < 0) {
    throw new InvalidClientOptionError('reconnectDelay', `must be a number of milliseconds >= 0, got ${String(reconnectDelay)}`)
  }
  const login = text('login', options.login)
  const password = text('password', options.password)
  if ((login === undefined) !== (password === undefined)) {
    throw new InvalidClientOptionError(login === undefined ? 'login' : 'password', 'login and password go together')
  }
  const deletes = options.deletes ?? true
  if (typeof deletes !== 'boolean') throw new InvalidClientOptionError('deletes', `must be a boolean, got ${String(deletes)}`)
  if (!deletes && options.resync === true && options.mirror === true) {
    throw new InvalidClientOptionError('mirror', 'asks the server for deletes, and deletes is false')
  }
  const inbox = text('inbox', options.inbox)
  const stateDir = text('stateDir', options.stateDir)
  const curveKey = (name: 'curveServerKey' | 'curvePublicKey' | 'curveSecretKey'): string | undefined => {
    const value = options[name]
    if (value === undefined) return undefined
    if (typeof value !== 'string') throw new InvalidClientOptionError(name, 'must be a string')
    try {
      return checkCurveKey(value, 'the key')
    } catch (error) {
      // The message names the option, never the key.
      throw error instanceof CurveKeyError ? new InvalidClientOptionError(name, error.message) : error
    }
  }
  const curveServerKey = curveKey('curveServerKey')
  const curvePublicKey = curveKey('curvePublicKey')
  const curveSecretKey = curveKey('curveSecretKey')
  if ((curvePublicKey === undefined) !== (curveSecretKey === undefined)) {
    throw new InvalidClientOptionError(curvePublicKey === undefined ? 'curvePublicKey' : 'curveSecretKey', 'curvePublicKey and curveSecretKey go together')
  }

  return Object.freeze({
    inbox: inbox === undefined ? undefined : resolve(inbox),
    resync: options.resync === true,
    mirror: options.resync === true && options.mirror === true,
    deletes,
    dryRun: options.dryRun === true,
    delta: options.delta !== false,
    login,
    password,
    heartbeat: positive('heartbeat', options.heartbeat, DEFAULT_HEARTBEAT),
    expiry: positive('expiry', options.expiry, DEFAULT_EXPIRY, true),
    greetingTimeout: positive('greetingTimeout', options.greetingTimeout, DEFAULT_GREETING_TIMEOUT),
    versions: Object.freeze([...versions]),
    creditWindow,
    creditSlice,
    rateLimit: options.rateLimit === undefined ? undefined : positive('rateLimit', options.rateLimit, 0),
    reconnectDelay,
    stateDir: stateDir === undefined ? undefined : resolve(stateDir),
    curveServerKey,
    curvePublicKey,
    curveSecretKey,
  })
}

/** The backoff before reconnection attempt `failures` (1 for the first): base × 2^(n−1), capped. */
export function backoff(base: number, failures: number): number {
  if (failures <= 0) return 0
  return Math.min(base * 2 ** Math.min(failures - 1, 30), MAX_RECONNECT_DELAY)
}
