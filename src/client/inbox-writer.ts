/**
 * Writing what one server sends into the inbox. File names are untrusted: every name goes
 * through the safe resolver (src/fs/placement.ts, on src/fs/inbox.ts) and is refused if it points
 * into the client's state directory. Content goes into a partial file under `<stateDir>/partial/`
 * (partial-file.ts), written at the expected offset only, and is renamed into place once the
 * final, empty chunk arrives: a file is never visible under its final name until it is
 * complete, and a shorter new version never keeps an old tail (both weak spots of the
 * reference client).
 *
 * Verified delivery: content is hashed as it is written; when the server announced a size or
 * a SHA-1 (headers, src/protocol/extensions.ts) and the file does not match, the partial file
 * is deleted, never renamed, and the file is asked for again. Every delivered file goes into
 * the manifest (manifest.ts), so the next RESYNC cache need not read it.
 *
 * The size and SHA-1 may also come on the final, empty chunk (a server that hashes while it
 * sends): the file is then checked against those as well.
 *
 * File-system work is synchronous: a small file costs a dozen syscalls of microseconds each,
 * where each asynchronous call would cost a round trip through the libuv threadpool.
 *
 * Resume: a file of at least RESUME_BLOCK octets is recorded in `client_partials` and its
 * partial file outlives the conversation (partials.ts, partial-file.ts); the next
 * conversation offers it to the server, and a first chunk at the offered offset continues it.
 *
 * @packageDocumentation
 */
import { closeSync, fchmodSync, fstatSync, futimesSync, lstatSync, unlinkSync, type Stats } from 'node:fs'

import { chunkSpent } from '../util/memory.js'
import { lstatOrUndefinedSync } from '../fs/inbox.js'
import { closeQuietly, outOfSpace, unlinkQuietly, writeAll } from '../fs/io.js'
import { InboxPlacement, fileMode, inboxVirtualPath, moveIntoPlace } from '../fs/placement.js'
import { covers } from '../fs/vpath.js'
import { type ContentHash, createContentHash, type DigestAlgorithm } from '../fs/digest.js'
import { RESUME_BLOCK, announcedDigest, parseFileHeaders } from '../protocol/extensions.js'
import { ATTRIBUTES, CREATE, DELETE, DIRECTORY, SYMLINK, type Cheezburger } from '../protocol/generated/fmq_msg.js'
import { DELTA, parseCopyRun } from '../protocol/delta.js'
import { answerOffer, copyRun } from './delta.js'
import { mirroredMode, mtimeSeconds } from '../fs/tree.js'
import { TreeWriter } from './tree-writer.js'
import type { DurableState } from './durable.js'
import {
  CreditOverrunError,
  DigestMismatchError,
  type DigestCheck,
  InboxFullError,
  InboxWriteError,
  MAX_REASKS,
  OutOfOrderChunkError,
  RefusedFileNameError,
} from './errors.js'
import type { DeletedEvent, DeliveredEvent, ProgressEvent } from './events.js'
import { PARTIAL_DIR } from './options.js'
import { PartialFiles, type PartialFile } from './partial-file.js'
import { hashPrefix, partialVirtualPath, type ResumePoint } from './partials.js'

export { PARTIAL_DIR }

/** Progress is reported at most this often per file. */
const PROGRESS_INTERVAL_MS = 100

