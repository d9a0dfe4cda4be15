/**
 * Writing what one server sends into the inbox. File names are untrusted: every name goes
 * through the safe resolver (src/fs/inbox.ts) and is refused if it points into the client's
 * state directory. Content goes into a partial file under `<stateDir>/partial/`, written at
 * the expected offset only, and is renamed into place once the final, empty chunk arrives:
 * a file is never visible under its final name until it is complete, and a shorter new
 * version never keeps an old tail (both weak spots of the reference client).
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
 * partial file outlives the conversation (partials.ts); the next conversation offers it to the
 * server, and a first chunk at the offered offset continues it.
 *
 * @packageDocumentation
 */
import {
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  futimesSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { createHash, randomBytes, type Hash } from 'node:crypto'

import { sha1Hex } from '../fs/digest.js'
import { chunkSpent } from '../util/memory.js'
import { PathOutsideInboxError, UnsafeNameError } from '../fs/errors.js'
import { ensureParentDirsSync, inboxSegments, resolveInboxPath, resolveInboxPathSafelySync } from '../fs/inbox.js'
import { covers } from '../fs/vpath.js'
import { isPathInside } from '../fs/mounts.js'
import { HEADER, RESUME_BLOCK } from '../protocol/extensions.js'
import { ATTRIBUTES, CREATE, DELETE, DIRECTORY, SYMLINK, type Cheezburger } from '../protocol/generated/fmq_msg.js'
import { mirroredMode, placeDirectory, placeSymlink, removeEntry, setAttributes } from './tree-ops.js'
import { realStateDirSync } from './cache.js'
import type { DurableState } from './durable.js'
import {
  CreditOverrunError,
  DigestMismatchError,
  InboxFullError,
  InboxWriteError,
  MAX_REASKS,
  OutOfOrderChunkError,
  RefusedFileNameError,
} from './errors.js'
import type { DeletedEvent, DeliveredEvent, ProgressEvent } from './events.js'
import { PARTIAL_DIR } from './options.js'
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
  /** Asks the server again for one file (ICANHAZ with RESYNC=1 and ONCE=1). */
  reask(virtualPath: string): void
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
}

/** A file being received. */
interface Incoming {
  /** The name as the server sends it: the key of every later chunk. */
  readonly name: string
  readonly virtualPath: string
  readonly tempPath: string
  /** The partial file, open for writing. */
  readonly fd: number
  /** Octets written so far: where the next chunk must start. */
  offset: number
  readonly size: number | undefined
  readonly mtimeMs: number | undefined
  readonly mode: number | undefined
  /** The announced SHA-1 of the whole file (lower-case hex). */
  readonly sha1: string | undefined
  /** Size and SHA-1 announced on the final chunk, if they were. */
  finalSize: number | undefined
  finalSha1: string | undefined
  /** Fed with every octet of the file so far, a resumed prefix included. */
  readonly hash: Hash
  /** Recorded in `client_partials`: the partial file outlives the conversation. */
  resumable: boolean
  lastProgress: number
}

/** `realpath` of the inbox and of the state directory, for one pair of paths from the host. */
interface RealPaths {
  readonly inbox: string
  readonly stateDir: string
  readonly realInbox: string
  readonly realStateDir: string
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
  /** Resolved once per pair of paths (`setInbox` may change them), not once per file. */
  private real: RealPaths | undefined
  /** The partial directory known to exist; created again if it goes. */
  private partialDir: string | undefined

