/**
 * The FILEMQ client: connects to one or more servers (one DEALER each), subscribes to
 * virtual paths, and mirrors what the servers send into an inbox.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'

import { holdsAtLeast } from '../fs/listing.js'
import { normalizeSubscription } from '../fs/vpath.js'
import { ClientLinkActions } from './actions.js'
import { DurableState, type ClientStats, type MutableStats } from './durable.js'
import { checkCurveKey, CurveKeyError } from '../security/curve.js'
import { AccessRefusedError, ClientClosedError, InboxNotSetError, InvalidClientOptionError, RefusedFileNameError, type SubscriptionRefusedError } from './errors.js'
import type { ClientEventMap, ClientEventRecord } from './events.js'
import { type CacheStream, sumsCache } from './cache.js'
import { ServerLink, type LinkOwner, type PreparedResync } from './link.js'
import { STATE_DIR_NAME, resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js'
import { digestsReady } from '../fs/digest.js'

/** A subscription and the promise `subscribe()` returned for it. */
interface Subscription {
  readonly path: string
  promise: Promise<void>
  settled: boolean
  resolve: () => void
  reject: (error: Error) => void
}

/** Options of one `connect()`, for that server only. */
export interface ConnectOptions {
  /** The server's CURVE public key (40 characters of Z85), instead of the client's `curveServerKey`. */
  curveServerKey?: string
}

/** One `events()` consumer: a queue and, when it waits, the waiter. */
interface Sink {
  queue: ClientEventRecord[]
  wake: (() => void) | undefined
  done: boolean
}

const actions = new ClientLinkActions()

/**
 * A FILEMQ client.
 *
 * @example
 * ```ts
 * const client = new Client({ inbox: './inbox', resync: true })
 * client.on('delivered', ({ virtualPath, path }) => console.log(virtualPath, '→', path))
 * await client.connect('tcp://files.example.com:5670')
 * await client.subscribe('/photos')
 * for await (const event of client.events()) if (event.type === 'delivered') console.log(event.path)
 * ```
 */
/** A RESYNC cache read ahead (`prepare()`), in the form a QUICK tree client sends. */
interface PreparedCache {
  readonly at: number
  /** The cache in parts (version 2), cut while the server still starts. */
  readonly stream: CacheStream
  /** Summed by folder (SUMS), the form our server takes. */
  readonly sums: boolean
}

/** How long a prepared cache stays usable. */
const PREPARED_FRESH_MS = 60_000

export class Client extends EventEmitter<ClientEventMap> {
  /** The options as resolved at construction (frozen). */
  readonly options: ResolvedClientOptions
  private inboxDir: string | undefined
  private readonly links = new Map<string, ServerLink>()
  private readonly subs = new Map<string, Subscription>()
  private readonly sinks = new Set<Sink>()
  private closed = false
  private reporting = false
  private readonly owner: LinkOwner
  private readonly counters: MutableStats = { bytesHashed: 0, resumes: 0, foldersAskedAgain: 0 }
  /** The node database, opened at the first `connect()` (the inbox may change before). */
  private store: DurableState | undefined
  /** RESYNC caches read ahead by `prepare()`, by subscription path. */
  private readonly prepared = new Map<string, PreparedCache>()
  /** Aborted by close(): walks of the inbox for a cache stop. */
  private readonly closing = new AbortController()

  constructor(options: Partial<ClientOptions> = {}) {
    super()
    this.options = resolveClientOptions(options)
    this.inboxDir = this.options.inbox
    this.owner = {
      options: this.options,
      paths: () => this.paths(),
      durable: () => this.durable(),
      subscriptions: () => [...this.subs.keys()],
      publish: (type, payload) => this.publish(type, payload),
      subscriptionAccepted: (path) => this.settle(path),
      subscriptionRefused: (error) => this.refuse(error),
      linkStopped: (link, reason) => this.linkStopped(link, reason),
      preparedCache: (path) => this.takePrepared(path),
      hasPrepared: (path) => this.prepared.has(path),
      holdsAtLeast: (path, count) => this.holdsAtLeast(path, count),
      stats: this.counters,
      closing: this.closing.signal,
    }
  }

