/**
 * The server's options: a public `Partial` shape, resolved once into a frozen, checked object
 * (as the client's, src/client/options.ts). A config file reaches these by the one mapping of
 * src/config/settings.ts (`serverConfig`), so a value is checked here whichever way it came.
 *
 * @packageDocumentation
 */
import { type AccountSpec } from '../security/accounts.js'
import { checkCurveKey, CurveKeyError, type CurveKeyPair, loadCurveKeyPair, loadCurvePublicKeys } from '../security/curve.js'
import { InvalidServerOptionError } from './errors.js'

/** Server settings; every field has a default. */
export interface ServerOptions {
  /** Milliseconds between heartbeats to quiet version-1 clients (default 1000). */
  heartbeat: number
  /** Heartbeat intervals of silence after which a version-1 client is forgotten (default 3). */
  expiry: number
  /** Milliseconds of silence after which a version-2 client is forgotten (default 60,000, as the v2 reference). */
  maxSilence: number
  /**
   * Milliseconds a changed file must stay unchanged before it is shipped (default 10): a file
   * written in one go is shipped at once, one still being written waits for its writer to pause.
   * A file that changes again soon after it was shipped waits longer each time, up to 1 s.
   */
  settle: number
  /**
   * Milliseconds between reconciling rescans of every published folder (default 3,600,000:
   * an hour, as Syncthing beside its watcher). The watcher's events are hints: a rescan
   * compares the disk with what is published, from the stat alone, and publishes what the
   * events missed. Rescans also follow any doubt (a burst of events that may have overflowed
   * the kernel's queue, a folder replaced, the folder itself gone), and come every 10 s while
   * an inotify limit leaves folders unwatched. Config: `server/rescan`, in seconds.
   */
  rescan: number
  /**
   * Milliseconds between rescans when the published folders are polled rather than watched,
   * for file systems whose changes inotify does not see (NFS, SMB, FUSE). Default: watched.
   * Config: `server/poll`, in seconds.
   */
  poll?: number
  /** Octets of content per CHEEZBURGER (default 1,000,000, as the reference). */
  chunkSize: number
  /** The most credit a client may hold, whatever it grants (default 64 MiB). */
  creditCap: number
  /** Messages in flight to one client before we wait for a sign of life (default 10,000). */
  messageBudget: number
  /** Milliseconds a send may wait on a full client queue before that client is dropped (default 10,000). */
  sendTimeout: number
  /** Let clients in without credentials. */
  anonymous: boolean
  /** Require SASL PLAIN with one of `accounts`. */
  plain: boolean
  accounts: readonly AccountSpec[]
  /** Follow symbolic and portable links that leave a mount (default false). */
  followOutside: boolean
  /**
   * Watch the published folders and send what changes in them (default true). Off, the
   * server publishes a snapshot: what each scan found (`fmq track --once` needs no more).
   */
  watch: boolean
  /** Milliseconds the failed-login answer is delayed, per client (default 1000). */
  loginDelay: number
  /**
   * The node's state directory, where the database `fmq.db` keeps the index of published
   * files (their digests, so a restart over an unchanged tree reads no content) and the log
   * of deleted files. Never published. Default: `.fmq` in the first published directory;
   * when that cannot be created or written, the index is kept in memory only (a 'log'
   * warning says so). A state directory given here that cannot be opened is an error.
   */
  stateDir?: string
  /**
   * Globs of files not to publish (rsync's `--exclude`), matched against each file's path
   * relative to its mount, dot files included. A pattern without `/` matches the basename at
   * any depth (`*.tmp`); one with a `/` is anchored at the mount (`build/**`, `/notes.txt`);
   * a pattern matching a folder leaves out everything under it (`.git`), and a trailing `/`
   * matches folders only. Filtered where files are published: an excluded file is never
   * announced, indexed or sent, in a scan or when the watcher sees it later.
   *
   * @example
   * ```ts
   * new Server({ exclude: ['*.tmp', 'build/'], include: ['keep.tmp'] })
   * ```
   */
  exclude?: readonly string[]
  /**
   * Globs of files published even when an exclude pattern matches them (rsync's
   * `--include`): a file is published if it matches no exclude pattern, or if it matches an
   * include pattern, whatever the order. Same pattern rules as `exclude`.
   */
  include?: readonly string[]
  /**
   * CURVE (CurveZMQ) on every endpoint: the server's long-term key pair (`loadCurveKeyPair`
   * reads one that `fmq keygen` wrote). Every connection must then complete the CURVE
   * handshake with a client that holds the public key, and everything after it, SASL PLAIN
   * passwords and file content included, travels encrypted. ANONYMOUS/PLAIN still apply on
   * top. Default: none (ZeroMQ's NULL mechanism, clear text).
   *
   * @example
   * ```ts
   * new Server({ curve: await loadCurveKeyPair('keys/server') })
   * ```
   */
  curve?: CurveKeyPair
  /**
   * With `curve`: the public keys (Z85) of the only clients let in, as ssh's
   * `authorized_keys` (`loadCurvePublicKeys` reads a folder of `fmq keygen` public files).
   * A client with another key fails its handshake. Default: any client holding the server's
   * public key completes the handshake (ANONYMOUS/PLAIN then decide).
   */
  curveClients?: readonly string[]
}