/** What the writer needs from its link. */
export interface WriterHost {
  readonly endpoint: string
  /** The inbox and state directory as they are now (`setInbox` may change them). */
  paths(): { inbox: string; stateDir: string }
  delivered(event: Omit<DeliveredEvent, 'endpoint'>): void
  deleted(event: Omit<DeletedEvent, 'endpoint'>): void
  progress(event: Omit<ProgressEvent, 'endpoint'>): void
  error(error: Error): void
  /** The node database; undefined once the client is closed. */
  durable(): DurableState | undefined
  /**
   * Asks the server again for one file (ICANHAZ with RESYNC=1 and ONCE=1); with `delta`, the
   * chunking bits of a DELTA offer, the cache carries the signature of the version the inbox holds.
   */
  reask(virtualPath: string, delta?: number): void
  /** Asks again for a file the disk had no room for, after a backoff (space may come back). */
  retryLater(virtualPath: string): void
  /**
   * Whether a DELETE removes the inbox file (the client's `deletes` option). When false the
   * file, and its manifest entry, stay: only a transfer of that name in progress is dropped.
   * Default true.
   */
  readonly deletes?: boolean
  /** Whether the server sends the tree (TREE=1): directories and links are then mirrored, and replace what is in their way. */
  tree(): boolean
  /** The digest the server announces and the client verifies with: XXH128 once negotiated (FEATURES XXH128), else SHA-1. */
  digestAlgorithm(): DigestAlgorithm
  /** Whether files may come as deltas (DELTA=1 asked of a server that named DELTA). */
  delta?(): boolean
}

/** A file being received: its partial file (`name` keys every later chunk) and how far it got. */
interface Incoming extends PartialFile {
  readonly virtualPath: string
  /** Octets written so far: where the next chunk must start. */
  offset: number
  /** Size and digest announced on the final chunk, if they were. */
  finalSize: number | undefined
  finalDigest: string | undefined
  /** Fed with every octet of the file so far, a resumed prefix included, in the server's algorithm. */
  readonly hash: ContentHash
  lastProgress: number
  /** Octets of content received for it in this transfer (a delta's runs copied are not). */
  sent: number
}

/** The CHEEZBURGERs of one server, applied to the inbox. */
export class InboxWriter {
  private readonly files = new Map<string, Incoming>()
  /** Names whose current transfer was refused: their later chunks are dropped without a word. */
  private readonly refused = new Set<string>()
  /** Partial files offered to the server in this conversation, by name, ready to go on. */
  private readonly resumes = new Map<string, ResumePoint>()
  /** Consecutive mismatches per virtual path, to stop asking again after MAX_REASKS. */
  private readonly mismatches = new Map<string, number>()
  /** Bumped by closeAll(): work started in an earlier conversation installs nothing. */
  private epoch = 0
  /** Where names land in the inbox; a refused name is reported as a RefusedFileNameError. */
  private readonly placement: InboxPlacement
  private readonly partials: PartialFiles
  /** Directories, links and files made from content the inbox holds (TREE=1). */
  private readonly tree: TreeWriter

  constructor(private readonly host: WriterHost) {
    this.placement = new InboxPlacement(
      () => host.paths(),
      (name, reason, cause) => new RefusedFileNameError(name, reason, cause === undefined ? undefined : { cause }),
    )
    this.partials = new PartialFiles(host)
    this.tree = new TreeWriter(host, this.placement, this.partials)
  }

  /**
   * Applies one CHEEZBURGER. Never throws: every problem is reported through `host.error` and
   * affects only the file it concerns.
   *
   * @param creditLeft - octets of content the server was allowed to send before this chunk.
   */
  store(message: Cheezburger, creditLeft: number): void {
    try {
      if (message.operation === DELETE) this.remove(message.filename)
      else if (message.operation === CREATE) this.create(message, creditLeft)
      else if (message.operation === DIRECTORY || message.operation === SYMLINK || message.operation === ATTRIBUTES) this.tree.apply(message)
      else if (message.operation === DELTA) this.offered(message)
      else this.host.error(new InboxWriteError(message.filename, { cause: new Error(`unknown operation ${message.operation}`) }))
    } catch (error) {
      // Only a bug gets here; keep the transfer going all the same.
      this.host.error(asError(error, message.filename))
    }
  }

  /**
   * The server sent all it had (a SYNCED mark): a file deleted and renamed has come by now, so
   * the trash of deleted content is emptied.
   */
  synced(): void {
    try {
      this.tree.synced()
    } catch (error) {
      this.host.error(asError(error, '/'))
    }
  }