  /**
   * Reads the inbox for the RESYNC cache of a subscription now, ahead of connecting, so that
   * the walk of a big inbox runs while the server still starts (a tool that starts both, as
   * `fmq track` does). The next subscription to that path takes it, if it is not older than a
   * minute; changes to the inbox meanwhile by anything but this client would be missed then,
   * so only prepare an inbox that nothing else writes. The cache sums each folder (SUMS, files by
   * size, mode and mtime): a server that does not name SUMS gets the inbox read again. Without
   * `resync`, does nothing.
   *
   * @example
   * ```ts
   * client.prepare('/')
   * await startServer() // the inbox is read meanwhile
   * await client.connect(endpoint)
   * await client.subscribe('/')
   * ```
   */
  async prepare(path: string): Promise<void> {
    if (this.closed || !this.options.resync) return
    const subscription = normalizeSubscription(path)
    const { inbox, stateDir } = this.paths()
    await mkdir(inbox, { recursive: true })
    await mkdir(stateDir, { recursive: true, mode: 0o700 })
    if (this.closed) return
    // The walk runs ahead, as far as a stream holds parts; failures are the subscription's to report.
    // In the form our server takes, one sum per folder (SUMS); another server gets the inbox read again.
    this.prepared.set(subscription, { at: Date.now(), sums: true, stream: sumsCache(inbox, stateDir, subscription, 2, this.closing.signal) })
  }

  /**
   * Whether at least `count` entries are held under a subscription: by the manifest, or in
   * the inbox as it is (filled by another tool, or by `fmq track`, which keeps no manifest of
   * what it left untouched). Counted up to `count` at most.
   */
  private holdsAtLeast(path: string, count: number): boolean {
    if (this.durable()?.manifest.holdsAtLeast(path, count) === true) return true
    const { inbox, stateDir } = this.paths()
    const folder = path === '/' ? inbox : join(inbox, ...path.split('/').filter((segment) => segment !== ''))
    return holdsAtLeast(folder, count, (physicalPath) => physicalPath === stateDir)
  }

  /** A cache `prepare()` read for this path, once, if it is still fresh. */
  private takePrepared(path: string): Promise<PreparedResync> | undefined {
    const entry = this.prepared.get(path)
    this.prepared.delete(path)
    if (entry === undefined || Date.now() - entry.at > PREPARED_FRESH_MS) return undefined
    return Promise.resolve({ stream: entry.stream, sums: entry.sums })
  }

  /**
   * Counters of work done, live.
   *
   * @example
   * ```ts
   * await client.subscribe('/')
   * console.log(client.stats.bytesHashed)
   * ```
   */
  get stats(): ClientStats {
    return this.counters
  }

  /** The inbox directory, absolute (undefined until set). */
  get inbox(): string | undefined {
    return this.inboxDir
  }

  /**
   * Sets the inbox. Files that arrive from now on are written there.
   *
   * @example
   * ```ts
   * client.setInbox('/var/lib/fmq/inbox')
   * ```
   */
  setInbox(dir: string): void {
    this.inboxDir = resolve(dir)
  }

  /**
   * Connects to a server (one DEALER per server; call again for more servers) and says OHAI.
   * Resolves once the greeting is on its way, not when the server answers: watch the
   * `connected` and `access-denied` events. Reconnection after a server restart is automatic.
   * Rejects on an invalid endpoint, a missing inbox, or after `close()`. With a CURVE server
   * key (the client's `curveServerKey`, or `options.curveServerKey` for this server only)
   * the connection is encrypted, and a wrong key is reported as a `CurveHandshakeError` event.
   *
   * @example
   * ```ts
   * await client.connect('tcp://127.0.0.1:5670')
   * await client.connect('tcp://files.example.com:5670', { curveServerKey: await readCurvePublicKey('keys/files') })
   * ```
   */
  async connect(endpoint: string, options: ConnectOptions = {}): Promise<void> {
    if (this.closed) throw new ClientClosedError()
    await digestsReady()
    const { curveServerKey } = options
    if (curveServerKey !== undefined) {
      try {
        checkCurveKey(curveServerKey, 'the key')
      } catch (error) {
        throw error instanceof CurveKeyError ? new InvalidClientOptionError('curveServerKey', error.message) : error
      }
    }
    const { inbox, stateDir } = this.paths()
    await mkdir(inbox, { recursive: true })
    await mkdir(stateDir, { recursive: true, mode: 0o700 })
    if (this.closed) throw new ClientClosedError()
    this.openDurable(stateDir) // throws here, to the caller, for a database it cannot use
    const existing = this.links.get(endpoint)
    if (existing !== undefined) {
      // Used from its next socket on.
      if (curveServerKey !== undefined) existing.curveServerKey = curveServerKey
      // A link stopped by SRSLY comes back only when asked to.
      if (existing.machine.state === 'stopped' && !existing.closing) await existing.post('connect')
      return
    }
    const link = new ServerLink(endpoint, this.owner, actions)
    link.curveServerKey = curveServerKey
    link.openSocket() // throws here, to the caller, for a bad endpoint
    this.links.set(endpoint, link)
    await link.post('connect')
  }

