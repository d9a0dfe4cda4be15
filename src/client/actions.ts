/**
 * The actions of the client's state machine (spec/fmq_client.xml), written by hand against the
 * generated `ClientActions` interface. Actions steer the machine only by raising events; the
 * link (link.ts) carries the state they work on.
 *
 * @packageDocumentation
 */
import { EncodeError } from '../protocol/errors.js'
import { DIFFERS, DRY_RUN, DRY_RUN_ACTIONS, FEATURE, FEATURES_PATH, HEADER, OPTION, QUEUED, SYNCED, UNMATCHED, parseFeatures, parsePublished, parseQueued, type DryRunAction } from '../protocol/extensions.js'
import {
  MessageId,
  MessageName,
  type Cheezburger,
  type IcanhazOk,
  type Kthxbai,
  type Message,
  type OhaiOk,
  type Orly,
  type Rtfm,
  type Srsly,
} from '../protocol/generated/fmq_msg.js'
import type { ClientActions, ClientSends } from '../protocol/generated/fmq_client_fsm.js'
import { ANONYMOUS, PLAIN, encodePlainResponse } from '../security/sasl.js'
import { type CacheStream, PART_ENTRIES, fitCache, fitsOneMessage, folderCache, joinParts, mergeCache, quickCache, splitCache, sumsCache } from './cache.js'
import { ClientClosedError, DryRunUnsupportedError, ProtocolError, SubscriptionRefusedError } from './errors.js'
import { backoff } from './options.js'
import type { PendingIcanhaz, PreparedResync, ServerLink } from './link.js'
import { signatureValues, signatures } from './delta.js'

/** Links whose server ignored DRYRUN=1: said once each (kept here, not in the link, which another change owns). */
const dryRunRefused = new WeakSet<ServerLink>()

/** One instance serves every link; all state lives in the link. */
export class ClientLinkActions implements ClientActions<ServerLink> {
  async prepareGreeting(link: ServerLink): Promise<void> {
    if (link.disposed || link.closing) throw new ClientClosedError()
    link.conversation++
    link.refusal = undefined
    await link.resetConversation()
    link.chooseVersion()
    // Each greeting on a fresh DEALER, so late replies to an older one never reach us.
    if (link.socket === undefined) link.openSocket()
    link.startGreetingTimer()
  }

  signalConnected(link: ServerLink, _message: OhaiOk): void {
    link.clearGreetingTimer()
    link.workingVersion = link.version
    link.failures = 0
    link.announced = true
    // Subscriptions are replayed after every (re)connect and authentication.
    link.unsent = link.owner
      .subscriptions()
      .filter((path) => !link.refusedPaths.has(path))
      .map((path) => ({ path, reask: false }))
    link.startHeartbeat()
    link.owner.publish('connected', { endpoint: link.endpoint, version: link.version })
  }

