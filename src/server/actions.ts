/**
 * The server's hand-written actions, one per action of spec/fmq_server.xml. Each acts
 * on one client (a Peer) and steers its machine only by raising events.
 */
import { MessageId, type MessageByName } from '../protocol/generated/fmq_msg.js'
import type { ServerActions, ServerSends } from '../protocol/generated/fmq_server_fsm.js'
import { type DigestAlgorithm, digestAlgorithm } from '../fs/digest.js'
import { compareVirtualPaths, covers, normalizeSubscription, resolveCacheKey, sortVirtualPaths } from '../fs/vpath.js'
import {
  ATTRIBUTES,
  type CacheEntry,
  DIFFERS,
  DIRECTORY,
  FEATURE,
  HEADER,
  OPTION,
  SYMLINK,
  SYNCED,
  QUEUED,
  DRY_RUN,
  UNMATCHED,
  formatFeatures,
  parseCacheValue,
  digestHeader,
  prefixDigest,
} from '../protocol/extensions.js'
import { parsePlainResponse } from '../security/sasl.js'
import { chunkParams } from '../fs/chunking.js'
import { DELTA, DELTA_MIN, copyRunHeaders, parseSignature, SignatureParts, type Signature } from '../protocol/delta.js'
import { DeltaContent, VersionChunks } from './delta.js'
import { chunkSpent, chunksReleased } from '../util/memory.js'
import type { AccessPolicy, Accounts } from '../security/accounts.js'
import type { LoginThrottle } from '../security/throttle.js'
import type { Asked, Patch, Peer, Transfer } from './peer.js'
import { deletableInFolder, folderEntries, judgeFolders, sendFolder } from './resync-sums.js'
import type { FileDigest, Publisher, PublishedFile, PublishedNode } from './publisher.js'

/** What the actions need from the server around them. */
export interface ServerServices {
  readonly publisher: Publisher
  readonly policy: AccessPolicy
  readonly accounts: Accounts
  readonly throttle: LoginThrottle
  readonly chunkSize: number
  readonly creditCap: number
  /** Messages a client may have in flight before we wait for a sign of life from it. */
  readonly messageBudget: number
  /** Counters for monitoring and tests: octets of file content and files sent. */
  readonly stats: { contentBytes: number; files: number; loginsFailed: number; signatureParts: number }
  send(peer: Peer, id: MessageByName[ServerSends]['id']): Promise<void>
  drop(peer: Peer): void
  /** Knows a dropped client again (its OHAI restarts the conversation). */
  revive(peer: Peer): void
  log(level: 'info' | 'warn', text: string): void
}

const SEND_ID: Record<ServerSends, MessageByName[ServerSends]['id']> = {
  'OHAI-OK': MessageId.OHAI_OK,
  ORLY: MessageId.ORLY,
  SRSLY: MessageId.SRSLY,
  'ICANHAZ-OK': MessageId.ICANHAZ_OK,
  CHEEZBURGER: MessageId.CHEEZBURGER,
  'HUGZ-OK': MessageId.HUGZ_OK,
  HUGZ: MessageId.HUGZ,
  RTFM: MessageId.RTFM,
}

const EMPTY = Buffer.alloc(0)
/** Files read ahead for their digest while the one before them is sent ({@link ServerPeerActions.readAhead}). */
const READ_AHEAD = 1
/** Queued patches looked at for them, at most, per file sent. */
const READ_AHEAD_LOOK = 8
const NO_HEADERS: ReadonlyMap<string, string> = new Map()

export class ServerPeerActions implements ServerActions<Peer> {
  /** The chunks of versions offered as deltas, shared by every client they go to. */
  private readonly chunks = new VersionChunks()

  constructor(private readonly server: ServerServices) {}

  async forgetClientState(peer: Peer): Promise<void> {
    // OHAI restarts the conversation, even of a client ended while this OHAI waited its turn.
    this.server.revive(peer)
    await peer.forget()
  }

  checkAccess(peer: Peer): void {
    switch (this.server.policy.onOhai()) {
      case 'ohai-ok':
        peer.machine.raise('anonymous')
        break
      case 'orly':
        peer.reply = { mechanisms: [...this.server.policy.mechanisms], challenge: EMPTY }
        peer.machine.raise('challenge')
        break
      case 'srsly':
        peer.reply = { reason: 'access denied' }
        peer.machine.raise('denied')
    }
  }

