/**
 * One server the client talks to: its DEALER socket, its state machine, the protocol version
 * and codec of the current conversation, credit accounting, the files coming in, and timers
 * (greeting, heartbeat, reconnection). The actions (actions.ts) steer it; this file owns the
 * plumbing.
 *
 * Every input of the machine (a message from the socket, a timer, an API call) goes through
 * {@link ServerLink.post}, one at a time, so a message read from a socket that has been
 * replaced since is dropped instead of being taken for part of the new conversation.
 *
 * @packageDocumentation
 */
import { curveKeyPair, Dealer } from 'zeromq'

import { Machine } from '../protocol/fsm.js'
import { MalformedMessageError, NoSignatureError } from '../protocol/errors.js'
import { codecs, type Codec } from '../protocol/generated/fmq_codecs.js'
import {
  CHUNK_SIZE,
  MessageName,
  type Icanhaz,
  type Message,
  type ProtocolVersion,
} from '../protocol/generated/fmq_msg.js'
import {
  clientTable,
  type ClientActions,
  type ClientEvent,
  type ClientState,
} from '../protocol/generated/fmq_client_fsm.js'
import type { DurableState, MutableStats } from './durable.js'
import type { DigestAlgorithm } from '../fs/digest.js'
import { FEATURE, type Feature } from '../protocol/extensions.js'
import type { CacheStream } from './cache.js'
import type { ClientEventMap } from './events.js'
import { InboxWriter } from './inbox-writer.js'
import { backoff, type ResolvedClientOptions } from './options.js'
import { CreditBucket, REFILL_INTERVAL_MS } from './rate.js'
import { CurveHandshakeError, type SubscriptionRefusedError } from './errors.js'
import { batchHandled, chunksReleased } from '../util/memory.js'
import { received, sent } from '../util/interrupted.js'

/** Receive limit floor: libzmq refuses (and disconnects) anything larger than this or the window. */
const MIN_MAX_MESSAGE = 16 * 1024 * 1024
/** Room for the fields around a chunk (file name, headers). */
const MESSAGE_OVERHEAD = 64 * 1024
/** How long a final KTHXBAI may linger in libzmq once the socket is closed. */
const CLOSE_LINGER_MS = 100
/** First pause before asking again for a file the disk had no room for (then doubling, capped). */
const SPACE_RETRY_MS = 500

/**
 * Messages of content a window of credit lets the server have on the way at most. 8 MB of
 * 4 KiB files were 1,900 messages waiting in libzmq when the disk was slow, about 10 MiB of a
 * client's peak; 512 keep the pipe as full (a NOM every 256 files).
 */
const MESSAGES_IN_FLIGHT = 512
/** What a message of content costs besides its content: its frame, file name and headers. */
const MESSAGE_COST_OVERHEAD = 256

/** Put in the place of a frame of a batch once handled. */
const EMPTY = Buffer.alloc(0)

/** What a link needs from the client that owns it. */
export interface LinkOwner {
  readonly options: ResolvedClientOptions
  /** The client's counters (`client.stats`). */
  readonly stats: MutableStats
  /** The inbox and state directory as they are now. */
  paths(): { inbox: string; stateDir: string }
  /** The node database of the state directory; undefined once the client is closed. */
  durable(): DurableState | undefined
  /** Subscriptions to replay on every (re)connect, in the order they were made. */
  subscriptions(): readonly string[]
  publish<K extends keyof ClientEventMap>(type: K, payload: ClientEventMap[K][0]): void
  subscriptionAccepted(path: string, endpoint: string): void
  subscriptionRefused(error: SubscriptionRefusedError): void
  /** The link stopped for good (access denied): pending subscriptions may never be answered. */
  linkStopped(link: ServerLink, reason: string): void
  /** A RESYNC cache of this subscription read ahead (`Client.prepare`), in tree form, taken once. */
  preparedCache(path: string): Promise<PreparedResync> | undefined
  /** Whether a cache of this subscription is read ahead (`Client.prepare`), not taken yet. */
  hasPrepared(path: string): boolean
  /** Whether the client holds at least `count` entries under this subscription (its manifest, or its inbox as it is). */
  holdsAtLeast(path: string, count: number): boolean
  /** Aborted when the client closes: walks of the inbox stop then. */
  readonly closing: AbortSignal
}