  getNextSubscription(link: ServerLink): void {
    // One question (FEATURES=1) in flight at a time: what follows depends on its answer. The
    // parts of a cache stream, a few unanswered at most (spec/fmq_msg.xml).
    if (link.awaitingAnswer.some(asksFeatures)) return
    const next = link.unsent[0]
    if (next === undefined) return
    if (link.awaitingAnswer.filter(hasMore).length >= PARTS_IN_FLIGHT) return
    if (link.prepared?.entry === next) {
      link.machine.raise('subscribe')
      return
    }
    if (next.features === true || next.part !== undefined || next.signaturePart !== undefined) {
      link.prepared = { entry: next, cache: next.part?.cache ?? new Map() }
      link.machine.raise('subscribe')
      return
    }
    if (link.preparing === link.conversation) return
    if (next.stream !== undefined) {
      takePart(link, next, next.stream)
      return
    }
    // The cache matters only to a resync (as in the reference) and to partial files to resume;
    // a re-ask carries only the partial file kept for it (a full disk), if any: after a
    // digest mismatch there is none, and the whole file comes again.
    if (next.folder !== true && (next.reask ? next.delta === undefined && !link.writer.hasPartials(next.path) : !link.options.resync && !link.writer.hasPartials(next.path))) {
      link.prepared = { entry: askingFeatures(link, next, new Map())!, cache: new Map() }
      link.machine.raise('subscribe')
      return
    }
    const big = link.owner.hasPrepared(next.path) || link.owner.holdsAtLeast(next.path, PART_ENTRIES)
    if (link.features === undefined && !next.reask && big) {
      // A cache that will not fit in one message, or one read ahead (QUICK, for our server):
      // which form the server takes is asked first, so the inbox is walked once, for that form.
      askFirst(link)
      link.machine.raise('subscribe')
      return
    }
    // Hashing runs outside the machine: HUGZ keep being answered while a big inbox is read.
    const conversation = link.conversation
    link.preparing = conversation
    void buildCache(link, next).then(async ({ cache: made, stream, sums }) => {
      if (conversation !== link.conversation) return
      // A cache of folder sums says so on each of its parts (SUMS=1).
      const kind = { ...kindOf(next), ...(sums === true ? { sums } : {}) }
      // Parts as the walk cuts them, taken as they may go: the client never holds the whole.
      if (stream !== undefined && link.version === 2 && link.features?.has(FEATURE.PARTS) === true && link.unsent[0] === next) {
        link.preparing = undefined
        link.unsent[0] = { path: next.path, reask: next.reask, stream, ...kind }
        void link.post('subscribe', undefined, { conversation })
        return
      }
      // Whole, where it goes whole.
      const cache = made ?? joinParts(stream === undefined ? [] : await stream.rest().catch(() => []))
      if (conversation !== link.conversation) return
      link.preparing = undefined
      const signature = signatures.get(next)
      if (link.unsent[0] !== next) {
        link.prepared = { entry: next, cache }
      } else if (signature !== undefined && signature.before.length > 0) {
        // A signature bigger than a part (DELTA): its parts first, each with PART=1, under the
        // window of parts in flight; the re-ask itself carries the last one, and the cache.
        const parts: PendingIcanhaz[] = signature.before.map((value) => ({ path: next.path, reask: true, signaturePart: value }))
        signatures.set(next, { last: signature.last, before: [] })
        link.unsent.splice(0, 1, ...parts, next)
        link.prepared = { entry: parts[0]!, cache: new Map() }
      } else if (link.features?.has(FEATURE.PARTS) === true && !signatures.has(next)) {
        // Carried in parts that each fit in a message, in the order the server judges them.
        const parts = splitCache(next.path, cache, link.version).map((part, index, all) => ({
          path: next.path,
          reask: next.reask,
          part: { cache: part, more: index < all.length - 1 },
          ...kind,
        }))
        link.unsent.splice(0, 1, ...parts)
        link.prepared = { entry: parts[0]!, cache: parts[0]!.part.cache }
      } else {
        const entry = askingFeatures(link, next, cache)
        // Too big for one message to a server that may be ours: ask first, on its own (the
        // cache is made again once the answer says how to send it).
        if (entry === undefined) askFirst(link)
        else link.prepared = { entry, cache }
      }
      void link.post('subscribe', undefined, { conversation })
    })
  }

  prepareSaslResponse(link: ServerLink, message: Orly): void {
    // An ORLY proves the version; the timer restarts to give the server time to check us.
    link.answered = true
    link.workingVersion = link.version
    link.startGreetingTimer()
    const { login, password } = link.options
    const offered = message.mechanisms
    if (login !== undefined && password !== undefined && offered.includes(PLAIN)) {
      try {
        link.yarly = { mechanism: PLAIN, response: encodePlainResponse(login, password) }
      } catch (error) {
        link.deniedReason = error instanceof Error ? error.message : String(error)
        link.machine.raise('no mechanism')
        return
      }
      link.machine.raise('respond')
    } else if (login === undefined && offered.includes(ANONYMOUS)) {
      link.yarly = { mechanism: ANONYMOUS, response: Buffer.alloc(0) }
      link.machine.raise('respond')
    } else {
      link.deniedReason =
        login === undefined
          ? `the server asks for credentials (${offered.join(', ') || 'no mechanism'}) and no login is set`
          : `no usable SASL mechanism (the server offers ${offered.join(', ') || 'none'})`
      link.machine.raise('no mechanism')
    }
  }