  async checkCredentials(peer: Peer, message: MessageByName['YARLY']): Promise<void> {
    if (!this.server.policy.accepts(message.mechanism)) {
      peer.reply = { reason: `mechanism ${message.mechanism.slice(0, 32)} is not offered` }
      peer.machine.raise('foe')
      return
    }
    let credentials
    try {
      credentials = parsePlainResponse(message.response)
    } catch {
      credentials = undefined // a malformed response is a failed login, never a crash
    }
    // Checked at most once per cooldown per login, however many connections try it.
    const verdict =
      credentials === undefined
        ? undefined
        : await this.server.throttle.check(credentials.login, () =>
            this.server.accounts.authenticate(credentials.login, credentials.password).catch(() => undefined),
          )
    const account = verdict?.checked === true ? verdict.result : undefined
    if (account) {
      peer.login = account.login
      this.server.throttle.succeed(peer.key)
      peer.machine.raise('friend')
    } else if (verdict?.checked === false) {
      peer.reply = { reason: `too many failed logins for this account: try again in ${Math.ceil(verdict.retryMs / 1000)} s` }
      this.server.stats.loginsFailed++
      this.server.log('warn', `login refused unchecked from client ${peer.key}: the account is cooling down after failed logins`)
      peer.machine.raise('foe')
    } else {
      // The reference answers a wrong password with an empty reason; nothing about the password is logged.
      peer.reply = { reason: '' }
      this.server.stats.loginsFailed++
      this.server.log('warn', `failed login from client ${peer.key}`)
      peer.machine.raise('foe')
    }
  }

  async delayFailedLogin(peer: Peer): Promise<void> {
    await this.server.throttle.fail(peer.key)
  }

  checkSubscription(peer: Peer, message: MessageByName['ICANHAZ']): void {
    if (message.options.get(OPTION.FEATURES) === '1') {
      // A question, not a subscription: what we understand beyond the reference.
      peer.reply = { reason: formatFeatures([FEATURE.PARTS, FEATURE.TREE, FEATURE.QUICK, FEATURE.DRYRUN, FEATURE.XXH128, FEATURE.DELTA, FEATURE.SIGPARTS, FEATURE.SUMS, FEATURE.BATCH]) }
      peer.machine.raise('refused')
      return
    }
    try {
      // spec 19: a path starts with "/"; we also refuse ".." so no one reads outside a mount.
      const path = normalizeSubscription(message.path)
      const cache = new Map<string, CacheEntry>()
      for (const [key, value] of message.cache) {
        const virtualPath = resolveCacheKey(path, key)
        const entry = virtualPath === undefined ? undefined : parseCacheValue(value)
        if (entry !== undefined) cache.set(virtualPath!, entry)
      }
      const resync = message.options.get(OPTION.RESYNC) === '1'
      const more = resync && message.options.get(OPTION.MORE) === '1'
      const parts = peer.parts
      if (parts !== undefined && parts.path !== path) {
        throw new Error(`a cache part for ${path} while the parts of ${parts.path} are not all in`)
      }
      peer.asked = {
        path,
        resync,
        mirror: resync && message.options.get(OPTION.MIRROR) === '1',
        once: message.options.get(OPTION.ONCE) === '1',
        synced: message.options.get(OPTION.SYNCED) === '1',
        queued: message.options.get(OPTION.QUEUED) === '1',
        // A dry run is a question: never stored as a subscription.
        dryRun: resync && message.options.get(OPTION.DRYRUN) === '1' && message.options.get(OPTION.ONCE) === '1',
        unmatched: message.options.get(OPTION.UNMATCHED) === '1',
        eofData: message.options.get(OPTION.EOFDATA) === '1',
        // Version 2 only: a version-1 message may be several frames.
        batch: peer.version === 2 && message.options.get(OPTION.BATCH) === '1',
        tree: message.options.get(OPTION.TREE) === '1',
        xxh128: message.options.get(OPTION.XXH128) === '1',
        more,
        sums: resync && message.options.get(OPTION.SUMS) === '1',
        folder: resync && message.options.get(OPTION.ONCE) === '1' && message.options.get(OPTION.FOLDER) === '1',
        cache,
        // Version 2 only: a signature does not fit version 1's 255-octet values.
        delta: peer.version === 2 && message.options.get(OPTION.DELTA) === '1',
        // DELTA: the signature of the version the client holds of the file asked; malformed, the file just comes whole.
        signature: this.signatureOf(peer, path, message.options),
        signaturePart: message.options.get(OPTION.PART) === '1' && message.options.has(OPTION.SIGNATURE),
      }
      peer.machine.raise('subscribed')
    } catch (error) {
      peer.reply = { reason: `bad path: ${(error as Error).message}`.slice(0, 255) }
      peer.machine.raise('refused')
    }
  }

  /**
   * The signature a re-ask carries (DELTA): whole in its option SIGNATURE, or the last of its
   * parts, the others kept as they came (PART=1, in order, for the same file). Undefined for a
   * part, without a signature, or when one is malformed or its parts do not add up: the file
   * then comes whole.
   */
  private signatureOf(peer: Peer, path: string, options: ReadonlyMap<string, string>): Signature | undefined {
    const value = options.get(OPTION.SIGNATURE)
    const parts = peer.signatureParts?.path === path ? peer.signatureParts : undefined
    peer.signatureParts = undefined
    if (value === undefined) return undefined
    if (options.get(OPTION.PART) === '1') {
      peer.signatureParts = parts ?? new SignatureParts(path)
      peer.signatureParts.add(value)
      this.server.stats.signatureParts++
      return undefined
    }
    return parts === undefined ? parseSignature(value) : parts.finish(value)
  }