/**
 * A RESYNC cache made: whole (`cache`), or in parts for a version-2 server that takes parts
 * (`stream`, cut as the inbox is walked).
 */
export interface PreparedResync {
  readonly cache?: Map<string, string>
  readonly stream?: CacheStream
  /** The stream sums folders (SUMS), for a server that named SUMS. */
  readonly sums?: boolean
}

/**
 * An ICANHAZ waiting to go out: one of the user's subscriptions, or a re-ask, asking once more
 * for a single file that arrived corrupted (`RESYNC=1`, `ONCE=1`, empty cache). A re-ask is
 * not a subscription: its answer is neither published nor settles `subscribe()`.
 */
export interface PendingIcanhaz {
  readonly path: string
  readonly reask: boolean
  /** A FEATURES=1 question alone (not a subscription), to path FEATURES_PATH. */
  readonly features?: boolean
  /** A subscription that also asks FEATURES=1: the first of a conversation, while the server's extensions are unknown. */
  readonly asksFeatures?: boolean
  /** The parts of a cache still to come, cut as the inbox is walked: taken one at a time as they may go. */
  readonly stream?: CacheStream
  /** One part of a cache carried in parts (MORE=1 unless the last): its entries, by virtual path. */
  readonly part?: { readonly cache: Map<string, string>; readonly more: boolean }
  /** A re-ask answering a DELTA offer: the chunking bits its cache's signature is cut with. */
  readonly delta?: number
  /** A re-ask of a folder whose sum differs (SUMS, operation DIFFERS): FOLDER=1, its cache the folder's direct entries. */
  readonly folder?: boolean
  /** A subscription whose cache sums folders (SUMS=1). */
  readonly sums?: boolean
  /** A part of the signature of the re-ask that follows (option SIGNATURE with PART=1, DELTA): no cache. */
  readonly signaturePart?: string
}

/** A pending ICANHAZ whose cache is computed, ready to go out. */
export interface PreparedSubscription {
  readonly entry: PendingIcanhaz
  readonly cache: Map<string, string>
}

/** Per-server state; `ServerLink` is the context of the client machine's actions. */
export class ServerLink {
  readonly machine: Machine<ClientActions<ServerLink>, ClientState, ClientEvent, ServerLink>
  readonly writer: InboxWriter

  socket: Dealer | undefined
  /** Bumped whenever the socket is replaced: messages of an older socket are dropped. */
  private socketGeneration = 0
  /** Bumped on every greeting: timers of an older conversation do nothing. */
  conversation = 0

  /** The version and codec of the current conversation. */
  version: ProtocolVersion
  codec: Codec
  /** Index in `options.versions` of the next version to try when none is known to work. */
  versionIndex = 0
  /** The version a server accepted (or answered ORLY in): used first on every reconnection. */
  workingVersion: ProtocolVersion | undefined
  /** Failed attempts since the last OHAI-OK: drives the backoff. */
  failures = 0

  /** Fields of the next YARLY, ICANHAZ and NOM, set by actions before "send". */
  yarly: { mechanism: string; response: Buffer } | undefined
  icanhaz: { message: Icanhaz; entry: PendingIcanhaz } | undefined
  nomCredit = 0

  /** What the server named in its answer to FEATURES=1; undefined until it answered (a reference server: empty). */
  features: Set<Feature> | undefined

  /** Subscriptions (and re-asks) not yet sent in this conversation, in order. */
  unsent: PendingIcanhaz[] = []
  /** Subscriptions sent in this conversation (re-asks are not). */
  readonly sent = new Set<string>()
  /** ICANHAZ sent and not yet answered, in order (the server answers in order). */
  awaitingAnswer: PendingIcanhaz[] = []
  /** Subscriptions this server refused: not replayed to it. */
  readonly refusedPaths = new Set<string>()
  prepared: PreparedSubscription | undefined
  /** The conversation a cache is being computed for, if any. */
  preparing: number | undefined