  constructor(private readonly host: WriterHost) {}

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
      else if (message.operation === DIRECTORY || message.operation === SYMLINK || message.operation === ATTRIBUTES) this.treeEntry(message)
      else this.host.error(new InboxWriteError(message.filename, { cause: new Error(`unknown operation ${message.operation}`) }))
    } catch (error) {
      // Only a bug gets here; keep the transfer going all the same.
      this.host.error(asError(error, message.filename))
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
      const ready = this.resumes.get(row.name)
      if (ready !== undefined) {
        entries.set(virtualPath, ready.entry) // offered to an earlier subscription as well
        continue
      }
      let point: ResumePoint | undefined
      try {
        point = await hashPrefix(this.tempPath(row.name), durable.stats)
      } catch {
        if (epoch === this.epoch && !this.files.has(row.name)) durable.partials.remove(endpoint, row.name)
        continue
      }
      if (point === undefined) continue // less than a block: nothing to resume yet
      if (epoch !== this.epoch || this.files.has(row.name) || this.resumes.has(row.name)) continue
      if (!durable.partials.has(endpoint, row.name)) continue
      this.resumes.set(row.name, point)
      entries.set(virtualPath, point.entry)
    }
    return entries
  }

  private create(message: Cheezburger, creditLeft: number): void {
    const { filename: name, chunk, offset } = message
    // Both versions end a file with an empty chunk (v1 with eof 0, v2 with eof 1).
    const last = chunk.length === 0 || message.eof === 1
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
        }
      } else if (offset !== BigInt(file.offset)) {
        throw new OutOfOrderChunkError(name, file.offset, offset)
      }
      if (file.size !== undefined && file.offset + chunk.length > file.size) {
        throw new CreditOverrunError(name, chunk.length, file.size - file.offset, 'size')
      }
      if (chunk.length > 0) {
        writeAll(file.fd, chunk, file.offset)
        file.hash.update(chunk)
        chunkSpent(chunk.length)
        file.offset += chunk.length
        if (!file.resumable && file.offset >= RESUME_BLOCK) this.markResumable(file)
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
          file.finalSize = header(message.headers, HEADER.SIZE, DECIMAL)
          file.finalSha1 = sha1Header(message.headers)
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
      const virtualPath = current?.virtualPath ?? virtualPathOf(name)
      this.host.error(new InboxFullError(virtualPath ?? name, full, { cause: error }))
      if (virtualPath !== undefined) this.host.retryLater(virtualPath)
    }
  }

  /** Opens the partial file of a transfer: empty, or cut back to the offset it resumes at. */
  private begin(name: string, headers: ReadonlyMap<string, string>, resume?: ResumePoint): Incoming {
    // The name is judged here (syntax, state folder); the folders on its way are walked once,
    // when the complete file is put in place: content only ever goes to the partial file first.
    const virtualPath = this.target(name, false).virtualPath
    const tempPath = this.tempPath(name)
    const mode = header(headers, HEADER.MODE, OCTAL)
    let fd: number
    if (resume === undefined) {
      // Created with the mode it will have (the umask permitting), which saves an fchmod.
      fd = this.openPartial(tempPath, mode === undefined ? 0o600 : fileMode(mode))
    } else {
      try {
        fd = openSync(tempPath, 'r+')
        try {
          // Longer is fine (cut back); shorter would be a hole the kept hash knows nothing of.
          if (fstatSync(fd).size < resume.offset) throw new Error(`the partial file is shorter than the resume offset ${resume.offset}`)
          ftruncateSync(fd, resume.offset)
        } catch (error) {
          closeQuietly(fd)
          throw error
        }
      } catch (error) {
        unlinkQuietly(tempPath)
        this.forgetPartial(name)
        throw new InboxWriteError(name, { cause: error })
      }
    }
    const file: Incoming = {
      name,
      virtualPath,
      tempPath,
      fd,
      offset: resume?.offset ?? 0,
      size: header(headers, HEADER.SIZE, DECIMAL),
      mtimeMs: header(headers, HEADER.MTIME, DECIMAL),
      mode,
      sha1: sha1Header(headers),
      finalSize: undefined,
      finalSha1: undefined,
      hash: resume?.hash ?? createHash('sha1'),
      resumable: false,
      // Throttled from the start: a small file is done before its first progress report.
      lastProgress: Date.now(),
    }
    this.files.set(name, file)
    if ((file.size ?? file.offset) >= RESUME_BLOCK) this.markResumable(file)
    else this.forgetPartial(name) // an earlier, bigger version of this name is gone
    return file
  }

  /** A new, empty partial file; the partial directory is made on first use, and again if it went. */
  private openPartial(tempPath: string, mode: number): number {
    const dir = join(this.host.paths().stateDir, PARTIAL_DIR)
    if (this.partialDir !== dir) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      this.partialDir = dir
    }
    try {
      return openSync(tempPath, 'w', mode)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      return openSync(tempPath, 'w', mode)
    }
  }

  private finish(file: Incoming): void {
    this.files.delete(file.name)
    const digest = file.hash.digest('hex')
    const mismatch = checkReceived(file, digest)
    if (mismatch !== undefined) {
      // Never promoted: the partial file goes, and the file is asked for again from scratch.
      closeQuietly(file.fd)
      unlinkQuietly(file.tempPath)
      this.forgetPartial(file.name)
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
        if (file.mtimeMs !== undefined) futimesSync(file.fd, new Date(), new Date(file.mtimeMs))
        stats = fstatSync(file.fd)
        // A mode change leaves size and mtime, all the manifest keeps of this stat.
        if (file.mode !== undefined && (stats.mode & 0o7777) !== mirroredMode(file.mode)) fchmodSync(file.fd, mirroredMode(file.mode))
      } finally {
        closeSync(file.fd)
      }
      finalPath = this.destination(file.name)
      // Copied across file systems: a new file, whose stat the manifest must take afresh.
      if (!moveIntoPlace(file.tempPath, finalPath, file.mtimeMs)) stats = undefined
    } catch (error) {
      unlinkQuietly(file.tempPath)
      this.forgetPartial(file.name)
      throw error
    }
    this.forgetPartial(file.name)
    this.mismatches.delete(file.virtualPath)
    this.recordDelivered(file.virtualPath, finalPath, digest, stats)
    this.host.delivered({ virtualPath: file.virtualPath, path: finalPath, size: file.offset })
  }

  /**
   * The manifest learns the file as it now is on disk, with the digest taken on the way in:
   * the stat of the partial file once complete (the rename keeps size and mtime), else the
   * final name's.
   */
  private recordDelivered(virtualPath: string, finalPath: string, sha1: string, stats: Stats | undefined): void {
    const manifest = this.host.durable()?.manifest
    if (manifest === undefined) return
    try {
      const { size, mtimeMs } = stats ?? lstatSync(finalPath)
      manifest.record({ path: virtualPath.slice(1), size, mtimeMs, sha1 })
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
      const { path, virtualPath } = this.target(name)
      this.mismatches.delete(virtualPath)
      // A partial file of a deleted file is not worth keeping.
      if (this.host.durable()?.partials.has(this.host.endpoint, name) === true) {
        unlinkQuietly(this.tempPath(name))
        this.forgetPartial(name)
      }
      // An add-only receiver keeps the file, so the manifest keeps describing it.
      if (this.host.deletes === false) return
      this.host.durable()?.manifest.forget(virtualPath.slice(1))
      const stats = lstatOrUndefined(path)
      if (stats === undefined) return
      if (!stats.isFile()) {
        // A directory mirrored from the tree goes with all under it (the server deleted each file too).
        if (stats.isDirectory() && this.host.tree()) {
          removeEntry(path)
          this.host.deleted({ virtualPath, path })
        }
        return
      }
      unlinkSync(path)
      this.host.deleted({ virtualPath, path })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      // A directory or a link mirrored from the tree: the name itself goes (never what a link points to).
      if (error instanceof RefusedFileNameError && this.host.tree() && this.host.deletes !== false) {
        const removed = this.removeNode(name)
        if (removed) return
      }
      this.host.error(asError(error, name))
    }
  }

  /** Removes a link or directory the server deleted (TREE=1); false when the name is not one the inbox may hold. */
  private removeNode(name: string): boolean {
    try {
      const path = this.placeFor(name)
      const what = removeEntry(path)
      if (what !== undefined) this.host.deleted({ virtualPath: this.target(name, false).virtualPath, path })
      return true
    } catch {
      return false
    }
  }

  /**
   * A directory, a symbolic link, or new attributes of a file (TREE=1). A file whose content is
   * not the one announced (the manifest says what each file holds) is asked for again.
   */
  private treeEntry(message: Cheezburger): void {
    const name = message.filename
    const headers = message.headers
    const mode = header(headers, HEADER.MODE, OCTAL)
    const mtimeMs = header(headers, HEADER.MTIME, DECIMAL)
    const path = this.placeFor(name)
    const virtualPath = this.target(name, false).virtualPath
    if (message.operation === DIRECTORY) {
      placeDirectory(path, mode ?? 0o755)
      return
    }
    if (message.operation === SYMLINK) {
      const target = headers.get(HEADER.TARGET)
      if (target === undefined || target === '' || target.includes('\0')) {
        this.host.error(new InboxWriteError(name, { cause: new Error('a symbolic link without a target') }))
        return
      }
      placeSymlink(path, target, mtimeMs)
      this.host.durable()?.manifest.forget(virtualPath.slice(1))
      return
    }
    // ATTRIBUTES: only on the very content announced, else the file comes again.
    const manifest = this.host.durable()?.manifest
    const held = manifest?.get(virtualPath.slice(1))
    const stats = lstatOrUndefined(path)
    const sha1 = sha1Header(headers)
    const size = header(headers, HEADER.SIZE, DECIMAL)
    if (stats?.isFile() !== true || held === undefined || held.sha1 !== sha1 || held.size !== stats.size || held.mtimeMs !== stats.mtimeMs || size !== stats.size) {
      this.host.reask(virtualPath)
      return
    }
    setAttributes(path, mode, mtimeMs)
    manifest!.record({ path: held.path, size: held.size, mtimeMs: lstatSync(path).mtimeMs, sha1: held.sha1 })
  }

  /**
   * Where a name of the tree goes: its parents made or checked one by one (none may be a
   * link); the name itself may hold anything, which the caller replaces.
   */
  private placeFor(name: string): string {
    const { path } = this.target(name, false)
    try {
      return ensureParentDirsSync(this.host.paths().inbox, path, this.realPaths().realInbox)
    } catch (error) {
      if (error instanceof PathOutsideInboxError) throw new RefusedFileNameError(name, 'outside-inbox', { cause: error })
      throw error
    }
  }

  /**
   * Where a complete file goes, checked again at the end (a directory on the way may have
   * changed since the first chunk): the parents are made or checked one by one, and whatever
   * holds the name now must be neither a symbolic link nor a directory.
   */
  private destination(name: string): string {
    const { path } = this.target(name, false)
    let finalPath: string
    try {
      finalPath = ensureParentDirsSync(this.host.paths().inbox, path, this.realPaths().realInbox)
    } catch (error) {
      if (error instanceof PathOutsideInboxError) throw new RefusedFileNameError(name, 'outside-inbox', { cause: error })
      throw error
    }
    const existing = lstatOrUndefined(finalPath)
    // Mirroring the tree, a file replaces the link or directory that held its name at the source.
    if (this.host.tree() && (existing?.isSymbolicLink() || existing?.isDirectory())) {
      removeEntry(finalPath)
      return finalPath
    }
    if (existing?.isSymbolicLink()) {
      const root = this.realPaths().realInbox
      const cause = new PathOutsideInboxError(finalPath, root, `${finalPath} is a symbolic link inside the inbox ${root}`)
      throw new RefusedFileNameError(name, 'outside-inbox', { cause })
    }
    if (existing?.isDirectory()) {
      throw Object.assign(new Error(`EISDIR: a directory is in the way at ${finalPath}`), { code: 'EISDIR', path: finalPath })
    }
    return finalPath
  }

  /**
   * Where a server's name lands in the inbox, or RefusedFileNameError. `physical`: every
   * component that exists is checked with lstat (symbolic links refused); else the name is only
   * checked lexically, for a caller that checks the components itself.
   */
  private target(name: string, physical = true): { path: string; virtualPath: string } {
    let path: string
    let virtualPath: string
    let real: RealPaths
    try {
      virtualPath = '/' + inboxSegments(name).join('/')
      real = this.realPaths()
      path = physical ? resolveInboxPathSafelySync(real.inbox, name, real.realInbox) : resolveInboxPath(real.realInbox, name)
    } catch (error) {
      if (error instanceof UnsafeNameError) throw new RefusedFileNameError(name, 'unsafe', { cause: error })
      if (error instanceof PathOutsideInboxError) throw new RefusedFileNameError(name, 'outside-inbox', { cause: error })
      throw error
    }
    if (path === real.realStateDir || isPathInside(real.realStateDir, path)) throw new RefusedFileNameError(name, 'state-dir')
    return { path, virtualPath }
  }

  /** The real paths of the inbox and state directory, resolved again only when they change. */
  private realPaths(): RealPaths {
    const { inbox, stateDir } = this.host.paths()
    const known = this.real
    if (known !== undefined && known.inbox === inbox && known.stateDir === stateDir) return known
    const resolved = realStateDirSync(inbox, stateDir)
    this.real = { inbox, stateDir, realInbox: resolved.inbox, realStateDir: resolved.stateDir }
    return this.real
  }

  /** One partial file per server and name; the name is hashed so no server text reaches the path. */
  private tempPath(name: string): string {
    return join(this.host.paths().stateDir, PARTIAL_DIR, `${sha1Hex(`${this.host.endpoint}\n${name}`)}.part`)
  }

  private markResumable(file: Incoming): void {
    file.resumable = true
    try {
      this.host.durable()?.partials.record({
        endpoint: this.host.endpoint,
        name: file.name,
        temp: file.tempPath,
        size: file.size,
        mtimeMs: file.mtimeMs,
        mode: file.mode,
        sha1: file.sha1,
      })
    } catch (error) {
      // Not recorded: this file cannot be resumed, it is received all the same.
      file.resumable = false
      this.host.error(new InboxWriteError(file.name, { cause: error }))
    }
  }

  private forgetPartial(name: string): void {
    try {
      this.host.durable()?.partials.remove(this.host.endpoint, name)
    } catch (error) {
      this.host.error(new InboxWriteError(name, { cause: error }))
    }
  }

  /** Lets go of a transfer cut short but keeps its partial file, and its row, to resume. */
  private keep(file: Incoming): void {
    this.files.delete(file.name)
    closeQuietly(file.fd)
  }

  private discard(file: Incoming): void {
    this.files.delete(file.name)
    closeQuietly(file.fd)
    unlinkQuietly(file.tempPath)
    if (file.resumable) this.forgetPartial(file.name)
  }
}

