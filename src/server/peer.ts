/**
 * What the server knows about one client: its machine, protocol version, credit,
 * subscriptions, the files queued for it and the one being sent.
 */
import { BlockHasher, type DigestAlgorithm } from '../fs/digest.js'
import { covers } from '../fs/vpath.js'
import type { Machine } from '../protocol/fsm.js'
import type { Codec } from '../protocol/generated/fmq_codecs.js'
import { type CacheEntry, type DryRunAction, sumKey } from '../protocol/extensions.js'
import type { Message, ProtocolVersion } from '../protocol/generated/fmq_msg.js'
import type { ServerActions, ServerEvent, ServerState } from '../protocol/generated/fmq_server_fsm.js'
import type { Signature, SignatureParts } from '../fs/chunking.js'
import { type Content, openContent, recycleChunk, WHOLE_FILE_LIMIT } from './content.js'
import type { DeltaContent } from './delta.js'
import type { FileDigest, PublishedFile, Publisher } from './publisher.js'
import type { Outbox } from './outbox.js'

/**
 * An operation waiting to be sent to one client: a file's content (a create may resume at an
 * offset), a deletion, and for a client that mirrors the tree (TREE=1) a directory or link as
 * it is when its turn comes (`node`) or a file's new attributes (`attrs`).
 */
export type Patch =
  | {
      readonly operation: 'create'
      readonly virtualPath: string
      readonly offset?: number
      /** Asked again for its content (ONCE=1): never offered by digest instead. */
      readonly content?: boolean
      /**
       * It replaces a version the client likely holds (changed while subscribed, or another
       * digest in its cache) and is of at least DELTA_MIN octets: worth offering as a delta (DELTA=1).
       */
      readonly replaced?: boolean
      /** Asked again with the signature of the version the client holds (DELTA=1): sent as a delta when worth it. */
      readonly signature?: Signature
    }
  | { readonly operation: 'delete' | 'node' | 'attrs'; readonly virtualPath: string }
  /** SUMS: this folder holds other entries than the client's sum says (operation DIFFERS); queued apart from the folder itself. */
  | { readonly operation: 'differs'; readonly virtualPath: string }

/** A patch's place in a queue: its path; a folder's DIFFERS apart, so it never takes the place of the folder's own patch (its directory, its deletion). */
function queueKey(patch: Patch): string {
  return patch.operation === 'differs' ? sumKey(patch.virtualPath) : patch.virtualPath
}

/**
 * A resync whose cache comes in parts (MORE=1): what is published under the path, in the
 * order of the parts' keys, and how far the parts so far reached.
 */
export interface PartedResync {
  readonly path: string
  /** Virtual paths published under `path` when the first part came, sorted by compareVirtualPaths. */
  readonly listing: readonly string[]
  /** Index in `listing` of the first path no part has covered yet. */
  at: number
  /** The last key of the last part: the next part's keys must come after it. */
  last: string | undefined
}

/** What an ICANHAZ asks for, between "check subscription" and "resync client". */
export interface Asked {
  readonly path: string
  /** RESYNC=1: everything under the path the cache does not hold. */
  readonly resync: boolean
  /** MIRROR=1 (ours): also delete what the cache holds and we no longer publish. */
  readonly mirror: boolean
  /** ONCE=1 (ours): answer, but do not store the subscription. */
  readonly once: boolean
  /** SYNCED=1 (ours): mark each time everything queued was sent. */
  readonly synced: boolean
  /** QUEUED=1 (ours): announce what is queued, files and octets. */
  readonly queued: boolean
  /** DRYRUN=1 (ours): say what would be sent, send nothing. */
  readonly dryRun: boolean
  /** UNMATCHED=1 (ours): say when the path matches nothing published. */
  readonly unmatched: boolean
  /** EOFDATA=1 (ours): a file may end on its last chunk of content (eof=1). */
  readonly eofData: boolean
  /** BATCH=1 (ours, version 2): several messages may go in one ZeroMQ message. */
  readonly batch?: boolean
  /** TREE=1 (ours): directories, links and attribute changes too. */
  readonly tree: boolean
  /** XXH128=1 (ours): headers carry the fast digest, xxh128, instead of sha1. */
  readonly xxh128: boolean
  /** MORE=1 (ours): this is a part of the cache, and more follows. */
  readonly more: boolean
  /** DELTA=1 (ours, version 2): changed files may be offered as deltas. */
  readonly delta?: boolean
  /** SIGNATURE (ours, DELTA=1, with ONCE=1): the signature of the version the client holds of the file asked. */
  readonly signature?: Signature | undefined
  /** SUMS=1 (ours): the cache sums folders (`sum` entries); judged folder by folder. */
  readonly sums: boolean
  /** FOLDER=1 (ours, with ONCE=1): only the entries directly in the path are judged (a folder asked again after DIFFERS). */
  readonly folder: boolean
  /** PART=1 (ours, with SIGNATURE): only a part of a signature, kept until the re-ask with the last; nothing is sent for it. */
  readonly signaturePart?: boolean
  /** Cache entries by virtual path. */
  readonly cache: ReadonlyMap<string, CacheEntry>
}