  /** The server answered this greeting (ORLY): its version works, it is just slow or strict. */
  answered = false
  /** Why access was denied when no SRSLY says it (no usable mechanism). */
  deniedReason = ''
  /** Set when the server refused access: the link stays stopped until `connect()` again. */
  refusal: string | undefined

  /** Octets of content the server may still send: granted minus received. */
  credit = 0
  /**
   * The octets a message of content costs, on a running average (its content and what
   * travels around it): the window of credit holds at most {@link MESSAGES_IN_FLIGHT} of them.
   */
  messageCost = CHUNK_SIZE
  /** Credit is granted once a subscription of this conversation is accepted. */
  creditOpen = false
  /** The sequence of the last CHEEZBURGER, echoed in NOM as the v2 reference does. */
  lastSequence = 0n
  /** With `rateLimit`: the tokens credit is granted from (kept across conversations). */
  readonly bucket: CreditBucket | undefined

  /** The server's CURVE public key given to `connect()` for this server; else the client's option. */
  curveServerKey: string | undefined
  /** The client's own CURVE pair on this link: the option's, or one made for the link. */
  private curvePair: { publicKey: string; secretKey: string } | undefined
  /** A handshake failure was reported and no handshake has succeeded since: not reported again. */
  private handshakeReported = false

  /** A conversation reached OHAI-OK and its end has not been reported yet. */
  announced = false
  closing = false
  disposed = false

  private lastHeard = Date.now()
  /** When we last sent the server anything: it must hear from us once a heartbeat, however busy we are. */
  private lastSent = Date.now()
  private inFlight = 0
  private input: Promise<void> = Promise.resolve()
  private greetingTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private refillTimer: NodeJS.Timeout | undefined
  private refillConversation = 0
  /** Files the disk had no room for, asked for again when `spaceTimer` fires. */
  private readonly waitingForSpace = new Set<string>()
  /** Files asked for again for lack of space and not delivered since. */
  private readonly askedForSpace = new Set<string>()
  private spaceTimer: NodeJS.Timeout | undefined
  /** Rounds of asking again for space with no such file delivered since: drives their backoff. */
  private spaceRetries = 0

  constructor(
    readonly endpoint: string,
    readonly owner: LinkOwner,
    actions: ClientActions<ServerLink>,
  ) {
    const first = owner.options.versions[0] ?? 2
    this.version = first
    this.codec = codecs[first]
    const { rateLimit } = owner.options
    this.bucket = rateLimit === undefined ? undefined : new CreditBucket(rateLimit)
    this.writer = new InboxWriter({
      endpoint,
      paths: () => owner.paths(),
      delivered: (event) => {
        // A file asked again for lack of space made it: the disk has room again.
        if (this.askedForSpace.delete(event.virtualPath)) this.spaceRetries = 0
        owner.publish('delivered', { endpoint, ...event })
      },
      deleted: (event) => owner.publish('deleted', { endpoint, ...event }),
      progress: (event) => owner.publish('progress', { endpoint, ...event }),
      error: (error) => this.error(error),
      durable: () => owner.durable(),
      reask: (virtualPath, delta) => this.reask(virtualPath, delta),
      retryLater: (virtualPath) => this.retryLater(virtualPath),
      deletes: owner.options.deletes,
      tree: () => this.features?.has(FEATURE.TREE) === true,
      digestAlgorithm: () => this.digestAlgorithm(),
      delta: () => this.version === 2 && owner.options.delta && this.features?.has(FEATURE.DELTA) === true,
    })
    this.machine = new Machine(clientTable, actions, this, {
      error: (error) => {
        // An action cut short by close() is not news.
        if (this.closing || this.disposed) return
        this.error(error instanceof Error ? error : new Error(String(error)))
      },
    })
  }

  get options(): ResolvedClientOptions {
    return this.owner.options
  }

  /**
   * An ICANHAZ that held the next ones back was answered: the next goes out, as an event queued
   * behind the current one (whose actions may raise one of their own).
   */
  nextAfterAnswer(): void {
    void this.post('answered', undefined, { conversation: this.conversation })
  }