  /**
   * Closes the partial files of this conversation and forgets them. Those worth resuming stay
   * on disk for the next conversation; smaller ones are deleted.
   */
  async closeAll(): Promise<void> {
    this.epoch++
    const files = [...this.files.values()]
    this.files.clear()
    this.refused.clear()
    this.resumes.clear()
    for (const file of files) {
      closeQuietly(file.fd)
      if (!file.resumable) unlinkQuietly(file.tempPath)
    }
  }

  /** Whether this server has recorded partial files under a subscription (a cheap check). */
  hasPartials(subscription: string): boolean {
    const durable = this.host.durable()
    if (durable === undefined) return false
    return durable.partials.list(this.host.endpoint).some((row) => {
      const virtualPath = partialVirtualPath(row.name)
      return virtualPath !== undefined && covers(subscription, virtualPath)
    })
  }

  /**
   * The cache entries offering this server's partial files under a subscription
   * (`/virtual/path=SHA1@OFFSET`), each partial's prefix read back from disk and its hash state
   * kept for the transfer that continues it. Runs outside the machine: a partial that starts
   * being received meanwhile, or whose row went, is left out. A partial file that is gone or
   * unreadable loses its row quietly.
   */
  async prepareResumes(subscription: string): Promise<Map<string, string>> {
    const entries = new Map<string, string>()
    const durable = this.host.durable()
    if (durable === undefined) return entries
    const epoch = this.epoch
    const { endpoint } = this.host
    for (const row of durable.partials.list(endpoint)) {
      const virtualPath = partialVirtualPath(row.name)
      if (virtualPath === undefined) {
        durable.partials.remove(endpoint, row.name)
        continue
      }
      if (!covers(subscription, virtualPath) || this.files.has(row.name)) continue
      const algorithm = this.host.digestAlgorithm()
      const ready = this.resumes.get(row.name)
      // Prepared before the server named its digest: read again in the one it uses.
      if (ready !== undefined && ready.hash.algorithm === algorithm) {
        entries.set(virtualPath, ready.entry) // offered to an earlier subscription as well
        continue
      }
      let point: ResumePoint | undefined
      try {
        point = await hashPrefix(this.partials.tempPath(row.name), durable.stats, algorithm)
      } catch {
        if (epoch === this.epoch && !this.files.has(row.name)) durable.partials.remove(endpoint, row.name)
        continue
      }
      if (point === undefined) continue // less than a block: nothing to resume yet
      if (epoch !== this.epoch || this.files.has(row.name) || this.resumes.get(row.name)?.hash.algorithm === algorithm) continue
      if (!durable.partials.has(endpoint, row.name)) continue
      this.resumes.set(row.name, point)
      entries.set(virtualPath, point.entry)
    }
    return entries
  }

  /**
   * A changed file offered as a delta (DELTA=1): asked again with the signature of the version
   * the inbox holds, or whole when it holds none; nothing when it holds that very version.
   */
  private offered(message: Cheezburger): void {
    const { path, virtualPath } = this.placement.target(message.filename)
    const answer = answerOffer(path, virtualPath, message.headers, this.host.durable()?.manifest)
    if (answer.kind === 'delta') this.host.reask(virtualPath, answer.bits)
    else if (answer.kind === 'whole') this.host.reask(virtualPath)
  }

  /** Where a virtual path is in the inbox; undefined for a name the inbox may not hold. */
  inboxPath(virtualPath: string): string | undefined {
    try {
      return this.placement.target(virtualPath).path
    } catch {
      return undefined
    }
  }