/** The file being sent: one version of it, read once, hashed on the way when its digest was not known. */
export interface Transfer {
  readonly virtualPath: string
  readonly file: PublishedFile
  readonly content: Content
  offset: number
  /** Whether the first CHEEZBURGER (with the file's headers) went out. */
  started: boolean
  /** The digest the client is told: its conversation's algorithm when the transfer began. */
  readonly algorithm: DigestAlgorithm
  /** The digest of the version sent, when the index had it; else `hasher` computes it as chunks go out. */
  readonly digest: FileDigest | undefined
  /**
   * Fed with every octet sent, from offset 0: the digest of a file the index did not know,
   * unless another transfer of the same version computes it (then taken at the end).
   */
  readonly hasher: BlockHasher | undefined
  /** Told when the transfer ends (background hashing waits for transfers). */
  readonly publisher: Publisher
  /** Sent as a delta (DELTA=1): `content` is this, stepped through by its plan. */
  readonly delta?: DeltaContent
}

/** Unacknowledged content chunks remembered per client (see `Peer.sentChunk`). */
const MAX_MARKS = 8192

export class Peer {
  machine!: Machine<ServerActions<Peer>, ServerState, ServerEvent, Peer>
  version: ProtocolVersion = 2
  codec!: Codec
  /** The message "send X" puts on the wire; actions fill it in. */
  reply: Partial<Record<string, unknown>> = {}
  /** The subscription being checked between ICANHAZ and subscribed/refused. */
  asked?: Asked
  readonly subscriptions = new Set<string>()
  login?: string
  /** Octets of file content the client allows us to send. */
  credit = 0
  /** Counts every CHEEZBURGER sent (spec: data, end of file and deletes). */
  sequence = 0n
  /** SYNCED=1 (ours): mark with a SYNCED CHEEZBURGER each time the queue is drained. */
  wantsSynced = false
  /** Something was queued (or subscribed) since the last SYNCED mark. */
  unsynced = false
  /** QUEUED=1 (ours): announce the files queued, with their octets, before sending them. */
  wantsQueued = false
  /** Files with content queued since the last QUEUED announcement (from the offset, for a resume). */
  readonly unannounced = new Map<string, number>()
  /** DRYRUN=1 (ours): what a resync would send, said before anything else, sent never. */
  readonly planned: Array<{ readonly virtualPath: string; readonly action: DryRunAction; readonly size: number | undefined }> = []
  /** UNMATCHED=1 (ours): subscriptions that match nothing published, said before anything else. */
  readonly unmatched: string[] = []
  /** EOFDATA=1 (ours): end each file on its last chunk of content, with eof=1. */
  eofData = false
  /** BATCH=1 (ours, version 2): messages ready at once go as the frames of one ZeroMQ message. */
  batch = false
  /** The batch being gathered for this client (BATCH=1), made on its first message. */
  outbox: Outbox | undefined
  /** The digest this client verifies with: SHA-1 unless it asked XXH128=1 (ours). */
  digestAlgorithm: DigestAlgorithm = 'sha1'
  /** TREE=1 (ours): the client mirrors directories and links, and takes attribute changes. */
  tree = false
  /** DELTA=1 (ours, version 2): changed files may be offered as deltas. */
  delta = false
  /** A resync whose cache parts are still coming (MORE=1). */
  parts: PartedResync | undefined
  /** The parts of a signature so far (PART=1, DELTA), for the re-ask of one file: at most MAX_SIGNATURE_CHUNKS chunks. */
  signatureParts: SignatureParts | undefined
  /** Files to send, in order; a path is queued at most once. */
  readonly queue = new Map<string, Patch>()
  private cursor: IterableIterator<Patch> = this.queue.values()
  transfer?: Transfer
  lastHeard = Date.now()
  lastSent = Date.now()
  /** When we last asked a version-1 client whether it is alive. */
  lastHugz = 0
  /** Set once expiry is decided, so it is handled once. */
  expiring = false
  /** Octets of file content sent to this client, all along. */
  sentContent = 0
  /** Whole files sent to this client, all along (for monitoring). */
  filesSent = 0
  /** When the server first heard from this client. */
  readonly since = Date.now()
  /** Of those, octets a version-2 client said it received (NOM echoes the last sequence it read). */
  ackedContent = 0
  /** Sequence and `sentContent` after each content CHEEZBURGER not yet acknowledged, oldest first from `marksHead`. */
  /** `sentContent` when we last sent a version-1 client HUGZ: its HUGZ-OK says all that arrived. */
  probeMark: number | undefined
  /** Sending waits for an acknowledgement (too much content in flight). */
  gated = false
  /**
   * The most credit a version-2 client held, by our count, when it granted more (NOM): left
   * with no more than that, it grants again once it reads what is in flight. -1 until known,
   * and for good once our count may be off (credit capped, marks thinned).
   */
  grantLevel = -1
  /** Octets of credit the client granted in this conversation, before any cap. */
  private granted = 0
  private grantsExact = true
  private marks: Array<{ readonly sequence: bigint; readonly sent: number; readonly memory: Buffer | undefined }> = []
  private marksHead = 0
  /** Messages received from the client and not yet handled by its machine. */
  backlog = 0
  /** Their octets. */
  backlogOctets = 0
  /** Messages sent since the client last said anything: bounds what waits in libzmq's queues. */
  unanswered = 0
  probing = false
  alive = true