  signalAccessDenied(link: ServerLink, message: undefined | Srsly): void {
    const reason = message === undefined ? link.deniedReason : message.reason
    link.announced = false
    link.refusal = reason
    // Stopped for good: no retry storm against a server that said no.
    link.halt()
    link.owner.publish('access-denied', { endpoint: link.endpoint, reason })
    link.owner.linkStopped(link, reason)
  }

  tryOlderVersion(link: ServerLink, _message: Rtfm | undefined): void {
    link.halt()
    const versions = link.options.versions
    if (link.answered) {
      // The version works (ORLY came back): same version again, after a pause.
      link.scheduleConnect(link.nextDelay())
      return
    }
    // Silence or RTFM: v1 and v2 peers ignore each other's OHAI, so try the next version.
    link.workingVersion = undefined
    const at = versions.indexOf(link.version)
    link.versionIndex = (at + 1) % versions.length
    link.failures++
    // The first round through the versions goes at once; after that, back off.
    const delay = link.failures < versions.length ? 0 : backoff(link.options.reconnectDelay, link.failures - versions.length + 1)
    link.scheduleConnect(delay)
  }

  formatSubscription(link: ServerLink): void {
    link.icanhaz = undefined
    const next = link.unsent[0]
    const prepared = link.prepared
    if (next === undefined || prepared?.entry !== next) return
    link.unsent.shift()
    link.prepared = undefined
    const options = new Map<string, string>()
    if (next.features === true) {
      options.set(OPTION.FEATURES, '1')
      link.icanhaz = { entry: next, message: { id: MessageId.ICANHAZ, path: next.path, options, cache: new Map() } }
      return
    }
    if (!next.reask) link.sent.add(next.path)
    if (next.asksFeatures === true) options.set(OPTION.FEATURES, '1')
    if (link.features?.has(FEATURE.TREE) === true) options.set(OPTION.TREE, '1')
    // The fast digest, in this subscription's headers and judged in its cache (spec/fmq_msg.xml, XXH128).
    if (link.features?.has(FEATURE.XXH128) === true) options.set(OPTION.XXH128, '1')
    // A signature does not fit version 1's 255-octet values: deltas in version 2 only.
    if (link.version === 2 && link.options.delta && link.features?.has(FEATURE.DELTA) === true) options.set(OPTION.DELTA, '1')
    if (next.part?.more === true) options.set(OPTION.MORE, '1')
    // A re-ask: send this one file now, without subscribing (our server); the reference
    // server ignores ONCE, subscribes, and sends it because of RESYNC.
    if (next.reask || link.options.resync) options.set(OPTION.RESYNC, '1')
    // SUMS: a cache of folder sums, or one folder asked again entry by entry after DIFFERS.
    if (next.sums === true) options.set(OPTION.SUMS, '1')
    if (next.folder === true) options.set(OPTION.FOLDER, '1')
    options.set(OPTION.SYNCED, '1')
    options.set(OPTION.QUEUED, '1')
    options.set(OPTION.UNMATCHED, '1')
    options.set(OPTION.EOFDATA, '1')
    // Several messages in one ZeroMQ message (BATCH); a version-1 message may be several frames.
    if (link.version === 2 && link.features?.has(FEATURE.BATCH) === true) options.set(OPTION.BATCH, '1')
    if (next.reask) options.set(OPTION.ONCE, '1')
    const signature = next.signaturePart ?? signatures.get(next)?.last
    if (signature !== undefined && link.version === 2) {
      options.set(OPTION.SIGNATURE, signature)
      // A part of it, more to follow (spec/fmq_msg.xml, DELTA): kept by the server, nothing sent for it.
      if (next.signaturePart !== undefined) options.set(OPTION.PART, '1')
    } else if (link.options.mirror) options.set(OPTION.MIRROR, '1')
    if (link.options.dryRun) {
      // A question: what a resync would do; answered without subscribing.
      options.set(OPTION.RESYNC, '1')
      options.set(OPTION.ONCE, '1')
      options.set(OPTION.DRYRUN, '1')
    }
    link.icanhaz = {
      entry: next,
      message: {
        id: MessageId.ICANHAZ,
        path: next.path,
        options,
        // Version 1 carries at most 255 entries of 255 octets: what does not fit is just sent again
        // (a part is made to fit already).
        cache: next.part !== undefined ? prepared.cache : fitCache(prepared.cache, link.version),
      },
    }
  }