  /** Reports an error event for this server. */
  error(error: Error): void {
    this.owner.publish('error', { endpoint: this.endpoint, error })
  }

  /**
   * Asks this server once more for one file, in this conversation: an ICANHAZ for its virtual
   * path with RESYNC=1 and ONCE=1, queued behind the subscriptions not sent yet. A conversation
   * that ends first drops it (a resyncing subscription asks for the file again anyway).
   */
  reask(virtualPath: string, delta?: number): void {
    if (this.machine.state !== 'ready' || this.closing || this.disposed) return
    if (this.unsent.some((entry) => entry.reask && entry.path === virtualPath)) return
    this.unsent.push({ path: virtualPath, reask: true, ...(delta === undefined ? {} : { delta }) })
    void this.post('subscribe', undefined, { conversation: this.conversation })
  }

  /**
   * Asks this server again for one folder whose sum differs (SUMS, operation DIFFERS), in this
   * conversation: an ICANHAZ for its virtual path with RESYNC=1, ONCE=1 and FOLDER=1, its cache
   * the entries directly in the folder, queued behind the subscriptions and parts not sent yet.
   */
  reaskFolder(virtualPath: string): void {
    if (this.machine.state !== 'ready' || this.closing || this.disposed) return
    if (this.unsent.some((entry) => entry.folder === true && entry.path === virtualPath)) return
    this.owner.stats.foldersAskedAgain++
    this.unsent.push({ path: virtualPath, reask: true, folder: true })
    void this.post('subscribe', undefined, { conversation: this.conversation })
  }

  /**
   * Asks again for a file the disk (inbox or state folder) had no room for, after a backoff
   * (SPACE_RETRY_MS doubling, capped as reconnections are): space may come back, and the
   * client then completes without a restart. Survives reconnections; close() ends it.
   */
  retryLater(virtualPath: string): void {
    this.waitingForSpace.add(virtualPath)
    if (this.spaceTimer !== undefined || this.disposed || this.closing) return
    this.spaceRetries++
    this.spaceTimer = setTimeout(() => {
      this.spaceTimer = undefined
      if (this.disposed || this.closing) return
      if (this.machine.state !== 'ready') {
        // Only a conversation can ask: look again after the next pause.
        const [first] = this.waitingForSpace
        if (first !== undefined) this.retryLater(first)
        return
      }
      for (const path of this.waitingForSpace) {
        this.askedForSpace.add(path)
        this.reask(path)
      }
      this.waitingForSpace.clear()
    }, backoff(SPACE_RETRY_MS, this.spaceRetries))
  }

  /**
   * Whether a file is still to be asked for again (disk full) or its re-ask is unanswered:
   * the server's synced mark does not mean the inbox is complete then.
   */
  retryPending(): boolean {
    return this.spaceTimer !== undefined || this.unsent.some((entry) => entry.reask) || this.awaitingAnswer.some((entry) => entry.reask)
  }

  /**
   * Queues an input for the machine. A message read from a socket (`guard.socket`) or an event
   * of a timer (`guard.conversation`) is dropped if, by its turn, that socket was replaced or
   * that conversation is over: late inputs never leak into the next conversation.
   */
  post(
    event: ClientEvent,
    message?: Message,
    guard: { socket?: number; conversation?: number; when?: () => boolean } = {},
  ): Promise<void> {
    this.input = this.input.then(() => {
      if (guard.socket !== undefined && guard.socket !== this.socketGeneration) return
      if (guard.conversation !== undefined && guard.conversation !== this.conversation) return
      if (this.disposed && event !== 'close') return
      // Judged at its turn, not when posted: what it depends on may have changed meanwhile.
      if (guard.when !== undefined && !guard.when()) return
      return this.machine.handle(event, message)
    })
    return this.input
  }