  storeSubscription(peer: Peer): void {
    if (peer.asked && !peer.asked.once) peer.subscriptions.add(peer.asked.path)
    // A client that ends files on eof=1 says so in every subscription it makes.
    if (peer.asked?.eofData) peer.eofData = true
    if (peer.asked?.batch === true) peer.batch = true
    if (peer.asked?.tree) peer.tree = true
    // Likewise a client that negotiated the fast digest (XXH128=1): no SHA-1 is read for it.
    if (peer.asked?.xxh128) peer.digestAlgorithm = 'xxh128'
    if (peer.asked?.delta) peer.delta = true
    if (peer.asked?.queued) peer.wantsQueued = true
    // A part with more to come is not yet the whole resync: no SYNCED mark before the last part.
    if (peer.asked?.synced && !peer.asked.more && peer.asked.signaturePart !== true) {
      peer.wantsSynced = true
      peer.unsynced = true // even an empty resync is marked
    }
    peer.reply = {}
  }

  /**
   * What a new subscription asks for besides future changes: files the client holds part of
   * (resumed where the prefix matches, in any case); with RESYNC=1 every entry under the path
   * the cache does not hold as it is; with MIRROR=1 a delete for every entry it holds that we
   * no longer publish. A cache in parts (MORE=1) is judged a part at a time, each over the
   * range of paths its keys span (spec/fmq_msg.xml), so neither side holds it all at once.
   */
  async resyncClient(peer: Peer): Promise<void> {
    const asked = peer.asked
    peer.asked = undefined
    // A part of a signature (PART=1) is kept, and nothing is sent for it: the re-ask with the last part follows.
    if (asked === undefined || asked.signaturePart === true) return
    const { publisher } = this.server
    // UNMATCHED=1: a subscription (its first part) that matches nothing is likely a typo.
    if (asked.unmatched && (!asked.once || asked.dryRun) && peer.parts === undefined && !this.matches(asked.path)) peer.unmatched.push(asked.path)
    // A dry run (DRYRUN=1) says what each patch would do instead of queueing it.
    const put = asked.dryRun
      ? (patch: Patch, held: boolean): void => {
          const action = patch.operation === 'delete' ? 'delete' : held ? 'update' : 'copy'
          peer.planned.push({ virtualPath: patch.virtualPath, action, size: publisher.get(patch.virtualPath)?.size })
        }
      : (patch: Patch, held: boolean): void =>
          // Another version of a file the cache holds, or one it holds part of: worth offering as a
          // delta (DELTA=1); never again to a re-ask of a file (ONCE=1), which may answer an offer.
          peer.enqueue(
            held && (!asked.once || asked.folder) && patch.operation === 'create' && (publisher.get(patch.virtualPath)?.size ?? 0) >= DELTA_MIN ? { ...patch, replaced: true } : patch,
          )
    // Partial files are offered with the whole cache; a folder asked again (FOLDER=1) comes after it, so they are queued already.
    for (const [virtualPath, entry] of asked.folder ? [] : asked.cache) {
      if (entry.kind !== 'partial' || !covers(asked.path, virtualPath)) continue
      const file = publisher.get(virtualPath)
      if (file === undefined) {
        put({ operation: 'delete', virtualPath }, true)
        continue
      }
      // The prefix in the algorithm the client offered it in (the length of its digest says which).
      const algorithm = digestAlgorithm(entry.digest) ?? 'sha1'
      const digest = await this.digestOf(file, algorithm)
      const resumable = digest !== undefined && prefixDigest(digest.blocks, entry.offset, algorithm) === entry.digest
      // DELTA: asked again with the signature of an older version, the rest may come as a delta.
      const signature = asked.once && virtualPath === asked.path ? asked.signature : undefined
      put({ operation: 'create', virtualPath, ...(resumable ? { offset: entry.offset } : {}), ...(signature === undefined ? {} : { signature, content: true }) }, true)
    }
    if (!asked.resync) return
    // A cache of folder sums (SUMS=1) is judged folder by folder, unless the path is a file.
    if (asked.sums && publisher.get(asked.path) === undefined) {
      judgeFolders(publisher, peer, asked, put)
      return
    }
    for (const virtualPath of this.rangeOf(peer, asked)) {
      const file = publisher.get(virtualPath)
      const entry = asked.cache.get(virtualPath)
      if (file !== undefined) {
        // A QUICK entry is judged by the stat, and the index knows most digests of a resync
        // (in the algorithm of the cache value; SHA-1 from a reference client: computed once,
        // then indexed): either way without a promise each.
        const known = entry?.kind === 'complete' ? publisher.indexedDigest(virtualPath, file, digestAlgorithm(entry.digest) ?? 'sha1') : undefined
        const patch =
          entry === undefined
            ? 'create'
            : entry.kind === 'stat' || known !== undefined
              ? judge(file, entry, known, asked.tree)
              : await this.fileDiffers(file, entry, asked.tree)
        // A file asked for again (ONCE=1) is wanted with its content.
        if (patch === 'create' && asked.once && !asked.folder && !asked.dryRun) {
          const signature = virtualPath === asked.path ? asked.signature : undefined
          peer.enqueue({ operation: 'create', virtualPath, content: true, ...(signature === undefined ? {} : { signature }) })
        }
        else if (patch !== undefined) put({ operation: patch, virtualPath }, entry !== undefined)
        continue
      }
      const node = asked.tree ? publisher.node(virtualPath) : undefined
      if (node !== undefined && !nodeHeld(node, entry)) put({ operation: 'node', virtualPath }, entry !== undefined)
      // A folder asked again (FOLDER=1): a folder in it the client does not hold as one comes whole (SUMS).
      if (asked.folder && node?.kind === 'dir' && entry?.kind !== 'dir') sendFolder(publisher, virtualPath, put)
    }
    if (!asked.mirror) return
    for (const [virtualPath, entry] of asked.cache) {
      if (entry.kind === 'partial' || !covers(asked.path, virtualPath)) continue
      // A folder asked again (FOLDER=1): only what is directly in it.
      if (asked.folder && !deletableInFolder(publisher, asked.path, virtualPath)) continue
      // Under an entry we could not read: not known to be gone, so not deleted.
      if (publisher.holdsBack(virtualPath)) continue
      if (publisher.get(virtualPath) === undefined && (!asked.tree || publisher.node(virtualPath) === undefined)) {
        put({ operation: 'delete', virtualPath }, true)
      }
    }
  }