  private create(message: Cheezburger, creditLeft: number): void {
    const { filename: name, chunk, offset } = message
    // A run of a delta (DELTA=1): empty, but not the end of the file.
    const run = chunk.length === 0 ? parseCopyRun(message.headers) : undefined
    // Both versions end a file with an empty chunk (v1 with eof 0, v2 with eof 1).
    const last = (chunk.length === 0 && run === undefined) || message.eof === 1
    let file = this.files.get(name)

    if (offset === 0n) {
      // Offset 0 starts the file over: whatever we had of it is stale.
      this.refused.delete(name)
      this.resumes.delete(name)
      if (file !== undefined) {
        this.discard(file)
        file = undefined
      }
    } else if (this.refused.has(name)) {
      if (last) this.refused.delete(name)
      return
    }

    try {
      if (chunk.length > creditLeft) throw new CreditOverrunError(name, chunk.length, creditLeft, 'credit')
      if (file === undefined) {
        if (offset === 0n) {
          file = this.begin(name, message.headers)
        } else {
          // Only the offset offered in this conversation continues a partial file.
          const resume = this.resumes.get(name)
          if (resume === undefined || offset !== BigInt(resume.offset)) throw new OutOfOrderChunkError(name, resume?.offset ?? 0, offset)
          this.resumes.delete(name)
          file = this.begin(name, message.headers, resume)
          const durable = this.host.durable()
          if (durable !== undefined) durable.stats.resumes++
        }
      } else if (offset !== BigInt(file.offset)) {
        throw new OutOfOrderChunkError(name, file.offset, offset)
      }
      if (file.size !== undefined && file.offset + chunk.length > file.size) {
        throw new CreditOverrunError(name, chunk.length, file.size - file.offset, 'size')
      }
      if (run !== undefined) {
        if (file.size !== undefined && file.offset + run.length > file.size) {
          throw new CreditOverrunError(name, run.length, file.size - file.offset, 'size')
        }
        // From the version the inbox holds, into the partial file of the new one.
        try {
          copyRun(this.placement.target(name).path, run, file.fd, file.offset, file.hash)
        } catch (error) {
          // The old version changed or went since its signature: the new one comes whole.
          this.discard(file)
          this.refused.add(name)
          this.host.error(new InboxWriteError(name, { cause: error }))
          this.host.reask(file.virtualPath)
          return
        }
        file.offset += run.length
        this.resumableNow(file, last)
      }
      if (chunk.length > 0) {
        writeAll(file.fd, chunk, file.offset)
        file.hash.update(chunk)
        chunkSpent(chunk.length)
        file.offset += chunk.length
        file.sent += chunk.length
        this.resumableNow(file, last)
        const now = Date.now()
        if (!last && now - file.lastProgress >= PROGRESS_INTERVAL_MS) {
          file.lastProgress = now
          this.host.progress({
            virtualPath: file.virtualPath,
            bytes: file.offset,
            ...(file.size === undefined ? {} : { size: file.size }),
          })
        }
      }
      if (last) {
        // A server that hashes while sending announces size and SHA-1 at the end.
        if (message.headers.size > 0) {
          const announced = parseFileHeaders(message.headers)
          file.finalSize = announced.size
          file.finalDigest = announcedDigest(announced, file.hash.algorithm)
        }
        this.finish(file)
      }
    } catch (error) {
      const current = this.files.get(name)
      const full = outOfSpace(error)
      if (current !== undefined) {
        // A full disk is no fault of the file: a partial worth resuming is kept for the retry.
        if (full !== undefined && current.resumable) this.keep(current)
        else this.discard(current)
      }
      if (!last) this.refused.add(name)
      if (full === undefined) {
        this.host.error(asError(error, name))
        return
      }
      const virtualPath = current?.virtualPath ?? inboxVirtualPath(name)
      this.host.error(new InboxFullError(virtualPath ?? name, full, { cause: error }))
      if (virtualPath !== undefined) this.host.retryLater(virtualPath)
    }
  }