/** What a server uses for every option left out. */
export const DEFAULT_SERVER_OPTIONS: Readonly<ServerOptions> = Object.freeze({
  heartbeat: 1000,
  expiry: 3,
  maxSilence: 60_000,
  settle: 10,
  rescan: 3_600_000,
  chunkSize: 1_000_000,
  creditCap: 64 * 1024 * 1024,
  messageBudget: 10_000,
  sendTimeout: 10_000,
  anonymous: true,
  plain: false,
  accounts: [],
  followOutside: false,
  watch: true,
  loginDelay: 1000,
})

/** The options as the server uses them: every one set, checked, frozen. */
export type ResolvedServerOptions = Readonly<ServerOptions>

/**
 * Checks the options and fills in the defaults; throws {@link InvalidServerOptionError}
 * naming the option (never a key or a password).
 *
 * @example
 * ```ts
 * resolveServerOptions({ heartbeat: 500 }).expiry // 3
 * resolveServerOptions({ heartbeat: 0 }) // throws InvalidServerOptionError: heartbeat: must be a positive number, got 0
 * ```
 */
export function resolveServerOptions(options: Partial<ServerOptions> = {}): ResolvedServerOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<ServerOptions>
  const merged: ServerOptions = { ...DEFAULT_SERVER_OPTIONS, ...given }
  const number = (name: keyof ServerOptions, { integer = false, zero = false } = {}): void => {
    const value = merged[name]
    if (value === undefined && name === 'poll') return
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (value === 0 && !zero) || (integer && !Number.isSafeInteger(value))) {
      throw new InvalidServerOptionError(name, `must be a ${zero ? 'number >= 0' : `positive ${integer ? 'integer' : 'number'}`}, got ${String(value)}`)
    }
  }
  for (const name of ['heartbeat', 'maxSilence', 'rescan', 'poll'] as const) number(name)
  for (const name of ['expiry', 'chunkSize', 'creditCap', 'messageBudget'] as const) number(name, { integer: true })
  for (const name of ['settle', 'sendTimeout', 'loginDelay'] as const) number(name, { zero: true })
  for (const name of ['anonymous', 'plain', 'followOutside', 'watch'] as const) {
    if (typeof merged[name] !== 'boolean') throw new InvalidServerOptionError(name, `must be true or false, got ${String(merged[name])}`)
  }
  if (!Array.isArray(merged.accounts)) throw new InvalidServerOptionError('accounts', 'must be a list of accounts')
  // exclude and include are checked where they are compiled, as the server is made (src/fs/filter.ts, a TypeError naming the pattern).
  if (merged.stateDir !== undefined && (typeof merged.stateDir !== 'string' || merged.stateDir === '')) {
    throw new InvalidServerOptionError('stateDir', 'must be a non-empty path')
  }
  const curveKey = (name: 'curve' | 'curveClients', key: unknown): string => {
    try {
      return checkCurveKey(key as string, 'the key')
    } catch (error) {
      // The message names the option, never the key.
      throw error instanceof CurveKeyError ? new InvalidServerOptionError(name, error.message) : error
    }
  }
  if (merged.curve !== undefined) {
    curveKey('curve', merged.curve.publicKey)
    curveKey('curve', merged.curve.secretKey)
  }
  if (merged.curveClients !== undefined) {
    if (!Array.isArray(merged.curveClients)) throw new InvalidServerOptionError('curveClients', 'must be a list of public keys')
    if (merged.curve === undefined) throw new InvalidServerOptionError('curveClients', 'needs curve: a list of client keys means nothing without CURVE')
    for (const key of merged.curveClients) curveKey('curveClients', key)
  }
  return Object.freeze({
    ...merged,
    accounts: Object.freeze([...merged.accounts]),
    ...(merged.exclude === undefined ? {} : { exclude: Object.freeze([...merged.exclude]) }),
    ...(merged.include === undefined ? {} : { include: Object.freeze([...merged.include]) }),
    ...(merged.curveClients === undefined ? {} : { curveClients: Object.freeze([...merged.curveClients]) }),
  }) as ResolvedServerOptions
}

/**
 * The CURVE options a config's key files give (`ServerConfig.curveKeys`, `clientKeys`): the
 * server's key pair and the public keys of the clients let in. Read by `fmq server`, the
 * relay and `Server.configure` alike.
 *
 * @example
 * ```ts
 * new Server({ ...settings.options, ...(await loadServerKeys(settings)) })
 * ```
 */
export async function loadServerKeys(files: { readonly curveKeys?: string | undefined; readonly clientKeys?: string | undefined }): Promise<{ curve?: CurveKeyPair & { readonly file: string }; curveClients?: string[] }> {
  return {
    ...(files.curveKeys === undefined ? {} : { curve: await loadCurveKeyPair(files.curveKeys) }),
    ...(files.clientKeys === undefined ? {} : { curveClients: await loadCurvePublicKeys(files.clientKeys) }),
  }
}