  /**
   * The published paths a resync judges: all under the path for a whole cache; for a part
   * (MORE=1), those after the previous part's last key up to this part's last key, and for the
   * last part, all that are left.
   */
  private rangeOf(peer: Peer, asked: Asked): readonly string[] {
    const { publisher } = this.server
    const listed = (): string[] => {
      // A folder asked again (FOLDER=1): what is directly in it.
      if (asked.folder) return [...folderEntries(publisher, asked.path)]
      const paths: string[] = []
      for (const file of publisher.under(asked.path)) paths.push(file.virtualPath)
      if (asked.tree) for (const node of publisher.nodesUnder(asked.path)) paths.push(node.virtualPath)
      return paths
    }
    // Sorted, so that a folder goes before what it holds (a folder that replaced a file).
    if (peer.parts === undefined && !asked.more) return asked.tree ? sortVirtualPaths(listed()) : listed()
    const parts = (peer.parts ??= { path: asked.path, listing: sortVirtualPaths(listed()), at: 0, last: undefined })
    let upTo: string | undefined
    for (const key of asked.cache.keys()) {
      if (parts.last !== undefined && compareVirtualPaths(key, parts.last) <= 0) {
        throw new Error(`cache part keys out of order at ${key}`)
      }
      if (upTo === undefined || compareVirtualPaths(key, upTo) > 0) upTo = key
    }
    const start = parts.at
    let end = start
    if (!asked.more) end = parts.listing.length
    else while (end < parts.listing.length && upTo !== undefined && compareVirtualPaths(parts.listing[end]!, upTo) <= 0) end++
    parts.at = end
    parts.last = upTo ?? parts.last
    if (!asked.more) peer.parts = undefined
    return parts.listing.slice(start, end)
  }

  /** What a file the cache holds needs: nothing, new attributes (TREE=1), or its content. */
  private async fileDiffers(file: PublishedFile, entry: CacheEntry, tree: boolean): Promise<'create' | 'attrs' | undefined> {
    if (entry.kind === 'partial') return undefined // queued above
    return judge(file, entry, entry.kind === 'complete' ? (await this.digestOf(file, digestAlgorithm(entry.digest) ?? 'sha1'))?.digest : undefined, tree)
  }

  storeCredit(peer: Peer, message: MessageByName['NOM']): void {
    // A client may grant up to 2^64-1; it holds no more than the cap, so memory stays bounded.
    const total = BigInt(peer.credit) + message.credit
    const capped = total > BigInt(this.server.creditCap)
    peer.credit = Number(capped ? BigInt(this.server.creditCap) : total)
    if (peer.version === 2) {
      peer.acknowledge(message.sequence)
      peer.learnGrant(Number(message.credit), capped)
    }
  }

  storeAcknowledgement(peer: Peer): void {
    // Our HUGZ went behind everything sent before it: its answer says all that arrived.
    peer.acknowledgeProbe()
    if (peer.gated && peer.contentInFlight < 2 * this.server.creditCap) {
      peer.gated = false
      peer.machine.raise('dispatch')
    }
  }