/** What the received file fails of what the server announced, first chunk or final. */
function checkReceived(
  file: Incoming,
  digest: string,
): { check: 'size' | 'sha1'; expected: string; actual: string } | undefined {
  for (const size of [file.size, file.finalSize]) {
    if (size !== undefined && file.offset !== size) return { check: 'size', expected: String(size), actual: String(file.offset) }
  }
  for (const sha1 of [file.finalSha1, file.sha1]) {
    if (sha1 !== undefined && digest !== sha1) return { check: 'sha1', expected: sha1, actual: digest }
  }
  return undefined
}

/**
 * Renames the complete file over its final name, atomically when both are on one file system;
 * false when it had to be copied instead (its mtime is set again on the copy).
 */
function moveIntoPlace(tempPath: string, finalPath: string, mtimeMs: number | undefined): boolean {
  try {
    renameSync(tempPath, finalPath)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error
  }
  // State directory on another file system: copy next to the target, then rename there.
  const sibling = join(dirname(finalPath), `.${basename(finalPath)}.${randomBytes(6).toString('hex')}.fmq-tmp`)
  copyFileSync(tempPath, sibling, constants.COPYFILE_EXCL)
  try {
    // The copy keeps the mode but not the mtime.
    if (mtimeMs !== undefined) utimesSync(sibling, new Date(), new Date(mtimeMs))
    renameSync(sibling, finalPath)
  } catch (renameError) {
    unlinkQuietly(sibling)
    throw renameError
  }
  unlinkQuietly(tempPath)
  return false
}