  /** Opens the partial file of a transfer: empty, or cut back to the offset it resumes at. */
  private begin(name: string, headers: ReadonlyMap<string, string>, resume?: ResumePoint): Incoming {
    // The name is judged here (syntax, state folder); the folders on its way are walked once,
    // when the complete file is put in place: content only ever goes to the partial file first.
    const virtualPath = this.placement.target(name, false).virtualPath
    const tempPath = this.partials.tempPath(name)
    const announced = parseFileHeaders(headers)
    const { size, mtimeMs, mode } = announced
    const hash = resume?.hash ?? createContentHash(this.host.digestAlgorithm())
    // Created with the mode it will have (the umask permitting), which saves an fchmod.
    const fd =
      resume === undefined
        ? this.partials.open(tempPath, mode === undefined ? 0o600 : fileMode(mode))
        : this.partials.resume(name, tempPath, resume.offset)
    const file: Incoming = {
      name,
      virtualPath,
      tempPath,
      fd,
      offset: resume?.offset ?? 0,
      size,
      mtimeMs,
      mode,
      digest: announcedDigest(announced, hash.algorithm),
      finalSize: undefined,
      finalDigest: undefined,
      hash,
      resumable: false,
      // Throttled from the start: a small file is done before its first progress report.
      lastProgress: Date.now(),
      sent: 0,
    }
    this.files.set(name, file)
    // A resumed file keeps its row; a new one gets it once it holds a prefix worth resuming.
    if (file.offset >= RESUME_BLOCK) this.partials.markResumable(file)
    else this.partials.forget(name) // an earlier, bigger version of this name is gone
    return file
  }

  /**
   * Records the partial file for resuming once it holds a whole resume block and more is to
   * come: a file that arrives complete with this message (any file of one block or less) is
   * never recorded, which saves a database write per file.
   */
  private resumableNow(file: Incoming, last: boolean): void {
    if (file.resumable || last || file.offset < RESUME_BLOCK) return
    if (file.size !== undefined && file.offset >= file.size) return
    this.partials.markResumable(file)
  }

  private finish(file: Incoming): void {
    this.files.delete(file.name)
    const digest = file.hash.digest()
    const mismatch = checkReceived(file, digest)
    if (mismatch !== undefined) {
      // Never promoted: the partial file goes, and the file is asked for again from scratch.
      closeQuietly(file.fd)
      unlinkQuietly(file.tempPath)
      this.partials.forget(file.name)
      const attempts = (this.mismatches.get(file.virtualPath) ?? 0) + 1
      const retrying = attempts <= MAX_REASKS
      if (retrying) this.mismatches.set(file.virtualPath, attempts)
      else this.mismatches.delete(file.virtualPath)
      this.host.error(new DigestMismatchError(file.virtualPath, mismatch.expected, mismatch.actual, mismatch.check, retrying))
      if (retrying) this.host.reask(file.virtualPath)
      return
    }
    let finalPath: string
    let stats: Stats | undefined
    try {
      try {
        // On the open file, before it has its final name.
        if (file.mtimeMs !== undefined) futimesSync(file.fd, new Date(), mtimeSeconds(file.mtimeMs))
        stats = fstatSync(file.fd)
        // A mode change leaves size and mtime, all the manifest keeps of this stat.
        if (file.mode !== undefined && (stats.mode & 0o7777) !== mirroredMode(file.mode)) fchmodSync(file.fd, mirroredMode(file.mode))
      } finally {
        closeSync(file.fd)
      }
      const placed = this.placement.writable(file.name, () => {
        if (!this.host.tree()) {
          const path = this.placement.destination(file.name)
          return { path, moved: moveIntoPlace(file.tempPath, path, file.mtimeMs) }
        }
        // Mirroring the tree, whatever holds the name goes: the rename replaces a file or a link
        // by itself (a link is never followed), so the name is looked at only when a directory
        // is in the way, which the rename refuses. A system call fewer per file.
        const path = this.placement.parents(file.name)
        try {
          return { path, moved: moveIntoPlace(file.tempPath, path, file.mtimeMs) }
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EISDIR') throw error
          const cleared = this.placement.destination(file.name, true)
          return { path: cleared, moved: moveIntoPlace(file.tempPath, cleared, file.mtimeMs) }
        }
      })
      finalPath = placed.path
      // Copied across file systems: a new file, whose stat the manifest must take afresh.
      if (!placed.moved) stats = undefined
    } catch (error) {
      unlinkQuietly(file.tempPath)
      this.partials.forget(file.name)
      throw error
    }
    this.partials.forget(file.name)
    this.mismatches.delete(file.virtualPath)
    this.recordDelivered(file.virtualPath, finalPath, digest, stats)
    this.host.delivered({ virtualPath: file.virtualPath, path: finalPath, size: file.offset, sent: file.sent })
  }