  /**
   * The files after this one that will be offered by digest if they are held elsewhere
   * (TREE=1) start being read for it now, at most {@link READ_AHEAD} of them: each is then
   * hashed while the one before it is sent, not between the two.
   */
  private readAhead(peer: Peer): void {
    const { publisher } = this.server
    let started = 0
    let looked = 0
    for (const patch of peer.upcoming()) {
      if (started >= READ_AHEAD || ++looked > READ_AHEAD_LOOK) return
      if (!offersElsewhere(peer, patch)) continue
      const file = publisher.get(patch.virtualPath)
      if (file !== undefined && publisher.prepareElsewhere(file, peer.digestAlgorithm)) started++
    }
  }

  /** Prepares the next CHEEZBURGER for this client, or says why there is none. */
  async getNextPatch(peer: Peer): Promise<void> {
    if (!peer.alive) return
    if (peer.unanswered >= this.server.messageBudget) {
      peer.machine.raise('no credit')
      return
    }
    for (;;) {
      const transfer = peer.transfer
      // Our notices (UNMATCHED, DRY RUN, QUEUED) go between files, before the next one.
      if (transfer === undefined && this.sentNotice(peer)) return
      if (transfer === undefined) {
        const patch = peer.takeNext()
        if (patch === undefined) {
          if (peer.unsynced && peer.parts === undefined) {
            // Everything queued went out: say so to a client that asked (SYNCED=1).
            peer.unsynced = false
            const skipped = this.skippedFor(peer)
            this.cheezburger(peer, SYNCED, '/', 0, EMPTY, new Map(skipped === 0 ? [] : [[HEADER.SKIPPED, String(skipped)]]), true)
            return
          }
          peer.machine.raise('finished')
          return
        }
        const { publisher } = this.server
        if (patch.operation === 'differs') {
          // SUMS: the client asks for this folder again, entry by entry.
          this.cheezburger(peer, DIFFERS, patch.virtualPath, 0, EMPTY, new Map(), true)
          return
        }
        if (patch.operation === 'node') {
          // As it is now; gone before its turn: its deletion is queued.
          const node = publisher.node(patch.virtualPath)
          if (node === undefined) continue
          this.cheezburger(peer, node.kind === 'dir' ? DIRECTORY : SYMLINK, node.virtualPath, 0, EMPTY, nodeHeaders(node), true)
          return
        }
        const file = publisher.get(patch.virtualPath)
        if (patch.operation === 'delete' || file === undefined) {
          if (patch.operation !== 'delete') continue // gone before its turn: its deletion is queued
          if (publisher.node(patch.virtualPath) !== undefined) continue // back as a directory or link: queued as such
          const deletion = publisher.deletion(patch.virtualPath)
          const deleted = peer.digestAlgorithm === 'sha1' ? deletion?.sha1 : deletion?.xxh128
          this.cheezburger(peer, 2, patch.virtualPath, 0, EMPTY, new Map(deleted === undefined ? [] : [[digestHeader(peer.digestAlgorithm), deleted]]))
          return
        }
        // New attributes of the content the client holds, or (TREE=1) content it may hold under
        // another name (renamed, copied): offered by digest; a client lacking it asks again
        // (ONCE=1) and gets the content. Only with the digest of this very version.
        // A file judged by stat (QUICK) may not be hashed yet: it is read now, once.
        let digest: FileDigest | undefined
        if (patch.operation === 'attrs') {
          digest = publisher.indexed(file.virtualPath, file, peer.digestAlgorithm) ?? (await publisher.digest(file, peer.digestAlgorithm).catch(() => undefined))
        } else if (offersElsewhere(peer, patch)) {
          // Files too small to be looked for elsewhere (all of C) cost no look ahead.
          if (publisher.mayBeElsewhere(file)) this.readAhead(peer)
          digest = await publisher.elsewhere(file, peer.digestAlgorithm)
        }
        if (digest !== undefined) {
          // A client holding another version at this name asks again with its signature (DELTA): the chunks are cut meanwhile.
          if (peer.delta && patch.operation === 'attrs' && file.size >= DELTA_MIN) this.chunks.prepare(file, chunkParams(file.size).bits)
          this.cheezburger(peer, ATTRIBUTES, file.virtualPath, 0, EMPTY, fileHeaders(file, file.mode, digest), true)
          return
        }
        const delta = patch.operation === 'create' ? await this.sentDelta(peer, patch, file) : undefined
        if (delta === 'offered') return
        if (delta === 'started') continue
        // Unreadable now: the loop takes the next patch.
        await peer.startTransfer(patch.virtualPath, file, this.server.publisher, this.server.chunkSize, patch.operation === 'create' ? patch.offset : 0)
        continue
      }

      const { content } = transfer
      const remaining = content.size - transfer.offset
      if (transfer.delta !== undefined && remaining > 0 && !transfer.delta.nextIsContent()) {
        // A run the client copies from its old version (DELTA=1): no credit, no content.
        const step = await transfer.delta.step(0)
        if (step?.kind === 'copy') {
          const headers = copyRunHeaders(step, transfer.started ? new Map() : headersOf(transfer))
          transfer.started = true
          this.cheezburger(peer, 1, transfer.virtualPath, transfer.offset, EMPTY, headers)
          transfer.offset += step.length
          return
        }
      }
      if (remaining > 0) {
        if (peer.credit <= 0) {
          peer.machine.raise('no credit')
          return
        }
        // Credit alone does not bound what waits in queues: a client may grant credit and
        // never read. A version-2 client says what it read (NOM echoes the last sequence); a
        // version-1 client is asked with HUGZ once a credit cap is in flight (its HUGZ-OK
        // says everything before it arrived). Sending waits at twice the cap: an honest
        // client holds at most its window.
        if (peer.contentInFlight >= this.server.creditCap) {
          if (peer.version === 1 && !peer.probing) {
            peer.probing = true
            void peer.machine.handle('heartbeat')
          }
          if (peer.contentInFlight >= 2 * this.server.creditCap) {
            peer.gated = true
            peer.machine.raise('no credit')
            return
          }
        }
        // Never more content than the credit left: a chunk that does not fit waits for more
        // credit when more surely comes (a chunk cut in two costs a message and a copy), else
        // goes out smaller rather than stall.
        if (peer.credit < Math.min(this.server.chunkSize, remaining) && peer.awaitsCredit()) {
          peer.machine.raise('no credit')
          return
        }
        let chunk: Buffer
        try {
          const want = Math.min(this.server.chunkSize, remaining, peer.credit)
          if (transfer.delta === undefined) chunk = await content.take(want)
          else {
            const step = await transfer.delta.step(want)
            chunk = step?.kind === 'literal' ? step.data : EMPTY
          }
        } catch (error) {
          this.server.log('warn', `cannot read ${transfer.virtualPath}: ${(error as Error).message}`)
          chunk = EMPTY
        }
        if (chunk.length === 0) {
          // Shorter than when we opened it, or unreadable: changed under us, sent again once stable.
          await this.restart(peer)
          continue
        }
        transfer.hasher?.update(chunk)
        // A client that asked (EOFDATA=1) gets the end of the file on its last chunk of content
        // (of a delta, always on the final, empty chunk: the spec keeps a delta's runs apart from its end).
        const last = peer.eofData && transfer.delta === undefined && transfer.offset + chunk.length === content.size
        if (last && (await content.torn())) {
          await this.restart(peer)
          continue
        }
        const headers = last ? await this.finalHeaders(transfer) : transfer.started ? NO_HEADERS : headersOf(transfer)
        transfer.started = true
        this.cheezburger(peer, 1, transfer.virtualPath, transfer.offset, chunk, headers, last)
        const recycled = peer.sentChunk(peer.sequence - 1n, chunk.length, content.drained?.())
        transfer.offset += chunk.length
        peer.credit -= chunk.length
        this.server.stats.contentBytes += chunk.length
        // Memory recycled once acknowledged is no garbage: only other chunks call for a collection.
        if (!recycled) chunkSpent(chunk.length)
        // After a collection, a turn of the loop frees the buffers it found dead (as the client does).
        const released = chunksReleased()
        if (released !== undefined) await released
        if (last) {
          this.server.stats.files++
          peer.filesSent++
          await peer.endTransfer()
        }
        return
      }
      // The end: only if the file is still the one we read, else the client gets it anew.
      if (await content.torn()) {
        await this.restart(peer)
        continue
      }
      this.cheezburger(peer, 1, transfer.virtualPath, content.size, EMPTY, await this.finalHeaders(transfer), true)
      this.server.stats.files++
      peer.filesSent++
      await peer.endTransfer()
      return
    }
  }