/**
 * The permission bits a file of an announced mode gets: the owner keeps read and write, so a
 * later version can always replace it; no set-id or sticky bits from a server.
 */
function fileMode(mode: number): number {
  return (mode & 0o777) | 0o600
}

function writeAll(fd: number, chunk: Buffer, position: number): void {
  let written = 0
  while (written < chunk.length) {
    written += writeSync(fd, chunk, written, chunk.length - written, position + written)
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // closed already
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // gone already
  }
}

const DECIMAL = { pattern: /^[0-9]{1,15}$/, radix: 10 }
// Unix modes travel in octal ("644", "0644", "100644" with the file-type bits).
const OCTAL = { pattern: /^(?:0o)?[0-7]{1,7}$/, radix: 8 }
const SHA1 = /^[0-9a-f]{40}$/

function header(headers: ReadonlyMap<string, string>, name: string, format: typeof DECIMAL): number | undefined {
  const value = headers.get(name)
  if (value === undefined || !format.pattern.test(value)) return undefined
  return Number.parseInt(value.replace(/^0o/, ''), format.radix)
}

/** The `sha1` header in lower-case hex; undefined when absent or malformed. */
function sha1Header(headers: ReadonlyMap<string, string>): string | undefined {
  const sha1 = headers.get(HEADER.SHA1)?.toLowerCase()
  return sha1 !== undefined && SHA1.test(sha1) ? sha1 : undefined
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw error
  }
}

/** ENOSPC or EDQUOT when `error` (or its cause) says the disk is full, else undefined. */
function outOfSpace(error: unknown): 'ENOSPC' | 'EDQUOT' | undefined {
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code
    if (code === 'ENOSPC' || code === 'EDQUOT') return code
  }
  return undefined
}

function virtualPathOf(name: string): string | undefined {
  try {
    return '/' + inboxSegments(name).join('/')
  } catch {
    return undefined
  }
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