  signalSubscribed(link: ServerLink, _message: IcanhazOk): void {
    // The server answers subscriptions in the order they were made.
    const entry = link.awaitingAnswer.shift()
    if (entry === undefined) return
    if (heldBack(entry)) link.nextAfterAnswer()
    if (entry.features === true) {
      // A reference server took the question for a subscription: none of our extensions.
      link.features = new Set()
      return
    }
    // A reference server took the subscription that asked as it is: none of our extensions.
    if (entry.asksFeatures === true) link.features = new Set()
    link.creditOpen = true
    if (entry.reask || entry.part?.more === true) return
    link.owner.publish('subscribed', { endpoint: link.endpoint, path: entry.path })
    link.owner.subscriptionAccepted(entry.path, link.endpoint)
  }

  refillCredit(link: ServerLink, _message: IcanhazOk | Cheezburger): void {
    // Top up once a slice of the window is used, never beyond the window; with a rate
    // limit, only what the bucket holds (the link raises "credit low" again as it refills).
    if (link.topUpCredit()) link.machine.raise('credit low')
  }

  signalSubscriptionRefused(link: ServerLink, message: Srsly): void {
    const entry = link.awaitingAnswer.shift()
    if (entry === undefined) {
      link.error(new ProtocolError(link.endpoint, 'SRSLY', message.reason))
      return
    }
    if (heldBack(entry)) link.nextAfterAnswer()
    if (entry.features === true) {
      link.features = parseFeatures(message.reason) ?? new Set()
      return
    }
    if (entry.asksFeatures === true) {
      const features = parseFeatures(message.reason)
      link.features = features ?? new Set()
      if (features !== undefined) {
        // Our server answered the question instead: the subscription goes again, in the form it takes.
        link.sent.delete(entry.path)
        link.unsent.unshift({ path: entry.path, reask: entry.reask })
        return
      }
    }
    // The rest of a cache in parts is not sent once its subscription is refused.
    if (entry.part !== undefined) link.unsent = link.unsent.filter((other) => other.part === undefined || other.path !== entry.path)
    if (entry.reask) {
      // The file will not come again; the user's subscriptions are not affected.
      link.error(new SubscriptionRefusedError(entry.path, link.endpoint, message.reason))
      return
    }
    link.refusedPaths.add(entry.path)
    link.owner.subscriptionRefused(new SubscriptionRefusedError(entry.path, link.endpoint, message.reason))
  }