  /**
   * The headers of a file's final chunk: those of a first chunk if it is also the first; and
   * the digest of a file that had none indexed when the transfer began: computed on the way
   * (it then goes into the index), or by the transfer of the same version that led.
   */
  private async finalHeaders(transfer: Transfer): Promise<Map<string, string>> {
    const headers = transfer.started ? new Map<string, string>() : headersOf(transfer)
    const { publisher } = this.server
    let digest: string | undefined
    const computed = transfer.hasher?.finish()
    if (computed !== undefined) {
      publisher.learned(transfer.virtualPath, transfer.content, computed)
      digest = computed.digest
    } else if (transfer.digest === undefined) {
      // Another transfer of this version hashed it on its way: indexed by now, else read once for it.
      const indexed = (): FileDigest | undefined => publisher.indexed(transfer.virtualPath, transfer.content, transfer.algorithm)
      digest = (indexed() ?? (await this.digestOfVersion(transfer)) ?? indexed())?.digest
    }
    if (digest !== undefined) {
      headers.set(HEADER.SIZE, String(transfer.content.size))
      headers.set(digestHeader(transfer.algorithm), digest)
    }
    return headers
  }

  /** The digest of the version a transfer sent, if that is still the published one. */
  private async digestOfVersion(transfer: Transfer): Promise<FileDigest | undefined> {
    const digest = await this.digestOf(transfer.file, transfer.algorithm)
    const { content } = transfer
    return digest !== undefined && digest.size === content.size && digest.mtimeMs === content.mtimeMs && digest.ino === content.ino ? digest : undefined
  }