  /** A new DEALER, connected: replies to an older socket can no longer reach the machine. */
  openSocket(): void {
    this.closeSocket(0)
    // Sends queue per socket: one still waiting on the socket just closed must not hold them.
    this.sending = Promise.resolve()
    const { creditWindow, heartbeat, expiry, greetingTimeout } = this.options
    const socket = new Dealer({
      linger: 0,
      // A hostile server cannot make libzmq buffer a frame larger than a window of content.
      maxMessageSize: Math.max(MIN_MAX_MESSAGE, creditWindow + MESSAGE_OVERHEAD),
      // Sends are not awaited by the machine; one that cannot be queued fails after this.
      sendTimeout: Math.max(heartbeat * expiry, greetingTimeout),
    })
    const serverKey = this.curveServerKey ?? this.options.curveServerKey
    if (serverKey !== undefined) {
      const { curvePublicKey, curveSecretKey } = this.options
      this.curvePair ??= curvePublicKey !== undefined && curveSecretKey !== undefined ? { publicKey: curvePublicKey, secretKey: curveSecretKey } : curveKeyPair()
      socket.curveServerKey = serverKey
      socket.curvePublicKey = this.curvePair.publicKey
      socket.curveSecretKey = this.curvePair.secretKey
    }
    socket.connect(this.endpoint)
    this.socket = socket
    this.socketGeneration++
    void this.receive(socket, this.socketGeneration)
    void this.watchHandshakes(socket, serverKey !== undefined)
  }

  /**
   * A failed security handshake is silent otherwise: libzmq drops the connection and retries,
   * and the greeting just goes unanswered. Reported once, as a CurveHandshakeError.
   */
  private async watchHandshakes(socket: Dealer, curve: boolean): Promise<void> {
    try {
      for await (const event of received(socket.events)) {
        if (event.type === 'handshake') this.handshakeReported = false
        else if (event.type === 'handshake:error:protocol' || event.type === 'handshake:error:auth' || event.type === 'handshake:error:other') {
          if (this.handshakeReported || socket !== this.socket || this.closing || this.disposed) continue
          this.handshakeReported = true
          const code = (event.error as { code?: string }).code
          // A wrong server key: the server cannot open our HELLO and hangs up (EPIPE/ECONNRESET here).
          // A key the server's ZAP handler refused: an authentication failure, not a broken handshake.
          const problem = code === 'ERR_ZMTP_MECHANISM_MISMATCH' ? 'mechanism' : event.type === 'handshake:error:auth' ? 'refused' : curve ? 'curve' : 'other'
          this.error(new CurveHandshakeError(this.endpoint, problem, curve, { cause: event.error }))
        }
      }
    } catch {
      // the socket closed under the observer
    }
  }

  closeSocket(linger: number): void {
    const socket = this.socket
    if (socket === undefined) return
    this.socket = undefined
    this.socketGeneration++
    try {
      socket.linger = linger
      socket.close()
    } catch {
      // already closed
    }
  }

  /** Encodes and sends with the conversation's codec; the machine does not wait for the queue. */
  send(message: Message): boolean {
    const socket = this.socket
    if (socket === undefined) return false
    // Throws EncodeError (e.g. a version-1 string over 255 octets): the caller decides.
    const frames = this.codec.encode(message)
    const failed = (error: unknown): void => {
      if (socket === this.socket && !this.disposed) this.error(error instanceof Error ? error : new Error(String(error)))
    }
    this.lastSent = Date.now()
    // zeromq allows one send in progress per socket: a send waiting for room (a busy peer)
    // holds the next ones back, in order, instead of failing them.
    this.sending = this.sending.then(() => (socket === this.socket ? sent(() => socket.send(frames)) : undefined)).catch(failed)
    return true
  }

  /** The last send queued on the socket (see `send`). */
  private sending: Promise<void> = Promise.resolve()

