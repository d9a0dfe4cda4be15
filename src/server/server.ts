/**
 * The FILEMQ server: one ROUTER socket, one generated state machine per client, the
 * hand-written actions in actions.ts, and the publisher that watches the mounts.
 */
import { EventEmitter } from 'node:events'
import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Router } from 'zeromq'
import { ConfigReader } from '../config/reader.js'
import { serverTimings } from '../config/settings.js'
import { loadZplFile, type ZplNode } from '../config/zpl.js'
import { Machine } from '../protocol/fsm.js'
import { MalformedMessageError, NoSignatureError } from '../protocol/errors.js'
import { codecs } from '../protocol/generated/fmq_codecs.js'
import { type Message, MessageId, MessageName, type ProtocolVersion } from '../protocol/generated/fmq_msg.js'
import { type ServerActions, type ServerEvent, type ServerState, serverTable } from '../protocol/generated/fmq_server_fsm.js'
import { AccessPolicy, type AccountSpec, Accounts } from '../security/accounts.js'
import { checkCurveKey, type CurveKeyPair, loadCurveKeyPair } from '../security/curve.js'
import { AccountConfigError } from '../security/errors.js'
import { registerZapDomain } from '../security/zap.js'
import { LoginThrottle } from '../security/throttle.js'
import { StoreOpenError } from '../store/database.js'
import { ServerPeerActions, type ServerServices } from './actions.js'
import { FileIndex } from './file-index.js'
import { type Patch, Peer } from './peer.js'
import { Publisher, type SkippedEntry } from './publisher.js'

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
  accounts: AccountSpec[]
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
  exclude?: string[]
  /**
   * Globs of files published even when an exclude pattern matches them (rsync's
   * `--include`): a file is published if it matches no exclude pattern, or if it matches an
   * include pattern, whatever the order. Same pattern rules as `exclude`.
   */
  include?: string[]
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

const DEFAULTS: ServerOptions = {
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
}

/** Counters for monitoring and tests. */
export interface ServerStats {
  /** Octets of file content sent, to every client together (counted by the actions). */
  contentBytes: number
  /** Whole files sent, to every client together (counted by the actions). */
  files: number
  /** Logins refused: a wrong login or password, or an account cooling down after such. */
  loginsFailed: number
  /** Reconciling rescans of a published folder (or a part of one), periodic or on a doubt. */
  readonly rescans: number
  /** Octets of published files read to compute their digests. */
  readonly bytesHashed: number
  /** Published files read to compute their digests. */
  readonly filesHashed: number
  /** Clients the server holds state for: from their first message until they leave, are dropped or expire. */
  readonly clients: number
}

