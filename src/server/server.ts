/**
 * The FILEMQ server: one ROUTER socket, one generated state machine per client, the
 * hand-written actions in actions.ts, and the publisher that watches the mounts.
 */
import { DELTA_MIN } from '../protocol/delta.js'
import { EventEmitter } from 'node:events'
import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Router } from 'zeromq'
import { serverConfig } from '../config/settings.js'
import { loadZplFile, type ZplNode } from '../config/zpl.js'
import { Machine } from '../protocol/fsm.js'
import { MalformedMessageError, NoSignatureError } from '../protocol/errors.js'
import { codecs } from '../protocol/generated/fmq_codecs.js'
import { type Message, MessageId, MessageName, type ProtocolVersion } from '../protocol/generated/fmq_msg.js'
import { type ServerActions, type ServerEvent, type ServerState, serverTable } from '../protocol/generated/fmq_server_fsm.js'
import { AccessPolicy, Accounts } from '../security/accounts.js'
import { checkCurveKey, type CurveKeyPair } from '../security/curve.js'
import { registerZapDomain } from '../security/zap.js'
import { LoginThrottle } from '../security/throttle.js'
import { StoreOpenError } from '../store/database.js'
import { ServerPeerActions, type ServerServices } from './actions.js'
import { FileIndex } from './file-index.js'
import { type Patch, Peer } from './peer.js'
import { Publisher, type SkippedEntry } from './publisher.js'
import { ServerConfigError } from './errors.js'
import { loadServerKeys, resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js'
import { type AccessReload, AccessReloader } from './reload.js'
import { interrupted, received } from '../util/interrupted.js'
import { Outbox } from './outbox.js'
import { digestsReady } from '../fs/digest.js'

export type { ServerOptions } from './options.js'

/** Counters for monitoring and tests. */
export interface ServerStats {
  /** Octets of file content sent, to every client together (counted by the actions). */
  contentBytes: number
  /** Whole files sent, to every client together (counted by the actions). */
  files: number
  /** Logins refused: a wrong login or password, or an account cooling down after such. */
  loginsFailed: number
  /** Parts of delta signatures received (PART=1): a signature of more than 1024 chunks comes so. */
  signatureParts: number
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
  /**
   * An edit of the config's accounts or of the CURVE client keys was taken up (see
   * `watchAccess`), with a line saying what changed (logins, never passwords; counts of keys).
   * A broken edit is a 'log' warning instead.
   */
  reloaded: [what: 'accounts' | 'client-keys', text: string]
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
  /** Checked and frozen (`resolveServerOptions`); `configure` and a reload replace it whole. */
  options: ResolvedServerOptions
  /** Who may connect: replaced whole by `configure` and by a reload, for the connections after. */
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
  private current: Publisher
  /** Whether a folder was published: the publisher's options are fixed from then on. */
  private publishing = false
  /** With `curveClients`, the keys the ZAP handler lets in now (a reload replaces the set). */
  private curveAllowed: ReadonlySet<string> | undefined
  /** Watches the config and client keys for `watchAccess`. */
  private reloader: AccessReloader | undefined
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
    this.options = resolveServerOptions(options)
    this.given = options
    this.current = this.makePublisher()
    const server = this
    const peers = this.peers
    this.stats = {
      contentBytes: 0,
      files: 0,
      loginsFailed: 0,
      signatureParts: 0,
      get rescans() {
        return server.publisher.stats.rescans
      },
      get bytesHashed() {
        return server.publisher.stats.bytesHashed
      },
      get filesHashed() {
        return server.publisher.stats.filesHashed
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
    if (this.options.curveClients !== undefined) this.curveAllowed = new Set(this.options.curveClients)
    this.timer = this.startTicking()
    this.receiving = this.receive()
  }

  /** The clients the server holds state for, live: what src/observe reports on them. */
  get peerList(): readonly Peer[] {
    return [...this.peers.values()]
  }

  /** What watches and reads the published folders. */
  get publisher(): Publisher {
    return this.current
  }

  /** A publisher with the current options, wired to the server (a config may replace the first before anything is published). */
  private makePublisher(): Publisher {
    const publisher = new Publisher({
      settle: this.options.settle,
      followOutside: this.options.followOutside,
      watch: this.options.watch,
      exclude: this.options.exclude ?? [],
      include: this.options.include ?? [],
      rescan: this.options.rescan,
      ...(this.options.poll === undefined ? {} : { poll: this.options.poll }),
    })
    // A new version big enough for a delta (DELTA=1) may be offered as one.
    publisher.on('changed', (file, replaced) => this.announce(file.virtualPath, 'create', false, replaced && file.size >= DELTA_MIN))
    publisher.on('removed', (virtualPath, kind) => this.announce(virtualPath, 'delete', kind === 'node'))
    publisher.on('node', (node) => this.announce(node.virtualPath, 'node', true))
    publisher.on('attributes', (file) => this.announce(file.virtualPath, 'attrs', true))
    publisher.on('error', (error) => this.emit('error', error))
    publisher.on('skipped', (entry) => this.emit('skipped', entry))
    publisher.on('log', (level, text) => this.emit('log', level, text))
    if (this.index !== undefined) publisher.useIndex(this.index)
    return publisher
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
    await digestsReady()
    if (!this.bound && this.curveOn && this.curveAllowed !== undefined) {
      // libzmq asks the ZAP handler about each CURVE handshake on a socket with a ZAP domain:
      // a reload replaces curveAllowed, so the next handshake meets the new keys.
      this.zap = await registerZapDomain((peer) => peer.publicKey !== undefined && this.curveAllowed?.has(peer.publicKey) === true)
      this.router.zapDomain = this.zap.domain
    }
    this.bound = true
    await this.router.bind(endpoint)
    return this.router.lastEndpoint ?? endpoint
  }

  /** Publishes a local directory under a virtual path; several mounts may overlap. */
  async publish(location: string, virtualPath = '/'): Promise<void> {
    await digestsReady()
    const directory = resolve(location)
    // The default state directory lives in the first directory published (never in one that is not there).
    if (this.index === undefined) {
      const isDirectory = (await stat(directory).catch(() => undefined))?.isDirectory() === true
      if (isDirectory && this.index === undefined) this.openIndex(join(directory, '.fmq'), true)
    }
    this.publishing = true
    await this.publisher.publish(directory, virtualPath)
  }

  /**
   * Applies a ZPL config as the reference does, read by the one mapping of every role
   * (`serverConfig`, as `fmq server` and the relay): `server/heartbeat` (seconds),
   * `server/timeout` (milliseconds), `server/rescan` and `server/poll` (seconds),
   * `server/state`, `server/follow-outside`, `security/...` (access and accounts); every
   * `publish` section (location, virtual) is a publish call, every `bind` section (endpoint)
   * a bind call. Ours: `security/curve/keys` (a key file of `fmq keygen`) turns CURVE on, and
   * `security/curve/clients` (a folder of client public keys) lets in only those clients,
   * before the first bind only. Options given to the constructor win over the config. The
   * publisher's settings (rescan, poll, follow-outside) apply only before anything is
   * published. Doubtful values (a heartbeat of 1000 seconds, an unknown key) are 'log'
   * warnings naming file and line; `source` names the file a tree given here came from.
   * With `reload: true` and a file, edits to its accounts (and to the client keys folder)
   * are taken up while the server runs (see {@link Server.watchAccess}).
   *
   * @example
   * ```ts
   * const server = new Server()
   * await server.configure('config/server-plain.cfg', { reload: true })
   * ```
   */
  async configure(config: string | ZplNode, { source: given, reload = false }: { source?: string; reload?: boolean } = {}): Promise<void> {
    const root = typeof config === 'string' ? await loadZplFile(config) : config
    // A tree read elsewhere may say which file it came from, for errors that point at a line.
    const source = typeof config === 'string' ? config : given
    const settings = serverConfig(root, source)
    for (const warning of settings.warnings) this.log('warn', String(warning))
    const keys = await loadServerKeys(this.options.curve === undefined ? settings : { clientKeys: settings.clientKeys })
    await this.reconfigure({ ...settings.options, ...keys })
    if (reload && typeof config === 'string') await this.watchAccess({ config, ...(settings.clientKeys === undefined ? {} : { clientKeys: settings.clientKeys }) })
    for (const mount of settings.publish) await this.publish(mount.location, mount.virtualPath)
    for (const endpoint of settings.bind) await this.bind(endpoint)
  }

  /**
   * Takes options from a config, under those given to the constructor, checked as a whole:
   * the timings restart the heartbeat, access and accounts serve the next connections, CURVE
   * and its client keys apply before the first bind, the publisher's settings before the
   * first publish.
   */
  private async reconfigure(fromConfig: Partial<ServerOptions>): Promise<void> {
    const next = resolveServerOptions({ ...this.options, ...fromConfig, ...this.explicit() })
    // Lists are copied by the resolver: compared by content.
    const publisherChanged = [...PUBLISHER_OPTIONS].some((key) => JSON.stringify(next[key]) !== JSON.stringify(this.options[key]))
    const accounts = new Accounts(next.accounts)
    if (next.curve !== undefined && !this.curveOn && this.bound) throw new ServerConfigError('CURVE: the server is bound already; configure CURVE before the first bind')
    if (next.curveClients !== undefined && this.curveAllowed === undefined && this.bound) {
      throw new ServerConfigError('CURVE client keys: the server is bound already; configure them before the first bind')
    }
    if (this.publishing && publisherChanged) {
      throw new ServerConfigError('rescan, poll, follow-outside: the server publishes already; configure before the first publish')
    }
    const previous = this.options
    this.options = next
    this.policy = new AccessPolicy({ anonymous: next.anonymous, plain: next.plain })
    this.accounts = accounts
    if (next.heartbeat !== previous.heartbeat) {
      clearInterval(this.timer)
      this.timer = this.startTicking()
    }
    if (next.curve !== undefined && !this.curveOn) this.useCurve(next.curve)
    if (next.curveClients !== undefined) this.curveAllowed = new Set(next.curveClients)
    if (next.stateDir !== undefined && this.index === undefined) this.openIndex(resolve(next.stateDir), false)
    if (!this.publishing && publisherChanged) {
      const old = this.current
      this.current = this.makePublisher()
      await old.close()
    }
  }

  /** The options given to the constructor that are set: they win over any config. */
  private explicit(): Partial<ServerOptions> {
    return Object.fromEntries(Object.entries(this.given).filter(([, value]) => value !== undefined))
  }

  /**
   * Takes up edits while the server runs, watching `config` (its `security` section: access
   * switches and accounts) and the folder `clientKeys` (the public keys of the CURVE clients
   * let in, with `curveClients`). What changes serves the connections after: sessions already
   * in stay. Each reload is a 'reloaded' event; a broken edit is a 'log' warning naming file and
   * line, and the last good settings stay. Options given to the constructor still win (a
   * `read` may lay other layers, as `fmq server`'s flags). Resolves once watching.
   *
   * @example
   * ```ts
   * await server.watchAccess({ config: 'server.cfg', clientKeys: 'keys/clients' })
   * server.on('reloaded', (what, text) => console.log(text)) // accounts reloaded from server.cfg: 2 accounts (added bob); ...
   * ```
   */
  async watchAccess(reload: AccessReload): Promise<void> {
    if (reload.clientKeys !== undefined && this.curveAllowed === undefined) {
      throw new ServerConfigError('watching client keys needs CURVE with a list of client keys (curveClients, security/curve/clients, --client-keys)')
    }
    await this.reloader?.close()
    const given = this.explicit()
    this.reloader = await AccessReloader.start(reload, {
      access: () => ({ policy: this.policy, accounts: this.accounts, clients: this.curveAllowed }),
      read: (root, source) => {
        const settings = serverConfig(root, source)
        return { options: { ...settings.options, ...given }, warnings: settings.warnings }
      },
      apply: ({ policy, accounts, clients }) => {
        if (policy !== undefined) this.policy = policy
        if (accounts !== undefined) this.accounts = accounts
        if (clients !== undefined) this.curveAllowed = clients
      },
      reloaded: (what, text) => this.emit('reloaded', what, text),
      log: (level, text) => this.log(level, text),
    })
  }

  /** The heartbeat and expiry timer: twice per heartbeat, so a HUGZ is never late by more than half of one. */
  private startTicking(): NodeJS.Timeout {
    const timer = setInterval(() => this.tick(), Math.max(10, Math.floor(this.options.heartbeat / 2)))
    timer.unref()
    return timer
  }

  async close(): Promise<void> {
    if (this.closed) return
    // What is ready goes, as a message sent alone would have.
    for (const peer of this.peers.values()) await peer.outbox?.flush()
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    await this.reloader?.close()
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
      for await (const event of received(this.router.events)) {
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
    // BATCH=1 (ours): joined with what else is ready for this client (outbox.ts); a version-2 message is one frame.
    if (peer.batch && frames.length === 1) {
      peer.outbox ??= new Outbox((batch) => this.deliver(peer, batch))
      await peer.outbox.add(frames[0]!)
      return
    }
    // Never ahead of a batch still queued.
    if (peer.outbox !== undefined) await peer.outbox.flush()
    await this.deliver(peer, frames)
  }

  /** Writes the frames of one message, or of a batch, to a client; a client that cannot take them is dropped. */
  private async deliver(peer: Peer, frames: Buffer[]): Promise<void> {
    if (!peer.alive || this.closed) return
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
        if (interrupted(error)) continue
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
      for await (const [routingId, ...frames] of received(this.router)) {
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
  private announce(virtualPath: string, operation: Patch['operation'], treeOnly = false, replaced = false): void {
    for (const peer of this.peers.values()) {
      if ((treeOnly && !peer.tree) || !peer.covers(virtualPath)) continue
      // A new version of a file the client was sent: worth offering as a delta (DELTA=1).
      peer.enqueue(operation === 'create' && replaced ? { operation, virtualPath, replaced } : { operation, virtualPath })
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

/** The options the publisher is made with: changed by a config before the first publish, a new publisher takes them. */
const PUBLISHER_OPTIONS = new Set<keyof ServerOptions>(['settle', 'followOutside', 'watch', 'exclude', 'include', 'rescan', 'poll'])