  /**
   * The manifest learns the file as it now is on disk, with the digest taken on the way in:
   * the stat of the partial file once complete (the rename keeps size and mtime), else the
   * final name's.
   */
  private recordDelivered(virtualPath: string, finalPath: string, digest: string, stats: Stats | undefined): void {
    const manifest = this.host.durable()?.manifest
    if (manifest === undefined) return
    try {
      const { size, mtimeMs } = stats ?? lstatSync(finalPath)
      manifest.record({ path: virtualPath.slice(1), size, mtimeMs, digest })
    } catch {
      // Gone or replaced already: the next walk finds out and hashes what is there.
    }
  }

  private remove(name: string): void {
    const file = this.files.get(name)
    if (file !== undefined) this.discard(file)
    this.refused.delete(name)
    this.resumes.delete(name)
    try {
      const { path, virtualPath } = this.placement.target(name)
      this.mismatches.delete(virtualPath)
      // A partial file of a deleted file is not worth keeping.
      if (this.host.durable()?.partials.has(this.host.endpoint, name) === true) {
        unlinkQuietly(this.partials.tempPath(name))
        this.partials.forget(name)
      }
      // An add-only receiver keeps the file, so the manifest keeps describing it.
      if (this.host.deletes === false) return
      const relative = virtualPath.slice(1)
      const stats = lstatOrUndefinedSync(path)
      if (stats === undefined || (!stats.isFile() && !(stats.isDirectory() && this.host.tree()))) {
        this.host.durable()?.manifest.forget(relative)
        return
      }
      // Mirroring the tree, a directory goes with all under it (the server deleted each file
      // too), and content big enough waits in the trash in case it comes back renamed.
      this.placement.writable(name, () => {
        if (this.host.tree()) this.tree.discard(path, relative, stats.isDirectory())
        else unlinkSync(path)
      })
      this.host.durable()?.manifest.forget(relative)
      this.host.deleted({ virtualPath, path })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      // A link mirrored from the tree: the name itself goes (never what it points to).
      if (error instanceof RefusedFileNameError && this.host.tree() && this.host.deletes !== false && this.tree.removeLink(name)) return
      this.host.error(asError(error, name))
    }
  }

  /** Lets go of a transfer cut short but keeps its partial file, and its row, to resume. */
  private keep(file: Incoming): void {
    this.files.delete(file.name)
    this.partials.keep(file)
  }

  private discard(file: Incoming): void {
    this.files.delete(file.name)
    this.partials.discard(file)
  }
}

/** What the received file fails of what the server announced, first chunk or final. */
function checkReceived(
  file: Incoming,
  digest: string,
): { check: DigestCheck; expected: string; actual: string } | undefined {
  for (const size of [file.size, file.finalSize]) {
    if (size !== undefined && file.offset !== size) return { check: 'size', expected: String(size), actual: String(file.offset) }
  }
  for (const expected of [file.finalDigest, file.digest]) {
    if (expected !== undefined && digest !== expected) return { check: file.hash.algorithm, expected, actual: digest }
  }
  return undefined
}

function asError(error: unknown, name: string): Error {
  if (
    error instanceof InboxFullError ||
    error instanceof RefusedFileNameError ||
    error instanceof OutOfOrderChunkError ||
    error instanceof CreditOverrunError ||
    error instanceof InboxWriteError ||
    error instanceof DigestMismatchError
  ) {
    return error
  }
  return new InboxWriteError(name, { cause: error })
}