  private async receive(socket: Dealer, generation: number): Promise<void> {
    try {
      for await (const frames of received(socket)) {
        if (generation !== this.socketGeneration) break
        // Any traffic, even a message we cannot read, shows the server is alive.
        this.lastHeard = Date.now()
        // BATCH (spec/fmq_msg.xml): a version-2 message is one frame, so from a server that
        // batches, several frames are several messages, read one after the other.
        if (frames.length > 1 && this.version === 2 && this.features?.has(FEATURE.BATCH) === true) {
          for (let i = 0; i < frames.length && generation === this.socketGeneration; i++) {
            const frame = frames[i]!
            // Handled: no longer held by the batch, so a collection may free it.
            frames[i] = EMPTY
            await this.read([frame], generation)
          }
          const collected = batchHandled()
          if (collected !== undefined) await collected
        } else await this.read(frames, generation)
        // The chunks written so far are freed only when the loop gets a turn (util/memory.ts).
        const released = chunksReleased()
        if (released !== undefined) await released
      }
    } catch (error) {
      if (generation === this.socketGeneration && !this.disposed) {
        this.error(error instanceof Error ? error : new Error(String(error)))
      }
    }
  }

  /** Decodes one message and feeds it to the machine; one that cannot be read is reported or dropped. */
  private async read(frames: Buffer[], generation: number): Promise<void> {
    let message: Message
    try {
      message = this.codec.decode(frames)
    } catch (error) {
      // spec 19: a message without the signature is dropped silently.
      if (error instanceof NoSignatureError) return
      if (error instanceof MalformedMessageError) {
        this.error(error)
        return
      }
      throw error
    }
    this.inFlight++
    try {
      // Awaited: a slow disk slows the socket down instead of queueing messages in memory.
      await this.post(MessageName[message.id] as ClientEvent, message, { socket: generation })
    } finally {
      this.inFlight--
    }
  }

  /**
   * Works out the next grant of credit and sets `nomCredit` to it; true when a NOM is due.
   * Without `rateLimit`: the window, once a slice of it is used. With it: what the bucket
   * holds, up to at most a burst of credit outstanding (credit banked while nothing is sent
   * would be sent unpaced later); when that falls short, a refill is scheduled, which raises
   * "credit low" itself once tokens are back.
   */
  topUpCredit(): boolean {
    if (!this.creditOpen) return false
    const { creditSlice } = this.options
    const creditWindow = this.creditWindow()
    let grant: number
    if (this.bucket === undefined) {
      if (this.credit > creditWindow - creditSlice) return false
      grant = creditWindow - this.credit
    } else {
      const room = Math.min(creditWindow, this.bucket.burst) - this.credit
      if (room <= 0) return false
      grant = this.bucket.take(room, Math.min(creditSlice, this.bucket.burst / 2))
      if (grant < room) this.scheduleRefill()
      if (grant === 0) return false
    }
    this.nomCredit = grant
    this.credit += grant
    return true
  }

  /**
   * The window of credit now: the client's option, or less while messages are small, so that it
   * holds at most {@link MESSAGES_IN_FLIGHT} of them (two slices at least).
   */
  private creditWindow(): number {
    const { creditWindow, creditSlice } = this.options
    return Math.min(creditWindow, Math.max(2 * creditSlice, Math.round(this.messageCost * MESSAGES_IN_FLIGHT)))
  }

  /** A message of content of `octets` arrived: the average cost moves a sixteenth of the way. */
  costOfMessage(octets: number): void {
    this.messageCost += (octets + MESSAGE_COST_OVERHEAD - this.messageCost) / 16
  }