  /**
   * Subscribes to a virtual path (normalised: `"/photos/"` is `"/photos"`) on every server, now
   * and after every reconnection. Resolves on the first ICANHAZ-OK for it; rejects with
   * {@link SubscriptionRefusedError} on SRSLY, {@link AccessRefusedError} when every server
   * refused access, {@link ClientClosedError} on close. Before any server is connected it waits.
   *
   * @example
   * ```ts
   * await client.subscribe('/photos')
   * ```
   */
  subscribe(path: string): Promise<void> {
    if (this.closed) return Promise.reject(new ClientClosedError())
    let normal: string
    try {
      normal = normalizeSubscription(path)
    } catch (error) {
      return Promise.reject(error)
    }
    let sub = this.subs.get(normal)
    if (sub !== undefined && !(sub.settled && this.isRefusedEverywhere(normal))) return sub.promise
    if (sub === undefined) {
      sub = deferred(normal)
      this.subs.set(normal, sub)
    } else {
      // Asked again after a refusal: ask every server again.
      const fresh = deferred(normal)
      sub.promise = fresh.promise
      sub.resolve = fresh.resolve
      sub.reject = fresh.reject
      sub.settled = false
      for (const link of this.links.values()) link.refusedPaths.delete(normal)
    }
    for (const link of this.links.values()) this.enqueue(link, normal)
    this.checkReachable(sub)
    return sub.promise
  }