  storeFileData(link: ServerLink, message: Cheezburger): void {
    const creditLeft = link.creditOpen ? link.credit : 0
    link.credit = Math.max(0, link.credit - message.chunk.length)
    if (message.chunk.length > 0) link.costOfMessage(message.chunk.length)
    link.lastSequence = message.sequence
    if (message.operation === UNMATCHED) {
      // Our server's notice (UNMATCHED=1): the subscription matches nothing it publishes.
      link.owner.publish('unmatched', { endpoint: link.endpoint, path: message.filename, published: parsePublished(message.headers) })
      return
    }
    if (link.options.dryRun && message.operation !== SYNCED && message.operation !== QUEUED && message.operation !== DIFFERS) {
      if (message.operation === DRY_RUN) {
        const action = message.headers.get(HEADER.ACTION) as DryRunAction | undefined
        const size = Number(message.headers.get(HEADER.SIZE))
        if (action !== undefined && DRY_RUN_ACTIONS.includes(action)) {
          link.owner.publish('planned', { endpoint: link.endpoint, virtualPath: message.filename, action, ...(Number.isSafeInteger(size) && size >= 0 ? { size } : {}) })
        }
      } else if (!dryRunRefused.has(link)) {
        // A server that ignores DRYRUN=1 sends content: dropped, nothing is written.
        dryRunRefused.add(link)
        link.error(new DryRunUnsupportedError(link.endpoint))
      }
      return
    }
    if (message.operation === DIFFERS) {
      // Our server's answer to a cache of folder sums (SUMS=1): this folder is asked for again, entry by entry.
      link.reaskFolder(message.filename)
      return
    }
    if (message.operation === SYNCED) {
      // Deleted files are kept for a rename until the mark after the last folder asked again.
      if (!link.options.dryRun && !link.retryPending()) link.writer.synced()
      // Our server's mark (SYNCED=1): every earlier CHEEZBURGER has been stored by now. Not
      // complete while a file the disk had no room for waits to be asked for again.
      if (link.retryPending()) return
      const skipped = Number(message.headers.get(HEADER.SKIPPED) ?? 0)
      link.owner.publish('synced', { endpoint: link.endpoint, ...(Number.isSafeInteger(skipped) && skipped > 0 ? { skipped } : {}) })
      return
    }
    if (message.operation === QUEUED) {
      // Our server's announcement (QUEUED=1): the totals of a progress display.
      const queued = parseQueued(message.headers)
      if (queued !== undefined) link.owner.publish('queued', { endpoint: link.endpoint, ...queued })
      return
    }
    link.writer.store(message, creditLeft)
  }

  signalDisconnected(link: ServerLink, message: undefined | Kthxbai): void {
    if (!link.announced) return
    link.announced = false
    const reason = link.closing ? 'closed' : message !== undefined ? 'server-closed' : 'expired'
    link.owner.publish('disconnected', { endpoint: link.endpoint, reason })
  }

  reconnect(link: ServerLink, _message: undefined | Kthxbai | Rtfm | Message): void {
    if (link.announced) {
      link.announced = false
      link.owner.publish('disconnected', { endpoint: link.endpoint, reason: 'protocol-error' })
    }
    link.halt()
    link.scheduleConnect(link.nextDelay())
  }

  signalProtocolError(link: ServerLink, message: Rtfm | Message): void {
    const reason = message.id === MessageId.RTFM ? message.reason : ''
    link.error(new ProtocolError(link.endpoint, MessageName[message.id], reason))
  }

  send(link: ServerLink, name: ClientSends): void {
    switch (name) {
      case 'OHAI':
        link.send({ id: MessageId.OHAI })
        return
      case 'YARLY': {
        const yarly = link.yarly
        link.yarly = undefined // it holds a password: do not keep it
        if (yarly !== undefined) link.send({ id: MessageId.YARLY, ...yarly })
        return
      }
      case 'ICANHAZ': {
        const icanhaz = link.icanhaz
        link.icanhaz = undefined
        if (icanhaz === undefined) return
        const { message, entry } = icanhaz
        try {
          if (link.send(message)) link.awaitingAnswer.push(entry)
        } catch (error) {
          if (!(error instanceof EncodeError)) throw error
          // E.g. a path over 255 octets in version 1: this server can never be asked for it.
          const refused = new SubscriptionRefusedError(entry.path, link.endpoint, `cannot be sent in version ${link.version}: ${error.message}`, {
            cause: error,
          })
          if (entry.reask) {
            link.error(refused)
            return
          }
          link.refusedPaths.add(entry.path)
          link.owner.subscriptionRefused(refused)
        }
        return
      }
      case 'NOM':
        link.send({ id: MessageId.NOM, credit: BigInt(link.nomCredit), sequence: link.lastSequence })
        return
      case 'HUGZ':
        link.send({ id: MessageId.HUGZ })
        return
      case 'HUGZ-OK':
        link.send({ id: MessageId.HUGZ_OK })
        return
      case 'KTHXBAI':
        link.send({ id: MessageId.KTHXBAI })
        return
    }
  }
}