  /** With `rateLimit`: looks at the bucket again shortly, and grants what it then holds. */
  private scheduleRefill(): void {
    if (this.refillTimer !== undefined && this.refillConversation === this.conversation) return
    clearTimeout(this.refillTimer)
    const conversation = this.conversation
    this.refillConversation = conversation
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined
      void this.post('credit low', undefined, {
        conversation,
        // "credit low" means something only while ready; the grant is made at its turn.
        when: () => this.machine.state === 'ready' && this.topUpCredit(),
      })
    }, REFILL_INTERVAL_MS)
    this.refillTimer.unref()
  }

  /** Picks the version of the next greeting and its codec. */
  chooseVersion(): void {
    const versions = this.options.versions
    const version = this.workingVersion ?? versions[this.versionIndex % versions.length] ?? 2
    this.version = version
    this.codec = codecs[version]
  }

  /** Forgets everything about the previous conversation (not the subscriptions themselves). */
  /** The digest this server announces and judges caches by: XXH128 once it named it (FEATURES), else SHA-1. */
  digestAlgorithm(): DigestAlgorithm {
    return this.features?.has(FEATURE.XXH128) === true ? 'xxh128' : 'sha1'
  }

  async resetConversation(): Promise<void> {
    this.yarly = undefined
    this.icanhaz = undefined
    this.unsent = []
    this.sent.clear()
    this.awaitingAnswer = []
    this.prepared = undefined
    this.features = undefined
    this.credit = 0
    this.creditOpen = false
    this.nomCredit = 0
    this.answered = false
    this.deniedReason = ''
    this.lastSequence = 0n
    await this.writer.closeAll()
  }

  startGreetingTimer(): void {
    this.clearGreetingTimer()
    const conversation = this.conversation
    this.greetingTimer = setTimeout(() => {
      this.greetingTimer = undefined
      if (conversation === this.conversation) void this.post('no answer', undefined, { conversation })
    }, this.options.greetingTimeout)
  }

  clearGreetingTimer(): void {
    if (this.greetingTimer !== undefined) clearTimeout(this.greetingTimer)
    this.greetingTimer = undefined
  }

  /**
   * Heartbeats of a ready conversation: HUGZ after `heartbeat` ms of silence either way, expiry
   * after `expiry` heartbeats of silence from the server. Busy writing what the server sends, we
   * still send HUGZ once a heartbeat when nothing else went out (a NOM waits for a slice of
   * credit to be used, which thousands of tiny files may not use in seconds): a server counts
   * any message as life, and must never take a busy client for a dead one. The timer ticks
   * twice a heartbeat so that a HUGZ is never late by a whole one.
   */
  startHeartbeat(): void {
    this.stopHeartbeat()
    const { heartbeat, expiry } = this.options
    this.lastHeard = Date.now()
    this.lastSent = Date.now()
    const conversation = this.conversation
    let asked = 0
    this.heartbeatTimer = setInterval(() => {
      if (conversation !== this.conversation) return this.stopHeartbeat()
      const now = Date.now()
      // Messages waiting for the machine (a slow disk) are life too.
      if (this.inFlight > 0) this.lastHeard = now
      const silence = now - this.lastHeard
      if (silence >= heartbeat * expiry) {
        this.stopHeartbeat()
        void this.post('expired', undefined, { conversation })
      } else if ((silence >= heartbeat || now - this.lastSent >= heartbeat) && now - asked >= heartbeat) {
        // One HUGZ a heartbeat at most, though it may wait behind the message being handled.
        asked = now
        void this.post('heartbeat', undefined, { conversation })
      }
    }, Math.max(1, Math.floor(heartbeat / 2)))
  }

  stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  /** A new greeting after `delay` ms (the machine must be in start or stopped by then). */
  scheduleConnect(delay: number): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    if (this.disposed || this.closing) return
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (!this.disposed && !this.closing) void this.post('connect')
    }, delay)
  }

  /** The backoff before the next attempt, counting this failure. */
  nextDelay(): number {
    this.failures++
    return backoff(this.options.reconnectDelay, this.failures)
  }

  // The greeting, heartbeat and reconnect timers are not unref'd: a link at work (greeting,
  // conversing, or waiting to connect again) keeps the process alive until close(), as a
  // socket does. zeromq's sockets do not always: a client whose server went silent, its
  // socket closed and only its reconnect timer left, used to exit (code 0) instead of
  // reconnecting.

  /** Stops timers and the socket: the conversation is over. */
  halt(linger = 0): void {
    this.conversation++
    this.clearGreetingTimer()
    this.stopHeartbeat()
    if (this.refillTimer !== undefined) clearTimeout(this.refillTimer)
    this.refillTimer = undefined
    this.closeSocket(linger)
  }

  /** Says KTHXBAI if the conversation is alive, then lets go of everything; partial files stay. */
  async close(): Promise<void> {
    if (this.disposed) return
    this.closing = true
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    if (this.spaceTimer !== undefined) clearTimeout(this.spaceTimer)
    this.spaceTimer = undefined
    await this.post('close')
    this.disposed = true
    this.halt(CLOSE_LINGER_MS)
    await this.input
    await this.writer.closeAll()
  }
}
