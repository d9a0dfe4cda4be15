/**
 * What the server knows about one client: its machine, protocol version, credit,
 * subscriptions, the files queued for it and the one being sent.
 */
import { type FileHandle, open, stat } from 'node:fs/promises'
import { covers } from '../fs/vpath.js'
import type { Machine } from '../protocol/fsm.js'
import type { Codec } from '../protocol/generated/fmq_codecs.js'
import type { CacheEntry } from '../protocol/extensions.js'
import type { Message, ProtocolVersion } from '../protocol/generated/fmq_msg.js'
import type { ServerActions, ServerEvent, ServerState } from '../protocol/generated/fmq_server_fsm.js'
import type { FileDigest, PublishedFile } from './publisher.js'

/** A file operation waiting to be sent to one client; a create may resume at an offset. */
export type Patch =
  | { readonly operation: 'create'; readonly virtualPath: string; readonly offset?: number }
  | { readonly operation: 'delete'; readonly virtualPath: string }

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
  /** Cache entries by virtual path. */
  readonly cache: ReadonlyMap<string, CacheEntry>
}

/** The file being sent, opened once and read at offsets. */
export interface Transfer {
  readonly virtualPath: string
  readonly file: PublishedFile
  readonly handle: FileHandle
  /** Identity of the content when the transfer began: a change means starting over. */
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  offset: number
  /** Whether the first CHEEZBURGER (with the file's headers) went out. */
  started: boolean
  /** The file's digest: undefined while it is computed, null if that failed. */
  digest: FileDigest | null | undefined
  /** Whether a "dispatch" is promised for when the digest is known. */
  waiting: boolean
}

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
  /** Files to send, in order; a path is queued at most once. */
  readonly queue = new Map<string, Patch>()
  transfer?: Transfer
  lastHeard = Date.now()
  lastSent = Date.now()
  /** When we last asked a version-1 client whether it is alive. */
  lastHugz = 0
  /** Set once expiry is decided, so it is handled once. */
  expiring = false
  /** Messages sent since the client last said anything: bounds what waits in libzmq's queues. */
  unanswered = 0
  probing = false
  alive = true

  constructor(
    readonly routingId: Buffer,
    readonly key: string,
  ) {}

  /** Queues a file operation, replacing an older one for the same path. */
  enqueue(patch: Patch): void {
    this.queue.delete(patch.virtualPath)
    this.queue.set(patch.virtualPath, patch)
    this.unsynced = this.wantsSynced
  }

  /** The next patch, oldest first. */
  takeNext(): Patch | undefined {
    for (const [path, patch] of this.queue) {
      this.queue.delete(path)
      return patch
    }
    return undefined
  }

  /** Whether any subscription of this client covers the path. */
  covers(virtualPath: string): boolean {
    for (const subscription of this.subscriptions) if (covers(subscription, virtualPath)) return true
    return false
  }

  /** Opens a file to send from `offset` (0 unless resuming; past the end means from 0). */
  async startTransfer(virtualPath: string, file: PublishedFile, offset = 0): Promise<Transfer | undefined> {
    const handle = await open(file.physicalPath, 'r').catch(() => undefined)
    if (!handle) return undefined
    const info = await handle.stat()
    this.transfer = {
      virtualPath,
      file,
      handle,
      ino: info.ino,
      size: info.size,
      mtimeMs: info.mtimeMs,
      offset: offset <= info.size ? offset : 0,
      started: false,
      digest: undefined,
      waiting: false,
    }
    return this.transfer
  }

  /**
   * Whether the content changed since the transfer began. One stat by name tells both
   * an in-place write (same inode, new size or mtime) and a replacement (new inode).
   */
  async transferTorn(transfer: Transfer): Promise<boolean> {
    const named = await stat(transfer.file.physicalPath).catch(() => undefined)
    return !named || named.ino !== transfer.ino || named.size !== transfer.size || named.mtimeMs !== transfer.mtimeMs
  }

  async endTransfer(): Promise<void> {
    const transfer = this.transfer
    this.transfer = undefined
    await transfer?.handle.close().catch(() => undefined)
  }

  /** Drops everything about this client's conversation (OHAI restarts it, expiry ends it). */
  async forget(): Promise<void> {
    await this.endTransfer()
    this.queue.clear()
    this.wantsSynced = false
    this.unsynced = false
    this.subscriptions.clear()
    this.credit = 0
    this.sequence = 0n
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