/** Cache parts (MORE=1) or signature parts (PART=1) sent and not yet answered, at most: 4 × 48 KiB. */
const PARTS_IN_FLIGHT = 4

/** Whether this ICANHAZ is a FEATURES question: nothing follows it before its answer. */
function asksFeatures(entry: PendingIcanhaz): boolean {
  return entry.features === true || entry.asksFeatures === true
}

/** Whether this ICANHAZ is a cache part with more to come, or a part of a signature (PART=1, the re-ask follows). */
function hasMore(entry: PendingIcanhaz): boolean {
  return entry.part?.more === true || entry.signaturePart !== undefined
}

/** Whether the next ICANHAZ may wait on this one's answer: a FEATURES question, or a cache part with more to come. */
function heldBack(entry: PendingIcanhaz): boolean {
  return asksFeatures(entry) || hasMore(entry)
}

/** What a pending ICANHAZ's parts carry of it: a folder asked again (FOLDER=1), a cache of sums (SUMS=1). */
function kindOf(entry: PendingIcanhaz): Pick<PendingIcanhaz, 'folder' | 'sums'> {
  return { ...(entry.folder === true ? { folder: true } : {}), ...(entry.sums === true ? { sums: true } : {}) }
}

/** Puts a FEATURES=1 question alone before the next subscription, ready to go. */
function askFirst(link: ServerLink): void {
  const question: PendingIcanhaz = { path: FEATURES_PATH, reask: false, features: true }
  link.unsent.unshift(question)
  link.prepared = { entry: question, cache: new Map() }
}

/**
 * The entry to send while the server's extensions are unknown: the subscription itself, asking
 * too (FEATURES=1; a reference server subscribes as ever, ours answers the question and the
 * subscription goes again); undefined when its cache would not fit in one message to our
 * server, which must then be asked first. Known extensions, or a re-ask: the entry as it is.
 */
function askingFeatures(link: ServerLink, entry: PendingIcanhaz, cache: ReadonlyMap<string, string>): PendingIcanhaz | undefined {
  if (link.features !== undefined || entry.reask) return entry
  if (!fitsOneMessage(fitCache(cache, link.version))) return undefined
  const asking: PendingIcanhaz = { ...entry, asksFeatures: true }
  link.unsent[0] = asking
  return asking
}

/**
 * The cache of one subscription: the partial files this server may resume (always), then,
 * for a resync, what the inbox holds (manifest.ts). A failure of either part is reported and
 * costs only files sent again.
 */