/** Failures that mean the default state directory is not ours to write: the index then falls back to memory. */
const UNWRITABLE = ['EACCES', 'EROFS', 'EPERM', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM']

/** Whether an error code is one of UNWRITABLE, or an extended SQLite code of one (SQLITE_READONLY_DIRECTORY). */
const unwritable = (code: unknown): code is string =>
  typeof code === 'string' && UNWRITABLE.some((known) => code === known || code.startsWith(`${known}_`))

export interface ServerEvents {
  /** Something went wrong that the server survived. */
  error: [error: Error]
  /**
   * An entry of a published folder is not published (unreadable, a FIFO, socket or device, a
   * name that is not UTF-8): said once per entry. Clients asking SYNCED=1 get the count on
   * each synced mark, so they know their mirror is partial.
   */
  skipped: [entry: SkippedEntry]
  /** A line for the log (never a password). */
  log: [level: 'info' | 'warn', text: string]
}

/**
 * Frames larger than this are refused by libzmq before we see them (the connection is cut).
 * A reference client sends its whole RESYNC cache in one ICANHAZ, about 70 octets a file:
 * 64 MiB takes the cache of some 900,000 files. Our client sends parts of 48 KiB.
 */
const MAX_MESSAGE = 64 * 1024 * 1024

/** Octets of one client's messages waiting for its machine: past this, as past MAX_BACKLOG, it is dropped. */
const MAX_BACKLOG_OCTETS = 2 * MAX_MESSAGE

/** Messages of one client waiting for its machine: a client that sends faster than it is answered is dropped. */
const MAX_BACKLOG = 1000

/** Connections that stopped reading remembered at once (see `Server.deaf`). */
const MAX_DEAF = 10_000

/**
 * Publishes directories to FILEMQ clients.
 *
 * @example
 * ```ts
 * const server = new Server({ anonymous: true })
 * await server.publish('/srv/photos', '/photos')
 * await server.bind('tcp://127.0.0.1:5670')
 * // ...
 * await server.close()
 * ```
 */
export class Server extends EventEmitter<ServerEvents> implements ServerServices {
  /** Frozen; `configure` may replace it with one whose timings the config sets. */
  options: Readonly<ServerOptions>
  readonly publisher: Publisher
  policy: AccessPolicy
  accounts: Accounts
  readonly throttle: LoginThrottle
  readonly stats: ServerStats
  private readonly router: Router
  private readonly peers = new Map<string, Peer>()
  private readonly actions: ServerActions<Peer>
  private timer: NodeJS.Timeout
  /** When the heartbeat timer last ran (see `tick`). */
  private lastTick = Date.now()
  /** The options given to the constructor, which a config does not override. */
  private readonly given: Partial<ServerOptions>
  private readonly receiving: Promise<void>
  private closed = false
  /**
   * Connections dropped because they stopped reading, with when: what they still send is
   * ignored for `sendTimeout` ms, rather than answered into a queue that is full again (a
   * client flooding us without reading made one new client, one failed send and one log
   * line per message). Bounded: the oldest are forgotten first.
   */
  private readonly deaf = new Map<string, number>()
  /** The index the server opened (lazily, at the first publish, unless `stateDir` is given). */
  private index: FileIndex | undefined
  /** The ZAP domain that lets in only `curveClients`, once registered (at the first bind). */
  private zap: { domain: string; release: () => void } | undefined
  /** An endpoint is bound: libzmq fixes a listener's security when it binds. */
  private bound = false
  private curveOn = false

  constructor(options: Partial<ServerOptions> = {}) {
    super()
    this.options = Object.freeze({ ...DEFAULTS, ...options })
    this.given = options
    this.publisher = new Publisher({
      settle: this.options.settle,
      followOutside: this.options.followOutside,
      watch: this.options.watch,
      exclude: this.options.exclude ?? [],
      include: this.options.include ?? [],
      rescan: this.options.rescan,
      ...(this.options.poll === undefined ? {} : { poll: this.options.poll }),
    })
    const publisher = this.publisher
    const peers = this.peers
    this.stats = {
      contentBytes: 0,
      files: 0,
      loginsFailed: 0,
      get rescans() {
        return publisher.stats.rescans
      },
      get bytesHashed() {
        return publisher.stats.bytesHashed
      },
      get filesHashed() {
        return publisher.stats.filesHashed
      },
      get clients() {
        return peers.size
      },
    }
    if (this.options.stateDir !== undefined) this.openIndex(resolve(this.options.stateDir), false)
    this.policy = new AccessPolicy({ anonymous: this.options.anonymous, plain: this.options.plain })
    this.accounts = new Accounts(this.options.accounts)
    this.throttle = new LoginThrottle({ baseDelayMs: this.options.loginDelay })
    this.actions = new ServerPeerActions(this)
    this.router = new Router({
      // Never lose a message to the high-water mark: a send to a full queue fails at once
      // (sendTimeout 0) and write() tries again for that client alone.
      mandatory: true,
      sendHighWaterMark: this.options.messageBudget * 2,
      sendTimeout: 0,
      // Clients send only small messages; no peer can make libzmq buffer a huge frame.
      maxMessageSize: MAX_MESSAGE,
      // No ZMTP heartbeats: a client busy writing stops reading its socket, and libzmq would
      // then take its unanswered PINGs for a dead connection.
      linger: 0,
    })
    if (this.options.curve !== undefined) this.useCurve(this.options.curve)
    this.publisher.on('changed', (file) => this.announce(file.virtualPath, 'create'))
    this.publisher.on('removed', (virtualPath, kind) => this.announce(virtualPath, 'delete', kind === 'node'))
    this.publisher.on('node', (node) => this.announce(node.virtualPath, 'node', true))
    this.publisher.on('attributes', (file) => this.announce(file.virtualPath, 'attrs', true))
    this.publisher.on('error', (error) => this.emit('error', error))
    this.publisher.on('skipped', (entry) => this.emit('skipped', entry))
    this.publisher.on('log', (level, text) => this.emit('log', level, text))
    this.timer = this.startTicking()
    this.receiving = this.receive()
  }

  /** The clients the server holds state for, live: what src/observe reports on them. */
  get peerList(): readonly Peer[] {
    return [...this.peers.values()]
  }

  get chunkSize(): number {
    return this.options.chunkSize
  }

  get creditCap(): number {
    return this.options.creditCap
  }

  get messageBudget(): number {
    return this.options.messageBudget
  }

  /** Whether CURVE is on: every connection is encrypted, with the key pair of `options.curve` or `security/curve`. */
  get curve(): boolean {
    return this.curveOn
  }

  /** Binds to an endpoint (`tcp://host:port`, `ipc://path`); returns the endpoint actually bound. */
  async bind(endpoint: string): Promise<string> {
    if (!this.bound && this.curveOn && this.options.curveClients !== undefined) {
      // libzmq asks the ZAP handler about each CURVE handshake on a socket with a ZAP domain.
      const allowed = new Set(this.options.curveClients.map((key) => checkCurveKey(key, 'curveClients')))
      this.zap = await registerZapDomain((peer) => peer.publicKey !== undefined && allowed.has(peer.publicKey))
      this.router.zapDomain = this.zap.domain
    }
    this.bound = true
    await this.router.bind(endpoint)
    return this.router.lastEndpoint ?? endpoint
  }

  /** Publishes a local directory under a virtual path; several mounts may overlap. */
  async publish(location: string, virtualPath = '/'): Promise<void> {
    const directory = resolve(location)
    // The default state directory lives in the first directory published (never in one that is not there).
    if (this.index === undefined) {
      const isDirectory = (await stat(directory).catch(() => undefined))?.isDirectory() === true
      if (isDirectory && this.index === undefined) this.openIndex(join(directory, '.fmq'), true)
    }
    await this.publisher.publish(directory, virtualPath)
  }

  /**
   * Applies a ZPL config as the reference does: `server/heartbeat` (seconds) and
   * `server/timeout` (milliseconds) set the timings, `security/...` sets access and accounts,
   * every `publish` section (location, virtual) is a publish call, every `bind` section
   * (endpoint) a bind call. Ours: `security/curve/keys` (a key file of `fmq keygen`) turns
   * CURVE on, unless `security/curve = 0` or the `curve` option gave keys already (explicit
   * options win over a config); before any bind only. Doubtful values (a heartbeat of 1000
   * seconds, an unknown key) are 'log' warnings naming file and line; `configSource` names the
   * file a tree given here came from.
   *
   * @example
   * ```ts
   * const server = new Server()
   * await server.configure('config/server-plain.cfg')
   * ```
   */
  async configure(config: string | ZplNode, configSource?: string): Promise<void> {
    const root = typeof config === 'string' ? await loadZplFile(config) : config
    // A tree read elsewhere may say which file it came from, for errors that point at a line.
    const source = typeof config === 'string' ? config : configSource
    const read = new ConfigReader(root, source)
    const timings = serverTimings(read)
    for (const warning of read.warnings) this.log('warn', String(warning))
    if (Object.keys(timings).length > 0) {
      // Explicit options win over a config.
      this.options = Object.freeze({ ...this.options, ...timings, ...pick(this.given, 'heartbeat', 'maxSilence') })
      clearInterval(this.timer)
      this.timer = this.startTicking()
    }
    if (root.at('security')) {
      this.policy = AccessPolicy.fromConfig(root, source)
      this.accounts = Accounts.fromConfig(root, source)
      const curve = root.at('security/curve')
      if (curve !== undefined && curve.value !== '0' && this.options.curve === undefined) {
        if (curve.value !== '' && curve.value !== '1') throw new AccountConfigError(`security/curve must be 0 or 1, not '${curve.value}'`, curve.line, source)
        const keys = curve.at('keys')
        if (keys === undefined || keys.value === '') throw new AccountConfigError('security/curve needs keys = FILE, a key file of fmq keygen', keys?.line ?? curve.line, source)
        if (this.bound) throw new AccountConfigError('security/curve: the server is bound already; configure CURVE before the first bind', curve.line, source)
        this.useCurve(await loadCurveKeyPair(keys.value))
      }
    }
    for (const section of root.all('publish')) {
      await this.publish(section.get('location', '.'), section.get('virtual', '/'))
    }
    for (const section of root.all('bind')) {
      await this.bind(section.get('endpoint', 'tcp://*:5670'))
    }
  }

  /** The heartbeat and expiry timer: twice per heartbeat, so a HUGZ is never late by more than half of one. */
  private startTicking(): NodeJS.Timeout {
    const timer = setInterval(() => this.tick(), Math.max(10, Math.floor(this.options.heartbeat / 2)))
    timer.unref()
    return timer
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.zap?.release()
    for (const peer of this.peers.values()) await peer.forget()
    this.peers.clear()
    await this.publisher.close()
    this.index?.close()
    this.router.close()
    await this.receiving
  }

  /**
   * Makes the router a CURVE server. The handshake failures it sees become 'log' lines, at
   * most one per 10 s (libzmq retries a refused client every 100 ms), never with a key.
   */
  private useCurve(keys: CurveKeyPair): void {
    this.router.curveServer = true
    this.curveOn = true
    this.router.curveSecretKey = checkCurveKey(keys.secretKey, 'curve.secretKey')
    this.router.curvePublicKey = checkCurveKey(keys.publicKey, 'curve.publicKey')
    let logged = 0
    let since = 0
    void (async () => {
      for await (const event of this.router.events) {
        if (event.type !== 'handshake:error:protocol' && event.type !== 'handshake:error:auth' && event.type !== 'handshake:error:other') continue
        since++
        if (Date.now() - logged < 10_000) continue
        // A wrong server key shows as ERR_ZMTP_CRYPTOGRAPHIC, a client without CURVE as ERR_ZMTP_MECHANISM_MISMATCH.
        const code = (event.error as { code?: string }).code ?? event.error.message
        this.log('info', `CURVE handshake failed on ${event.address} (${code})${since > 1 ? `, ${since} failures in all since the last report` : ''}`)
        logged = Date.now()
        since = 0
      }
    })().catch(() => undefined)
  }

  /**
   * Opens the node database and the index of published files. A default location we may
   * not write (a read-only share) falls back to an in-memory index; any other failure, or
   * one of a location given explicitly, is thrown.
   */
  private openIndex(stateDir: string, fallback: boolean): void {
    const onError = (error: Error): void => {
      this.emit('error', error)
    }
    try {
      this.index = FileIndex.open(stateDir, { onError })
    } catch (error) {
      const code = error instanceof StoreOpenError ? (error.cause as { code?: unknown } | undefined)?.code : undefined
      if (!fallback || !unwritable(code)) throw error
      this.log('warn', `cannot write the state directory ${stateDir} (${code}): the file index is kept in memory and rebuilt at each start`)
      this.index = FileIndex.open(':memory:', { onError })
    }
    this.publisher.useIndex(this.index)
  }

  // ServerServices, used by the actions.

  async send(peer: Peer, id: Message['id']): Promise<void> {
    if (!peer.alive || this.closed) return
    const frames = peer.codec.encode(peer.message(id))
    peer.lastSent = Date.now()
    if (id === MessageId.HUGZ) peer.probeMark = peer.sentContent
    if (++peer.unanswered === Math.floor(this.options.messageBudget / 2) && (peer.version === 1 || peer.eofData) && !peer.probing) {
      // Ask a version-1 client, or one of ours, for a sign of life: its answer tells us it has
      // read all we sent before. A reference version-2 client asks us with HUGZ once we pause,
      // which unblocks too.
      peer.probing = true
      void peer.machine.handle('heartbeat')
    }
    try {
      await this.write([peer.routingId, ...frames])
    } catch (error) {
      // EHOSTUNREACH: the client is gone; EAGAIN: it stopped reading for sendTimeout.
      this.log('warn', `dropping client ${peer.key}: ${(error as Error).message}`)
      if ((error as { code?: unknown }).code === 'EAGAIN') this.deafen(peer.key)
      this.drop(peer)
      await peer.forget()
    }
  }

  /**
   * Sends one message on the router, never waiting on another client. The router's sends
   * never block (sendTimeout 0): zeromq.js allows one send in progress per socket, so one
   * send waiting on a client that stopped reading would hold back every other client, and a
   * send it defers to the next turn of the event loop (after 512 immediate operations in one
   * turn) made concurrent sends fail with "Socket is busy writing" — with 1,500 clients
   * answered at once, hundreds were dropped. A client whose queue is full (EAGAIN) is tried
   * again alone, backing off to 50 ms, for up to `sendTimeout` ms; then the error is thrown.
   */
  private async write(frames: Buffer[]): Promise<void> {
    const deadline = Date.now() + this.options.sendTimeout
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      try {
        await this.router.send(frames)
        return
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'EAGAIN' || this.closed || Date.now() >= deadline) throw error
      }
      await delay(pause)
    }
  }

  /** Ignores a connection that stopped reading for a while (see `deaf`). */
  private deafen(key: string): void {
    this.deaf.delete(key)
    this.deaf.set(key, Date.now())
    for (const oldest of this.deaf.keys()) {
      if (this.deaf.size <= MAX_DEAF) break
      this.deaf.delete(oldest)
    }
  }

  drop(peer: Peer): void {
    peer.alive = false
    if (this.peers.get(peer.key) === peer) this.peers.delete(peer.key)
  }

  revive(peer: Peer): void {
    // An OHAI queued behind the message that ended this client (RTFM, then OHAI at once):
    // known again, as a new client, unless a newer one holds its routing id.
    if (peer.alive || this.closed || this.peers.has(peer.key)) return
    peer.alive = true
    peer.expiring = false
    peer.lastHeard = Date.now()
    peer.unanswered = 0
    this.peers.set(peer.key, peer)
  }

  log(level: 'info' | 'warn', text: string): void {
    this.emit('log', level, text)
  }

  private async receive(): Promise<void> {
    try {
      for await (const [routingId, ...frames] of this.router) {
        this.dispatch(routingId!, frames)
      }
    } catch (error) {
      if (!this.closed) this.emit('error', error as Error)
    }
  }

  /** One message from one client: decode it with that client's codec and feed its machine. */
  private dispatch(routingId: Buffer, frames: Buffer[]): void {
    const key = routingId.toString('hex')
    let peer = this.peers.get(key)
    if (peer === undefined && this.deaf.size > 0) {
      const since = this.deaf.get(key)
      if (since !== undefined && Date.now() - since < this.options.sendTimeout) return
      this.deaf.delete(key)
    }
    let message: Message
    let version: ProtocolVersion | undefined
    try {
      ;({ message, version } = this.decode(peer, frames))
    } catch (error) {
      // spec 19: a message without the signature is dropped silently.
      if (error instanceof NoSignatureError) return
      const reason = error instanceof MalformedMessageError ? error.message : 'undecodable'
      this.log('warn', `malformed message from client ${key}: ${reason}`)
      void this.write([routingId, ...codecs[2].encode({ id: MessageId.RTFM, reason: reason.slice(0, 255) })]).catch(() => undefined)
      if (peer) {
        this.drop(peer)
        // Forgotten once its machine is done with what it is doing: forgetting under an action
        // that is opening a file left that file open (found by test/fuzz/server.test.ts).
        void peer.machine.handle('expired')
      }
      return
    }
    if (!peer) {
      peer = new Peer(Buffer.from(routingId), key)
      peer.machine = new Machine(serverTable, this.actions, peer, {
        error: (error) => this.emit('error', error as Error),
      })
      peer.codec = codecs[peer.version]
      this.peers.set(key, peer)
    }
    if (version !== undefined) {
      peer.version = version
      peer.codec = codecs[version]
    }
    const stalled = peer.unanswered >= this.options.messageBudget
    // Any message is life. But a HUGZ from one of our clients (EOFDATA) says only that: it
    // sends one once a heartbeat however far behind it is, so it is no sign it has read what
    // we sent (its answer to our probe is); a reference client sends HUGZ only once we pause.
    peer.lastHeard = Date.now()
    if (message.id !== MessageId.HUGZ || !peer.eofData) {
      peer.unanswered = 0
      peer.probing = false
    }
    const octets = frames.reduce((sum, frame) => sum + frame.length, 0)
    if (peer.backlog >= MAX_BACKLOG || peer.backlogOctets + octets > MAX_BACKLOG_OCTETS) {
      // It floods us without waiting for answers: no queue of ours grows for it.
      const what = peer.backlog >= MAX_BACKLOG ? `${MAX_BACKLOG} messages` : `${MAX_BACKLOG_OCTETS} octets of messages`
      this.log('warn', `dropping client ${key}: more than ${what} waiting to be handled`)
      this.deafen(key)
      this.drop(peer)
      void peer.machine.handle('expired')
      return
    }
    peer.backlog++
    peer.backlogOctets += octets
    const current = peer
    void peer.machine.handle(MessageName[message.id] as ServerEvent, message).finally(() => {
      current.backlog--
      current.backlogOctets -= octets
    })
    if (stalled) void peer.machine.handle('dispatch')
  }

  /** OHAI chooses the version (either codec may decode it); everything else uses the client's. */
  private decode(peer: Peer | undefined, frames: Buffer[]): { message: Message; version?: ProtocolVersion } {
    const first = frames[0]
    if (peer === undefined || (first !== undefined && first.length > 2 && first[2] === MessageId.OHAI)) {
      let failure: unknown
      for (const version of [2, 1] as const) {
        try {
          const message = codecs[version].decode(frames)
          return message.id === MessageId.OHAI ? { message, version } : { message }
        } catch (error) {
          failure ??= error
          if (error instanceof NoSignatureError) throw error
        }
      }
      throw failure
    }
    return { message: peer.codec.decode(frames) }
  }

  /**
   * A published entry changed or vanished: queue it for every client whose subscriptions cover
   * it; directories, links and attribute changes only for clients that mirror the tree.
   */
  private announce(virtualPath: string, operation: Patch['operation'], treeOnly = false): void {
    for (const peer of this.peers.values()) {
      if ((treeOnly && !peer.tree) || !peer.covers(virtualPath)) continue
      peer.enqueue({ operation, virtualPath })
      void peer.machine.handle('dispatch')
    }
  }

  /**
   * Heartbeats and expiry, as the reference peers expect them. A version-1 client gets
   * HUGZ after a heartbeat of its silence, answers it, and is forgotten after `expiry`
   * heartbeats of silence. A version-2 client asks with HUGZ itself, but only once it has
   * worked through what we sent, which may take long on a slow disk: it is forgotten
   * after `maxSilence`, as the version-2 reference does. A send to a vanished client
   * fails and drops it.
   */
  private tick(): void {
    const now = Date.now()
    const { heartbeat, expiry, maxSilence } = this.options
    // A tick that comes late found the event loop busy: what clients sent meanwhile may still
    // wait unread in the socket, so nobody is judged silent on this one.
    const late = now - this.lastTick > Math.max(heartbeat, 1000)
    this.lastTick = now
    if (late) return
    for (const peer of [...this.peers.values()]) {
      const silence = now - peer.lastHeard
      if (silence > (peer.version === 1 ? heartbeat * expiry : maxSilence)) {
        if (peer.expiring) continue
        peer.expiring = true
        this.log('info', `client ${peer.key} expired after ${silence} ms of silence`)
        void peer.machine.handle('expired')
      } else if (peer.version === 1 && silence >= heartbeat && now - peer.lastHugz >= heartbeat) {
        peer.lastHugz = now
        void peer.machine.handle('heartbeat')
      }
    }
  }
}

/** The fields of `options` that are set, among `keys`. */
function pick<K extends keyof ServerOptions>(options: Partial<ServerOptions>, ...keys: K[]): Partial<Pick<ServerOptions, K>> {
  const picked: Partial<Pick<ServerOptions, K>> = {}
  for (const key of keys) if (options[key] !== undefined) picked[key] = options[key]
  return picked
}