  /**
   * Says KTHXBAI to every server in conversation, closes the sockets and the state database,
   * and ends every `events()` iterator. Partial files worth resuming stay in the state
   * directory, for the next client on this inbox. Pending `subscribe` promises reject with
   * {@link ClientClosedError}.
   *
   * With `exiting` (a program about to call `process.exit`), what is committed is written
   * but the database is left to the process's end, unclosed: it skips the checkpoint that a
   * close makes, whose fsync waits for the disk to take every file just written. The next
   * client on this state directory reads the log the checkpoint would have folded in.
   *
   * @example
   * ```ts
   * await client.close()
   * await client.close({ exiting: true }) // then process.exit()
   * ```
   */
  async close(options: { readonly exiting?: boolean } = {}): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.closing.abort()
    await Promise.all([...this.links.values()].map((link) => link.close()))
    this.store?.close(options)
    this.store = undefined
    for (const sub of this.subs.values()) {
      if (!sub.settled) {
        sub.settled = true
        sub.reject(new ClientClosedError('the client closed before the subscription was answered'))
      }
    }
    for (const sink of this.sinks) {
      sink.done = true
      sink.wake?.()
    }
    this.sinks.clear()
  }

  /**
   * Every event from now on, as an async iterator of tagged records; it ends quietly when the
   * client closes (like a zeromq.js socket). Events wait in memory until read.
   *
   * @example
   * ```ts
   * for await (const event of client.events()) {
   *   if (event.type === 'delivered') console.log(event.virtualPath)
   *   if (event.type === 'error') console.error(event.error)
   * }
   * ```
   */
  events(): AsyncIterableIterator<ClientEventRecord> {
    const sink: Sink = { queue: [], wake: undefined, done: this.closed }
    if (!this.closed) this.sinks.add(sink)
    const sinks = this.sinks
    const iterator: AsyncIterableIterator<ClientEventRecord> = {
      async next(): Promise<IteratorResult<ClientEventRecord>> {
        for (;;) {
          const event = sink.queue.shift()
          if (event !== undefined) return { value: event, done: false }
          if (sink.done) return { value: undefined, done: true }
          await new Promise<void>((wake) => {
            sink.wake = wake
          })
          sink.wake = undefined
        }
      },
      async return(): Promise<IteratorResult<ClientEventRecord>> {
        sink.done = true
        sink.queue.length = 0
        sinks.delete(sink)
        sink.wake?.()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  private paths(): { inbox: string; stateDir: string } {
    const inbox = this.inboxDir
    if (inbox === undefined) throw new InboxNotSetError()
    return { inbox, stateDir: this.options.stateDir ?? join(inbox, STATE_DIR_NAME) }
  }

  /** The database of a state directory, opened once (again only if `setInbox` moved it). */
  private openDurable(stateDir: string): DurableState {
    if (this.store?.stateDir === stateDir && this.store.open) return this.store
    this.store?.close()
    this.store = undefined
    this.store = new DurableState(stateDir, this.counters, (error) => this.publish('error', { error }))
    return this.store
  }

  /** The database for the links: none before `connect()` or after `close()`. */
  private durable(): DurableState | undefined {
    if (this.closed || this.store === undefined) return undefined
    try {
      return this.openDurable(this.paths().stateDir)
    } catch (error) {
      this.publish('error', { error: error instanceof Error ? error : new Error(String(error)) })
      return undefined
    }
  }

  /** Emits to listeners and iterators. `error` goes only where someone listens: never a crash. */
  private publish<K extends keyof ClientEventMap>(type: K, payload: ClientEventMap[K][0]): void {
    this.emitEvent(type, payload)
    // A refused name is also a file the inbox lacks: said as such, for whoever counts those.
    const { error, endpoint } = payload as Partial<ClientEventMap['error'][0]>
    if (type === 'error' && error instanceof RefusedFileNameError) {
      const rule = (error.cause as { reason?: unknown } | undefined)?.reason
      const reason = `refused name (${typeof rule === 'string' ? rule : error.reason})`
      this.emitEvent('skipped', { ...(endpoint === undefined ? {} : { endpoint }), virtualPath: error.virtualPath, reason, code: error.code })
    }
  }

  private emitEvent<K extends keyof ClientEventMap>(type: K, payload: ClientEventMap[K][0]): void {
    for (const sink of this.sinks) {
      sink.queue.push({ type, ...payload } as ClientEventRecord)
      sink.wake?.()
    }
    if (type === 'error' && this.listenerCount('error') === 0) return
    try {
      ;(this.emit as (name: K, data: ClientEventMap[K][0]) => boolean)(type, payload)
    } catch (error) {
      // A listener threw: report it once as an error event, never into the socket loop.
      if (type === 'error' || this.reporting) return
      this.reporting = true
      try {
        this.publish('error', { error: error instanceof Error ? error : new Error(String(error)) })
      } finally {
        this.reporting = false
      }
    }
  }

  private enqueue(link: ServerLink, path: string): void {
    if (link.machine.state !== 'ready' || link.refusedPaths.has(path)) return
    if (link.sent.has(path) || link.unsent.some((entry) => !entry.reask && entry.path === path)) return
    link.unsent.push({ path, reask: false })
    void link.post('subscribe')
  }

  private settle(path: string): void {
    const sub = this.subs.get(path)
    if (sub === undefined || sub.settled) return
    sub.settled = true
    sub.resolve()
  }

  private refuse(error: SubscriptionRefusedError): void {
    const sub = this.subs.get(error.path)
    if (sub !== undefined && !sub.settled) {
      sub.settled = true
      sub.reject(error)
    }
    this.publish('error', { endpoint: error.endpoint, error })
  }

  private isRefusedEverywhere(path: string): boolean {
    const links = [...this.links.values()]
    return links.length > 0 && links.every((link) => link.refusedPaths.has(path))
  }

  private linkStopped(_link: ServerLink, _reason: string): void {
    for (const sub of this.subs.values()) this.checkReachable(sub)
  }

  /** A pending subscription that no server can answer any more (all stopped) is rejected. */
  private checkReachable(sub: Subscription): void {
    if (sub.settled) return
    const links = [...this.links.values()]
    if (links.length === 0 || !links.every((link) => link.refusal !== undefined)) return
    const last = links[links.length - 1]
    sub.settled = true
    sub.reject(new AccessRefusedError(last?.endpoint ?? '', last?.refusal ?? ''))
  }
}

function deferred(path: string): Subscription {
  let resolve!: () => void
  let reject!: (error: Error) => void
  const promise = new Promise<void>((yes, no) => {
    resolve = yes
    reject = no
  })
  // Marked handled: a caller that never awaits must not crash the process on close.
  promise.catch(() => undefined)
  return { path, promise, settled: false, resolve, reject }
}