async function buildCache(link: ServerLink, entry: PendingIcanhaz): Promise<PreparedResync> {
  const report = (error: unknown): void => {
    // A build cut short by close() (the database went with it) is not news.
    if (link.closing || link.disposed) return
    link.error(error instanceof Error ? error : new Error(String(error)))
  }
  let partial = new Map<string, string>()
  try {
    partial = await link.writer.prepareResumes(entry.path)
  } catch (error) {
    report(error)
  }
  let complete: Map<string, string> | undefined
  let stream: CacheStream | undefined
  let sums = false
  const durable = link.owner.durable()
  if (entry.folder === true) {
    // A folder whose sum differs (DIFFERS): the entries directly in it.
    const { inbox, stateDir } = link.owner.paths()
    stream = folderCache(inbox, stateDir, entry.path, link.version)
  } else if (link.options.resync && !entry.reask && durable !== undefined) {
    try {
      const { inbox, stateDir } = link.owner.paths()
      const tree = link.features?.has(FEATURE.TREE) === true
      // A server that judges by stat is sent no digest: nothing is read, not even the manifest;
      // a cache prepared ahead is such a one.
      const prepared = await link.owner.preparedCache(entry.path)
      if (tree && link.features?.has(FEATURE.QUICK) === true) {
        // With SUMS (and PARTS), one sum per folder; a cache read ahead in the other form is read again.
        sums = link.features.has(FEATURE.SUMS) && link.features.has(FEATURE.PARTS)
        const ahead = prepared?.stream !== undefined && (prepared.sums === true) === sums ? prepared.stream : undefined
        stream = ahead ?? (sums ? sumsCache : quickCache)(inbox, stateDir, entry.path, link.version, link.owner.closing)
      } else {
        // Before the server's answer to FEATURES, a SHA-1 cache as the reference takes, from
        // what the manifest holds in SHA-1: our server answers the question instead, and the
        // subscription goes again with a cache in its algorithm (nothing read twice).
        complete = await durable.manifest.cacheFor(inbox, stateDir, entry.path, { tree, algorithm: link.digestAlgorithm(), guess: link.features === undefined })
      }
    } catch (error) {
      report(error)
    }
  }
  // (Made once: a re-ask whose parts went first is prepared again for its cache only.)
  if (entry.reask && entry.delta !== undefined && !signatures.has(entry) && link.version === 2 && link.features?.has(FEATURE.DELTA) === true) {
    // Answering a DELTA offer: the signature of the version the inbox holds (option SIGNATURE).
    try {
      const path = link.writer.inboxPath(entry.path)
      // In parts only to a server that takes them (SIGPARTS); else whole, up to 16384 chunks, in one option.
      const parts = link.features.has(FEATURE.SIGPARTS)
      const signature = path === undefined ? undefined : await signatureValues(path, entry.delta, parts)
      if (signature !== undefined) signatures.set(entry, signature)
    } catch (error) {
      report(error)
    }
  }
  // Parts cut as the inbox is walked hold the complete files only: good as they are when nothing is partial.
  if (stream !== undefined) {
    if (partial.size === 0) return { stream, ...(sums ? { sums } : {}) }
    complete = joinParts(await stream.rest().catch(() => []))
  }
  return { cache: mergeCache(entry.path, partial, complete ?? new Map()), ...(sums ? { sums } : {}) }
}

/**
 * Sends the next part of a cache streamed as the inbox is walked: taken from the stream
 * outside the machine (the walk may still run), then queued ahead of the rest of the stream.
 * A walk that fails ends the cache with an empty last part: the server then sends what the
 * parts did not hold, and nothing is deleted for it.
 */
function takePart(link: ServerLink, placeholder: PendingIcanhaz, stream: CacheStream): void {
  const conversation = link.conversation
  link.preparing = conversation
  void stream
    .take()
    .catch((error: unknown) => {
      if (!link.closing && !link.disposed) link.error(error instanceof Error ? error : new Error(String(error)))
      return { part: new Map<string, string>(), more: false }
    })
    .then(({ part, more }) => {
      if (conversation !== link.conversation) return
      link.preparing = undefined
      if (link.unsent[0] !== placeholder) return
      const entry: PendingIcanhaz = { path: placeholder.path, reask: placeholder.reask, part: { cache: part, more }, ...kindOf(placeholder) }
      link.unsent.splice(0, 1, ...(more ? [entry, placeholder] : [entry]))
      link.prepared = { entry, cache: part }
      void link.post('subscribe', undefined, { conversation })
    })
}