  async terminate(peer: Peer): Promise<void> {
    this.server.drop(peer)
    await peer.forget()
  }

  async send(peer: Peer, name: ServerSends): Promise<void> {
    await this.server.send(peer, SEND_ID[name])
  }

  /**
   * DELTA=1 (ours): a file that replaces a version the client likely holds is offered (operation
   * DELTA) instead of sent, while its chunks are cut for the signature the client answers with;
   * a file asked again with a signature goes as a delta when that is worth it. Undefined: the
   * file goes whole.
   */
  private async sentDelta(peer: Peer, patch: Patch & { operation: 'create' }, file: PublishedFile): Promise<'offered' | 'started' | undefined> {
    if (!peer.delta || file.size < DELTA_MIN) return undefined
    const { publisher } = this.server
    if (patch.signature !== undefined) {
      const digest = publisher.indexed(file.virtualPath, file, peer.digestAlgorithm)
      if (digest === undefined) return undefined // a delta is checked by the digest of the whole
      const delta = await DeltaContent.open(file, patch.signature, this.chunks, patch.offset ?? 0)
      if (delta === undefined) return undefined
      peer.startDelta(patch.virtualPath, file, publisher, delta, digest)
      return 'started'
    }
    if (patch.replaced !== true || patch.content === true) return undefined
    const digest = publisher.indexed(file.virtualPath, file, peer.digestAlgorithm) ?? (await publisher.digest(file, peer.digestAlgorithm).catch(() => undefined))
    if (digest === undefined) return undefined
    const bits = chunkParams(file.size).bits
    this.chunks.prepare(file, bits)
    const headers = fileHeaders(file, file.mode, digest)
    headers.set(HEADER.CHUNKING, String(bits))
    this.cheezburger(peer, DELTA, file.virtualPath, 0, EMPTY, headers, true)
    return 'offered'
  }

  /** The file changed under us: send it again from the start once it is stable. */
  private async restart(peer: Peer): Promise<void> {
    const transfer = peer.transfer!
    await peer.endTransfer()
    const file = this.server.publisher.get(transfer.virtualPath)
    peer.enqueue(file ? { operation: 'create', virtualPath: transfer.virtualPath } : { operation: 'delete', virtualPath: transfer.virtualPath })
    // A small file is read synchronously: one rewritten without pause would otherwise be
    // retried in a loop that never lets the event loop run (heartbeats, other clients).
    await new Promise<void>((resolve) => setImmediate(resolve))
  }

  /** A file's digest in one algorithm, or undefined when it cannot be read now (it is then just sent). */
  private async digestOf(file: PublishedFile, algorithm: DigestAlgorithm): Promise<FileDigest | undefined> {
    return this.server.publisher.digest(file, algorithm).catch(() => undefined)
  }

  /**
   * Sends the next notice of ours this client asked for, if any: a subscription that matches
   * nothing (UNMATCHED=1), what a dry run would do (DRYRUN=1), what was queued (QUEUED=1).
   * Each is one CHEEZBURGER with an empty chunk, using no credit.
   */
  private sentNotice(peer: Peer): boolean {
    const unmatched = peer.unmatched.shift()
    if (unmatched !== undefined) {
      const published = JSON.stringify([...this.server.publisher.mounts].map((mount) => mount.virtualPath))
      this.cheezburger(peer, UNMATCHED, unmatched, 0, EMPTY, new Map([[HEADER.PUBLISHED, published]]), true)
      return true
    }
    const planned = peer.planned.shift()
    if (planned !== undefined) {
      const headers = new Map<string, string>([[HEADER.ACTION, planned.action]])
      if (planned.size !== undefined && planned.action !== 'delete') headers.set(HEADER.SIZE, String(planned.size))
      this.cheezburger(peer, DRY_RUN, planned.virtualPath, 0, EMPTY, headers, true)
      return true
    }
    if (peer.unannounced.size === 0) return false
    this.announceQueued(peer)
    return true
  }

  /** Whether anything is published at or under `path`, or a published folder (even empty) is there. */
  private matches(path: string): boolean {
    const { publisher } = this.server
    for (const mount of publisher.mounts) if (covers(path, mount.virtualPath)) return true
    if (publisher.get(path) !== undefined || publisher.node(path) !== undefined) return true
    for (const _ of publisher.under(path)) return true
    for (const _ of publisher.nodesUnder(path)) return true
    return false
  }