  constructor(
    readonly routingId: Buffer,
    readonly key: string,
  ) {}

  /** Octets of content sent and not yet acknowledged: what may wait in queues between us and the client. */
  get contentInFlight(): number {
    return this.sentContent - this.ackedContent
  }

  /** Content chunks remembered until acknowledged (bounded by MAX_MARKS). */
  get marksKept(): number {
    return this.marks.length - this.marksHead
  }

  /**
   * Counts `octets` of content sent in the CHEEZBURGER numbered `sequence`; `memory`, the read
   * memory that chunk finished ({@link Content.drained}), is recycled once it is acknowledged.
   * Whether it will be (a version-2 client's NOM says which chunks arrived).
   */
  sentChunk(sequence: bigint, octets: number, memory?: Buffer): boolean {
    this.sentContent += octets
    // Only a version-2 NOM echoes sequences; a version-1 client acknowledges by HUGZ-OK.
    if (this.version !== 2) return false
    this.marks.push({ sequence, sent: this.sentContent, memory })
    if (this.marks.length - this.marksHead > MAX_MARKS) {
      // Many small chunks between two NOMs: keep every other mark. An acknowledgement then
      // counts up to the nearest mark kept below it, never more than arrived.
      const pending = this.marks.slice(this.marksHead)
      this.marks = pending.filter((_, index) => index % 2 === 1 || index === pending.length - 1)
      this.grantsExact = false
      this.marksHead = 0
    }
    return memory !== undefined
  }

  /** A version-2 NOM echoed `sequence`, the last CHEEZBURGER the client read: content up to it arrived. */
  acknowledge(sequence: bigint): void {
    const marks = this.marks
    while (this.marksHead < marks.length && marks[this.marksHead]!.sequence <= sequence) {
      const mark = marks[this.marksHead]!
      this.ackedContent = mark.sent
      if (mark.memory !== undefined) recycleChunk(mark.memory)
      this.marksHead++
    }
    if (this.marksHead > 1024 && this.marksHead * 2 > marks.length) {
      this.marks = marks.slice(this.marksHead)
      this.marksHead = 0
    }
  }

  /**
   * A NOM granted `credit` (after acknowledging its sequence): what the client held when it
   * granted is learnt, while our count is exact. `capped`: the grant was cut to the credit cap.
   */
  learnGrant(credit: number, capped: boolean): void {
    if (capped) this.grantsExact = false
    // The client's own count: all it granted before, less the content it had read.
    const held = this.granted - this.ackedContent
    this.granted += credit
    if (this.grantsExact && held > this.grantLevel) this.grantLevel = held
    if (!this.grantsExact) this.grantLevel = -1
  }

  /**
   * Whether a chunk that does not fit the credit left should wait for more credit (as the
   * spec has it) rather than go out cut short: only when more surely comes. A version-2
   * client reading what is in flight is left holding what we hold, and it granted more
   * before when holding as much; any other client gets the shorter chunk (the reference v2
   * server spins on a credit left too small for a chunk; a client whose window is smaller
   * than a chunk never grants a whole one).
   */
  awaitsCredit(): boolean {
    return this.version === 2 && this.contentInFlight > 0 && this.credit <= this.grantLevel
  }

  /** HUGZ-OK answered our last HUGZ: everything sent before it arrived. */
  acknowledgeProbe(): void {
    if (this.probeMark !== undefined && this.probeMark > this.ackedContent) this.ackedContent = this.probeMark
    this.probeMark = undefined
  }