  /** QUEUED=1 (ours): the files queued since the last announcement and the octets they take. */
  private announceQueued(peer: Peer): void {
    const { publisher } = this.server
    let files = 0
    let bytes = 0
    for (const [virtualPath, offset] of peer.unannounced) {
      const file = publisher.get(virtualPath)
      if (file === undefined) continue // gone already: its deletion is queued
      files++
      bytes += Math.max(0, file.size - offset)
    }
    peer.unannounced.clear()
    this.cheezburger(peer, QUEUED, '/', 0, EMPTY, new Map([[HEADER.FILES, String(files)], [HEADER.BYTES, String(bytes)]]), true)
  }

  /** Entries the publisher cannot publish under a client's subscriptions: its mirror is partial by that many. */
  private skippedFor(peer: Peer): number {
    let count = 0
    for (const entry of this.server.publisher.skipped) {
      for (const subscription of peer.subscriptions) {
        if (covers(subscription, entry.virtualPath) || covers(entry.virtualPath, subscription)) {
          count++
          break
        }
      }
    }
    return count
  }

  private cheezburger(peer: Peer, operation: number, filename: string, offset: number, chunk: Buffer, headers: ReadonlyMap<string, string>, last = false): void {
    peer.reply = {
      sequence: peer.sequence++,
      operation,
      filename,
      offset: BigInt(offset),
      // The v2 reference marks the final, empty chunk; v1 always says 0 (but to a client of ours that asked, EOFDATA=1).
      eof: last && (peer.version === 2 || peer.eofData) ? 1 : 0,
      headers,
      chunk,
    }
    peer.machine.raise('send chunk')
  }
}


/**
 * What a file the cache holds needs, its digest known in the cache value's algorithm
 * (undefined: it could not be read, so it is sent). A QUICK entry is judged as rsync's quick check does, by size and mtime with no digest;
 * the same size with another mtime is offered by digest (ATTRIBUTES), which the client takes
 * only if its file has that content, and asks for again otherwise.
 */
/** Whether a file is offered by digest when it is held under another name (TREE=1): a new file sent from its start. */
function offersElsewhere(peer: Peer, patch: Patch): boolean {
  return patch.operation === 'create' && peer.tree && patch.offset === undefined && patch.content !== true
}

function judge(file: PublishedFile, entry: CacheEntry, digest: string | undefined, tree: boolean): 'create' | 'attrs' | undefined {
  if (entry.kind === 'partial') return undefined // queued before the range
  if (entry.kind === 'stat') {
    if (entry.size !== file.size) return 'create'
    return entry.mtimeMs === Math.trunc(file.mtimeMs) && entry.mode === (file.mode & 0o7777) ? undefined : 'attrs'
  }
  if (entry.kind !== 'complete' || digest === undefined || entry.digest !== digest) return 'create'
  if (!tree || entry.mode === undefined || entry.mtimeMs === undefined) return undefined
  const same = entry.mode === (file.mode & 0o7777) && entry.mtimeMs === Math.trunc(file.mtimeMs)
  return same ? undefined : 'attrs'
}

/** Whether the cache entry of a TREE=1 client is this directory or link as it is. */
function nodeHeld(node: PublishedNode, entry: CacheEntry | undefined): boolean {
  if (node.kind === 'dir') return entry?.kind === 'dir' && entry.mode === node.mode
  return entry?.kind === 'link' && entry.target === node.target
}

/** The headers of a DIRECTORY or SYMLINK CHEEZBURGER. */
function nodeHeaders(node: PublishedNode): Map<string, string> {
  const headers = new Map<string, string>([
    [HEADER.MTIME, String(Math.trunc(node.mtimeMs))],
    [HEADER.MODE, node.mode.toString(8)],
  ])
  if (node.target !== undefined) headers.set(HEADER.TARGET, node.target)
  return headers
}

/** The headers of a file's first CHEEZBURGER (extensions.ts): size, mtime, mode, and sha1 or xxh128. */
function headersOf(transfer: Transfer): Map<string, string> {
  return fileHeaders(transfer.content, transfer.file.mode, transfer.digest)
}

/**
 * size, mtime, mode and (when known) the digest (sha1, or xxh128 to a client that asked
 * XXH128=1) of one version of a file: a first chunk's headers, and ATTRIBUTES'.
 */
function fileHeaders(version: { size: number; mtimeMs: number }, mode: number, digest: FileDigest | undefined): Map<string, string> {
  const headers = new Map<string, string>([
    [HEADER.SIZE, String(version.size)],
    [HEADER.MTIME, String(Math.trunc(version.mtimeMs))],
    [HEADER.MODE, (mode & 0o7777).toString(8)],
  ])
  if (digest !== undefined) headers.set(digestHeader(digest.algorithm), digest.digest)
  return headers
}