  /** Queues a file operation, replacing an older one for the same path. */
  enqueue(patch: Patch): void {
    const key = queueKey(patch)
    this.queue.delete(key)
    this.queue.set(key, patch)
    this.unsynced = this.wantsSynced
    // A version a delta client will be offered (DELTA) is counted when it asks for it again, not twice.
    if (this.wantsQueued && patch.operation === 'create' && !(this.delta && patch.replaced === true)) this.unannounced.set(patch.virtualPath, patch.offset ?? 0)
  }

  /** The next patch, oldest first. */
  takeNext(): Patch | undefined {
    // A live iterator: starting over at each call would walk past every deleted entry again.
    let next = this.cursor.next()
    if (next.done === true) {
      this.cursor = this.queue.values()
      next = this.cursor.next()
    }
    if (next.done === true) return undefined
    this.queue.delete(queueKey(next.value))
    return next.value
  }

  /** The patches queued, oldest first, without taking them. */
  upcoming(): IterableIterator<Patch> {
    return this.queue.values()
  }

  /** Whether any subscription of this client covers the path. */
  covers(virtualPath: string): boolean {
    for (const subscription of this.subscriptions) if (covers(subscription, virtualPath)) return true
    return false
  }

  /**
   * Opens a file to send from `offset` (0 unless resuming; a resume needs the digest of the
   * version opened, else it starts over). Undefined when the file cannot be read now.
   */
  async startTransfer(virtualPath: string, file: PublishedFile, publisher: Publisher, chunkSize: number, offset = 0): Promise<Transfer | undefined> {
    const content = await openContent(file.physicalPath, offset, chunkSize, file.size)
    if (content === undefined) return undefined
    const algorithm = this.digestAlgorithm
    const digest = publisher.indexed(virtualPath, content, algorithm)
    const start = content.start
    if (start > 0 && digest === undefined) {
      // The version on disk is not the one whose prefix was checked: start over.
      await content.close()
      return this.startTransfer(virtualPath, file, publisher, chunkSize, 0)
    }
    // A small file is hashed by each transfer (it is in memory); a large one by one transfer at a time.
    const hashes = digest === undefined && (content.size <= WHOLE_FILE_LIMIT || publisher.leadHash(virtualPath, content, algorithm))
    this.transfer = {
      virtualPath,
      file,
      content,
      offset: start,
      started: false,
      algorithm,
      digest,
      hasher: hashes ? new BlockHasher(undefined, algorithm) : undefined,
      publisher,
    }
    publisher.sending(1)
    return this.transfer
  }

  /** Starts sending a version as a delta, its plan made (server/delta.ts). */
  startDelta(virtualPath: string, file: PublishedFile, publisher: Publisher, delta: DeltaContent, digest: FileDigest): Transfer {
    this.transfer = { virtualPath, file, content: delta, offset: delta.start, started: false, algorithm: digest.algorithm, digest, hasher: undefined, publisher, delta }
    publisher.sending(1)
    return this.transfer
  }

  async endTransfer(): Promise<void> {
    const transfer = this.transfer
    this.transfer = undefined
    if (transfer === undefined) return
    transfer.publisher.sending(-1)
    if (transfer.hasher !== undefined) transfer.publisher.leadEnded(transfer.virtualPath, transfer.content, transfer.algorithm)
    await transfer.content.close()
  }

  /** Drops everything about this client's conversation (OHAI restarts it, expiry ends it). */
  async forget(): Promise<void> {
    await this.endTransfer()
    this.queue.clear()
    this.wantsSynced = false
    this.unsynced = false
    this.wantsQueued = false
    this.unannounced.clear()
    this.planned.length = 0
    this.unmatched.length = 0
    this.eofData = false
    this.batch = false
    this.outbox?.clear()
    this.digestAlgorithm = 'sha1'
    this.tree = false
    this.delta = false
    this.parts = undefined
    this.signatureParts = undefined
    this.subscriptions.clear()
    this.credit = 0
    this.sequence = 0n
    this.sentContent = 0
    this.ackedContent = 0
    this.probeMark = undefined
    this.gated = false
    this.marks = []
    this.marksHead = 0
    this.grantLevel = -1
    this.granted = 0
    this.grantsExact = true
    this.reply = {}
    this.asked = undefined
    this.login = undefined
  }

  /** The message "send X" sends: the reply the actions prepared, with id X. */
  message(id: Message['id']): Message {
    // SRSLY and RTFM may go out with no reason prepared (the reference sends it empty).
    return { reason: '', ...this.reply, id } as Message
  }
}
