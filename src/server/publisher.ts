/**
 * What the server publishes: the mount table, an in-memory table of every published
 * file (virtual path → physical file and its stat), kept current by one tree watcher
 * per mount (src/fs/watcher.ts: a watch per directory), and the durable index of their digests (file-index.ts). A file is
 * announced once it is stable: unchanged for the settle time, so a file still being
 * written is not shipped half done. Once a mount is scanned, every file the index does not
 * know in its current version is hashed in the background, so digests are usually ready
 * when a client first asks.
 */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { lstat, open, readlink, realpath, stat } from 'node:fs/promises'
import { basename, relative, sep } from 'node:path'
import { compilePublishFilter, type PublishFilter } from '../fs/filter.js'
import { type Mount, MountTable } from '../fs/mounts.js'
import { isDenied, scanFolders, type ScanOptions, unreadable } from '../fs/scan.js'
import { type BlockDigests, type DigestAlgorithm, hashFileWithBlocks } from '../fs/digest.js'
import { isPortableLink, portableLinkName, readPortableLink } from '../fs/links.js'
import { covers } from '../fs/vpath.js'
import { REFER_MIN } from '../protocol/extensions.js'
import { CopyProbes } from './copy-probe.js'
import { LikelyHeld } from './likely-held.js'
import { SkipLog, type SkippedEntry } from './skips.js'
import { TreeWatcher } from '../fs/watcher.js'
import { SettleTimes } from './settle.js'
import { DEFAULT_RESCAN_MS, DEGRADED_RESCAN_MS, findMissed, type PublishedState, RescanScheduler } from './rescan.js'
import { type Deletion, type FileDigest, FileIndex, type FileStat } from './file-index.js'

import { type FolderListing, FolderSums } from './folder-sums.js'
export type { Deletion, FileDigest } from './file-index.js'
export type { SkippedEntry } from './skips.js'

/** One published file. */
export interface PublishedFile {
  readonly virtualPath: string
  /** The file whose content is sent (the target of a portable link). */
  readonly physicalPath: string
  readonly size: number
  readonly mtimeMs: number
  /** Inode of the content: with size and mtime, what tells one version of the file from another. */
  readonly ino: number
  readonly mode: number
}

/**
 * A directory or a symbolic link of a published tree: sent only to clients that mirror the
 * tree (ICANHAZ option TREE=1), never hashed or indexed.
 */
export interface PublishedNode {
  readonly virtualPath: string
  readonly kind: 'dir' | 'link'
  /** Permission bits. */
  readonly mode: number
  readonly mtimeMs: number
  /** A link's text, as readlink gives it. */
  readonly target?: string
}

export interface PublisherEvents {
  /** A file appeared or changed and is now stable; `replaced`: it was published before (a new version, not a new file). */
  changed: [file: PublishedFile, replaced: boolean]
  /** A published file, directory or link disappeared (for a directory: only the directory itself). */
  removed: [virtualPath: string, kind: 'file' | 'node']
  /** A directory or link appeared, or its mode or link text changed. */
  node: [node: PublishedNode]
  /** Only the mode of a published file changed: its content, size and mtime did not. */
  attributes: [file: PublishedFile]
  /** An entry is left out because it cannot be published (see {@link SkippedEntry}). */
  skipped: [entry: SkippedEntry]
  /** A mount could not be scanned or watched, or the index could not be written. */
  error: [error: Error]
  /** A line for the log: a rescan and why, a watch limit reached. */
  log: [level: 'info' | 'warn', text: string]
}

export interface PublisherOptions {
  /** Milliseconds a file must stay unchanged before it is shipped. */
  settle: number
  /** Follow symbolic links and portable links that leave the mount. */
  followOutside: boolean
  /** Watch each mount after its scan (default true); off, a mount is what its scan found. */
  watch?: boolean
  /** The durable index of digests; without one, an in-memory index is made at the first publish. */
  index?: FileIndex
  /** Files hashed at once in the background (default 2). */
  hashConcurrency?: number
  /**
   * Globs of files not to publish, matched against the path relative to each mount (see
   * `compilePublishFilter`: rsync-like, a pattern without `/` matches the basename at any
   * depth). A file left out is never announced, indexed or sent.
   */
  exclude?: readonly string[]
  /** Globs of files published even when an exclude pattern matches them: includes win. */
  include?: readonly string[]
  /**
   * Milliseconds between reconciling rescans of every mount (default an hour), which find what
   * the watcher missed; every 10 s (or this, if shorter) while some folders are not watched.
   * Rescans on doubt (a burst of events, a folder replaced, the root gone) come besides.
   */
  rescan?: number
  /**
   * Milliseconds between rescans when mounts are polled instead of watched: for file systems
   * whose changes inotify does not see (NFS, SMB, FUSE). Default: watched.
   */
  poll?: number
}

/** The file changed while it was being hashed: its digest is unknown until it settles. */
export class FileChangedError extends Error {
  override readonly name = 'FileChangedError'
  readonly code = 'ERR_FMQ_FILE_CHANGED'
  constructor(readonly virtualPath: string) {
    super(`${virtualPath} changed while it was being hashed`)
  }
}

/**
 * A node's state directory (database, partial files), as the client names it: never
 * published, wherever it is, so a relay does not serve its own inbox/.fmq.
 */
const STATE_DIR = '.fmq'
const SCAN_EXCLUDE = [`**/${STATE_DIR}`, `**/${STATE_DIR}/**`]

/** Failures that only mean "not now": the watcher announces the file again if it comes back. */
const TRANSIENT = new Set(['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ERR_FMQ_FILE_CHANGED', 'ABORT_ERR'])

/** Whether someone waits for a hash (it then never pauses), and how to wake it if it did. */
interface Urgency {
  value: boolean
  wake?: () => void
}


/** Milliseconds without a transfer before background hashing resumes. */
const HASH_RESUME_MS = 100
/** Milliseconds after a publish before background hashing starts (sooner if a transfer comes and goes). */
const HASH_START_MS = 500

const sameStat = (a: FileStat, b: FileStat): boolean => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino


/**
 * The published files of a server.
 *
 * @example
 * ```ts
 * const publisher = new Publisher({ settle: 50, followOutside: false, index: FileIndex.open(stateDir) })
 * await publisher.publish('/srv/photos', '/photos')
 * await publisher.whenIndexed() // every file hashed, or known from a previous run
 * const { sha1 } = await publisher.digest(publisher.get('/photos/a.jpg')!)
 * ```
 */
export class Publisher extends EventEmitter<PublisherEvents> {
  readonly mounts = new MountTable()
  /** Octets read and files hashed, by this process: zero on a restart over an unchanged tree. */
  readonly stats = { bytesHashed: 0, filesHashed: 0, rescans: 0 }
  private readonly files = new Map<string, PublishedFile>()
  /** When a client may hold a file's content already (touched, renamed, copied). */
  private readonly likely = new LikelyHeld()
  /** The starts of files that share a size, compared before either is hashed for the copy check. */
  private readonly probes = new CopyProbes(REFER_MIN, (virtualPath) => this.files.get(virtualPath))
  /** Directories and symbolic links, by virtual path (mount roots excluded). */
  private readonly nodes = new Map<string, PublishedNode>()
  /** The sum of each published folder, made when a resync in sums asks (SUMS), until anything changes. */
  private readonly sums = new FolderSums()
  /**
   * Files and nodes published below each folder (virtual path, the root aside): what tells a
   * removal of one path from that of a tree. Counted at the first removal, not at the scan.
   */
  private contents: Map<string, number> | undefined
  /** Digests being computed, one per path: callers asking for the same version share it. */
  private readonly hashing = new Map<string, { stat: FileStat; urgent: Urgency; digest: Promise<FileDigest> }>()
  private readonly watchers: TreeWatcher[] = []
  /** Reconciling rescans: on the watchers' doubts and periodically (src/server/rescan.ts). */
  private readonly rescans: RescanScheduler
  private readonly settling = new Map<string, NodeJS.Timeout>()
  /** How long each path waits for quiet: longer for a file still being written (settle.ts). */
  private readonly settleTimes: SettleTimes
  /** Entries that cannot be published, each reported once. */
  private readonly skips = new SkipLog(
    (entry) => this.emit('skipped', entry),
    () => !this.abort.signal.aborted,
  )
  private fileIndex: FileIndex | undefined
  private ownsIndex = false
  /** Files to hash in the background, oldest first from `backlogHead`. */
  private backlog: PublishedFile[] = []
  private backlogHead = 0
  private readonly running = new Set<Promise<unknown>>()
  private idle: Array<() => void> = []
  private readonly abort = new AbortController()
  private readonly hashConcurrency: number
  /** Versions being hashed by the transfer that sends them (see `leadHash`). */
  private readonly sendHashing = new Map<string, FileStat>()
  /** Transfers under way (see `sending`). */
  private transfers = 0
  private resuming: NodeJS.Timeout | undefined
  /** Background hashes waiting for transfers to pause. */
  private paused: Array<() => void> = []
  /** Whether a file is published, by its path relative to its mount: the include and exclude globs. */
  private readonly publishes: PublishFilter

  constructor(private readonly options: PublisherOptions) {
    super()
    this.fileIndex = options.index
    this.hashConcurrency = Math.max(1, options.hashConcurrency ?? 2)
    this.settleTimes = new SettleTimes(options.settle)
    // Compiled once, so a bad pattern fails the constructor rather than the first scan.
    this.publishes = compilePublishFilter({ exclude: options.exclude ?? [], include: options.include ?? [] })
    this.rescans = new RescanScheduler(
      {
        rescan: (mount, under) => this.rescan(mount, under),
        mounts: () => this.mounts,
        retryWatches: async () => {
          if (this.options.poll !== undefined) return false // polled: nothing is watched, on purpose
          for (const watcher of this.watchers) await watcher.retry()
          return this.watchers.some((watcher) => watcher.degraded)
        },
        log: (level, text) => this.emit('log', level, text),
        error: (error) => this.emit('error', error),
      },
      options.poll ?? options.rescan ?? DEFAULT_RESCAN_MS,
      options.poll !== undefined,
    )
  }

  /** The digest index in use (an in-memory one if none was given before the first publish). */
  get index(): FileIndex {
    if (this.fileIndex === undefined) {
      this.fileIndex = FileIndex.open(':memory:', { onError: (error) => this.emit('error', error) })
      this.ownsIndex = true
    }
    return this.fileIndex
  }

  /** Uses a durable index; only before the first publish. The caller keeps closing it. */
  useIndex(index: FileIndex): void {
    if (this.fileIndex !== undefined) throw new Error('the publisher already has an index')
    this.fileIndex = index
  }

  /**
   * Publishes a directory under a virtual path: watches it and scans it; then, in the
   * background, logs as deleted what the index knew there and the scan did not find, and
   * hashes whatever the index does not know. Resolves once the scan is done, without waiting
   * for the index ({@link Publisher.whenIndexed}).
   */
  async publish(location: string, virtualPath: string): Promise<Mount> {
    const info = await stat(location)
    if (!info.isDirectory()) throw Object.assign(new Error(`${location} is not a directory`), { code: 'ENOTDIR' })
    void this.index // the index in use from the first publish on: useIndex() comes before
    const mount = this.mounts.add(location, virtualPath)
    // Watched before the scan: a file written while the scan runs is seen by one or the other.
    if (this.options.watch !== false) await this.watch(mount)
    const found: PublishedFile[] = []
    for await (const folder of scanFolders(mount.location, {
      ...this.scanOptions(mount),
      // In code point order: the published files then list in the order resyncs in parts judge them.
      sorted: true,
      onNode: (node) => {
        this.recordNode(mount, node.relativePath, node)
      },
    })) {
      for (const entry of folder) {
        // The same string when the file is its own content, where the mount puts it (no link).
        const file = this.record(mount, entry.relativePath, entry.contentPath, entry, entry.contentPath === entry.physicalPath)
        if (file !== undefined) found.push(file)
      }
    }
    // The index is compared with the scan a moment after it (when the background hashing
    // would start), its rows read a page at a time between other work: a client that asks
    // nothing of it (a quick resync) is served first, and a run over by then never reads it.
    const indexing = this.indexScanned(mount, found).catch((error: Error) => {
      if (error.name !== 'AbortError') this.emit('error', error)
    })
    this.running.add(indexing)
    // The folders summed once the scan is done, for the first client whose cache sums them (SUMS).
    setImmediate(() => {
      if (!this.abort.signal.aborted) this.folders()
    })
    void indexing.finally(() => {
      this.running.delete(indexing)
      this.pump()
    })
    return mount
  }

  /**
   * After a scan: what the index knows of the files found (those it does not know are hashed
   * in the background) and of the files it held that were not found ({@link reconcile}).
   */
  private async indexScanned(mount: Mount, found: readonly PublishedFile[]): Promise<void> {
    const index = this.index
    await sleep(HASH_START_MS, undefined, { signal: this.abort.signal, ref: false })
    await index.loadInBackground(this.abort.signal)
    this.reconcile(mount, new Set(found.map((file) => file.virtualPath)))
    // Not at once: a client connecting now gets its files first (each hashed as it is sent),
    // rather than a core spent hashing what it is about to be sent anyway. A file changed
    // since the scan is queued by its own event.
    for (const file of found) if (this.files.get(file.virtualPath) === file && !index.known(file.virtualPath, file)) this.backlog.push(file)
    if (this.transfers === 0) this.resume()
  }

  /** Watches a mount, with rescans for what the events miss (or, polled, rescans alone). */
  private async watch(mount: Mount): Promise<void> {
    const watcher = new TreeWatcher(mount.location, { ignored: (path) => path.split('/').includes(STATE_DIR) })
    watcher.on('touched', (path) => this.touched(mount, path))
    watcher.on('error', (error) => this.emit('error', error))
    watcher.on('unreadable', (path, error) => this.skips.denied(mount, this.relative(mount, path), error, true))
    watcher.on('doubt', (dir, reason) => {
      const under = this.relative(mount, dir)
      this.rescans.request(mount, under === '..' || under.startsWith('../') ? '' : under, reason)
    })
    watcher.on('limit', (error) => {
      this.emit('log', 'warn', `${error.message}; the folders left unwatched are rescanned every ${Math.min(this.options.rescan ?? DEFAULT_RESCAN_MS, DEGRADED_RESCAN_MS) / 1000} s meanwhile`)
      this.rescans.soon()
    })
    this.watchers.push(watcher)
    this.rescans.start()
    // Polled: the rescans alone find the changes (the watcher, never started, watches nothing).
    if (this.options.poll === undefined) await watcher.watch()
  }

  /** How a mount is walked, by its first scan in `publish` and by its rescans. */
  private scanOptions(mount: Mount): ScanOptions {
    return {
      followSymlinks: this.options.followOutside,
      allowLinksOutside: this.options.followOutside,
      exclude: SCAN_EXCLUDE,
      publish: this.publishes,
      signal: this.abort.signal,
      onSkip: (skipped) => this.skips.fromScan(mount, skipped),
    }
  }

  /**
   * Rescans a folder of a mount (relative, `/`-separated; `''` for all of it): what differs
   * from what is published goes the way of a watcher's event. Resolves to how many entries differed.
   */
  private rescan(mount: Mount, under: string): Promise<number> {
    this.stats.rescans++
    const state: PublishedState = {
      file: (virtualPath) => this.files.get(virtualPath),
      node: (virtualPath) => this.nodes.get(virtualPath),
      owns: (owner, virtualPath) => this.mounts.owner(virtualPath) === owner,
      holdsBack: (virtualPath) => this.skips.holdsBack(virtualPath),
      publishedUnder: (owner, virtualPath) => this.publishedUnder(owner, virtualPath),
    }
    return findMissed(mount, under, this.scanOptions(mount), state, (path) => this.touched(mount, path))
  }

  /** Virtual paths of the files, folders and links a mount publishes under a virtual path. */
  private *publishedUnder(mount: Mount, virtualPath: string): Iterable<string> {
    for (const table of [this.files, this.nodes] as const) {
      for (const path of table.keys()) if (covers(virtualPath, path) && this.mounts.owner(path) === mount) yield path
    }
  }

  /** Resolves once no rescan is waiting or running. */
  whenRescanned(): Promise<void> {
    return this.rescans.idle()
  }

  /**
   * Rescans every mount now (as the periodic rescan does): what the watcher missed is
   * published. Resolves once done. For file systems whose changes inotify does not see
   * (network shares), or after the caller knows events were lost.
   */
  rescanNow(reason = 'asked for'): Promise<void> {
    for (const mount of this.mounts) this.rescans.request(mount, '', reason)
    return this.rescans.idle()
  }

  /** Entries skipped (see {@link SkippedEntry}) and not published or gone since. */
  get skipped(): Iterable<SkippedEntry> {
    return this.skips.all
  }

  /**
   * Whether a skipped entry is at or above this virtual path: what is there cannot be read,
   * not known to be gone, so copies of it are not deleted (rsync deletes nothing it could not
   * read either).
   */
  holdsBack(virtualPath: string): boolean {
    return this.skips.holdsBack(virtualPath)
  }

  /** Every published file under a subscription, in no particular order. */
  *under(subscription: string): Iterable<PublishedFile> {
    for (const file of this.files.values()) if (covers(subscription, file.virtualPath)) yield file
  }

  /** Every published directory and link under a subscription, in no particular order. */
  *nodesUnder(subscription: string): Iterable<PublishedNode> {
    for (const node of this.nodes.values()) if (covers(subscription, node.virtualPath)) yield node
  }

  get(virtualPath: string): PublishedFile | undefined {
    return this.files.get(virtualPath)
  }

  /** Every published folder with the sum of its direct entries (SUMS, folder-sums.ts). */
  folders(): FolderListing {
    return this.sums.get(this.files, this.nodes)
  }

  /** The directory or link published at a virtual path. */
  node(virtualPath: string): PublishedNode | undefined {
    return this.nodes.get(virtualPath)
  }

  get size(): number {
    return this.files.size
  }

  /** The digest in `algorithm` of a version of a published file when the index has it (no query, no read). */
  indexedDigest(virtualPath: string, version: FileStat, algorithm: DigestAlgorithm): string | undefined {
    if (!this.index.known(virtualPath, version)) return undefined
    const file = this.index.get(virtualPath)
    return (algorithm === 'sha1' ? file?.sha1 : file?.xxh128) ?? undefined
  }

  /** The digest in `algorithm` of a version of a published file when the index has it, without reading the file. */
  indexed(virtualPath: string, version: FileStat, algorithm: DigestAlgorithm): FileDigest | undefined {
    return this.index.fresh(virtualPath, version, algorithm)
  }

  /**
   * Digests computed elsewhere (by a transfer, hashing what it sent) of a version of a file:
   * indexed if that version is still the one published, so it is never read again for them.
   */
  learned(virtualPath: string, version: FileStat, digest: BlockDigests): void {
    const file = this.files.get(virtualPath)
    if (file === undefined || !sameStat(file, version) || digest.bytes !== version.size) return
    this.stats.filesHashed++
    this.stats.bytesHashed += digest.bytes
    this.index.put(virtualPath, file.physicalPath, { size: version.size, mtimeMs: version.mtimeMs, ino: version.ino }, digest, this.mounts.owner(virtualPath)?.virtualPath ?? null)
  }

  /**
   * Whether a transfer starting on this version of a file should hash it as it sends it:
   * not when another transfer already does (ten clients starting on one file hash it once),
   * in the same algorithm. A transfer that leads calls {@link leadEnded} when it ends, finished or not.
   */
  leadHash(virtualPath: string, version: FileStat, algorithm: DigestAlgorithm): boolean {
    const key = `${algorithm}\0${virtualPath}`
    const running = this.sendHashing.get(key)
    if (running !== undefined && sameStat(running, version)) return false
    this.sendHashing.set(key, { size: version.size, mtimeMs: version.mtimeMs, ino: version.ino })
    return true
  }

  leadEnded(virtualPath: string, version: FileStat, algorithm: DigestAlgorithm): void {
    const key = `${algorithm}\0${virtualPath}`
    const running = this.sendHashing.get(key)
    if (running !== undefined && sameStat(running, version)) this.sendHashing.delete(key)
  }

  /**
   * Transfers under way: while any runs, background hashing waits, so the two do not read and
   * hash the same files twice over (a transfer hashes what it sends and indexes it).
   */
  sending(delta: 1 | -1): void {
    this.transfers += delta
    clearTimeout(this.resuming)
    // Resumed once transfers pause, not between two files of a stream of them.
    if (this.transfers === 0) this.resuming = setTimeout(() => this.resume(), HASH_RESUME_MS).unref()
  }

  private resume(): void {
    const paused = this.paused
    this.paused = []
    for (const resolve of paused) resolve()
    this.pump()
  }

  /**
   * The digest in `algorithm` of a published file: from the index when its size, mtime and
   * inode are those indexed and it holds that algorithm's, else read once (callers asking
   * meanwhile share that read) and indexed. XXH128 (the default) is what our clients use and
   * what the background indexing computes; SHA-1 is read for only when a reference peer needs
   * it. Rejects with {@link FileChangedError} when the file is not, or no longer, the version
   * given: the watcher announces it again once it settles.
   */
  digest(file: PublishedFile, algorithm: DigestAlgorithm = 'xxh128'): Promise<FileDigest> {
    return this.hashOnce(file, false, algorithm)
  }

  /** {@link digest}, for the background hashing, which gives way to transfers unless someone waits for it. */
  private hashOnce(file: PublishedFile, background: boolean, algorithm: DigestAlgorithm): Promise<FileDigest> {
    const known = this.index.fresh(file.virtualPath, file, algorithm)
    if (known !== undefined) return Promise.resolve(known)
    const key = `${algorithm}\0${file.virtualPath}`
    const running = this.hashing.get(key)
    if (running !== undefined && sameStat(running.stat, file)) {
      if (!background) {
        // Someone waits for it now: a background hash paused for transfers goes on at once
        // (the waiter may be a transfer itself).
        running.urgent.value = true
        running.urgent.wake?.()
      }
      return running.digest
    }
    const urgent: Urgency = { value: !background }
    const entry = { stat: { size: file.size, mtimeMs: file.mtimeMs, ino: file.ino }, urgent, digest: this.compute(file, urgent, algorithm) }
    this.hashing.set(key, entry)
    const done = (): void => {
      if (this.hashing.get(key) === entry) this.hashing.delete(key)
    }
    entry.digest.then(done, done)
    return entry.digest
  }

  /** The deletion logged for a virtual path: a file published once, now gone (also while the server was down). */
  deletion(virtualPath: string): Deletion | undefined {
    return this.index.deletion(virtualPath)
  }

  /** Every deletion logged under a subscription, by path. */
  deletionsUnder(subscription: string): Deletion[] {
    return this.index.deletionsUnder(subscription)
  }

  /** Resolves once the index is compared with the scans and the background hashing has nothing left to do. */
  whenIndexed(): Promise<void> {
    if (this.running.size === 0 && this.backlogHead >= this.backlog.length) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  async close(): Promise<void> {
    this.abort.abort()
    this.rescans.close()
    clearTimeout(this.resuming)
    for (const timer of this.settling.values()) clearTimeout(timer)
    this.settling.clear()
    this.backlog = []
    this.backlogHead = 0
    for (const watcher of this.watchers) watcher.close()
    this.watchers.length = 0
    await this.rescans.idle()
    this.resume() // hashes waiting for transfers to pause end on the abort
    await Promise.allSettled([...this.running, ...[...this.hashing.values()].map((h) => h.digest)])
    this.wakeIdle()
    if (this.fileIndex === undefined) return
    if (this.ownsIndex) this.fileIndex.close()
    else this.fileIndex.flush()
  }

  /** Reads a file once for its digest and block digests in one algorithm, and indexes them if it did not change meanwhile. */
  private async compute(file: PublishedFile, urgent: Urgency, algorithm: DigestAlgorithm): Promise<FileDigest> {
    const signal = this.abort.signal
    signal.throwIfAborted()
    const handle = await open(file.physicalPath, 'r')
    try {
      const before = await handle.stat()
      if (!sameStat(before, file)) throw new FileChangedError(file.virtualPath)
      // Gives way to transfers, which hash what they send; one may index this very file meanwhile.
      const pause = (): Promise<void> | undefined =>
        this.transfers === 0 || urgent.value
          ? undefined
          : new Promise<void>((resolve) => {
              urgent.wake = resolve
              this.paused.push(resolve)
            }).then(() => {
              urgent.wake = undefined
              if (!urgent.value && this.index.known(file.virtualPath, before, algorithm)) throw new FileChangedError(file.virtualPath)
            })
      const digests = await hashFileWithBlocks(handle, { signal, pause, algorithm })
      const { digest, blocks, bytes } = digests
      this.stats.bytesHashed += bytes
      this.stats.filesHashed++
      // Written in place (same handle, new size or mtime) or replaced (the name now has another inode).
      const after = await handle.stat()
      const named = await stat(file.physicalPath).catch(() => undefined)
      if (bytes !== before.size || !sameStat(after, before) || named === undefined || !sameStat(named, before)) {
        throw new FileChangedError(file.virtualPath)
      }
      const version: FileStat = { size: before.size, mtimeMs: before.mtimeMs, ino: before.ino }
      // A file unpublished meanwhile stays out of the index: its deletion is already logged.
      if (this.files.get(file.virtualPath)?.physicalPath === file.physicalPath) {
        this.index.put(file.virtualPath, file.physicalPath, version, digests, this.mounts.owner(file.virtualPath)?.virtualPath ?? null)
      }
      return { algorithm, digest, blocks, ...version }
    } finally {
      await handle.close()
    }
  }

  /**
   * After a scan: files the index holds under this mount that the scan did not find were
   * deleted while we were down; logged deletions of files found again are forgotten. Only
   * rows of this mount are judged, so a deeper mount not published yet loses nothing.
   */
  private reconcile(mount: Mount, found: ReadonlySet<string>): void {
    const index = this.index
    const now = Date.now()
    const gone: string[] = []
    for (const [virtualPath, file] of index.entries()) {
      // Published since the scan (a watcher's event before this ran) is not gone either.
      if (found.has(virtualPath) || this.files.has(virtualPath) || !covers(mount.virtualPath, virtualPath) || this.holdsBack(virtualPath)) continue
      if (file.mount !== null && file.mount !== mount.virtualPath) continue
      if (this.mounts.owner(virtualPath) === mount) gone.push(virtualPath)
    }
    for (const virtualPath of gone) {
      const size = index.get(virtualPath)?.size
      if (size !== undefined) this.likely.removed(size)
      index.remove(virtualPath, now)
    }
    for (const deletion of index.deletionsUnder(mount.virtualPath)) {
      if (found.has(deletion.virtualPath)) index.reappeared(deletion.virtualPath)
    }
  }

  /** Queues files for hashing, `hashConcurrency` at a time, each read as a stream. */
  private hashInBackground(files: readonly PublishedFile[]): void {
    if (this.abort.signal.aborted) return
    for (const file of files) this.backlog.push(file)
    this.pump()
  }

  private pump(): void {
    while (this.transfers === 0 && this.running.size < this.hashConcurrency && this.backlogHead < this.backlog.length) {
      const file = this.backlog[this.backlogHead++]!
      // Changed or gone since it was queued: its newer version is queued on its own.
      // Known in either algorithm (SHA-1 alone: an index from before XXH128): not read again now;
      // the other digest is computed when a client first needs it.
      if (this.files.get(file.virtualPath) !== file || this.index.known(file.virtualPath, file)) continue
      const job = this.hashOnce(file, true, 'xxh128').then(
        () => undefined,
        (error: Error & { code?: string }) => {
          // Readable by its mode bits but refused anyway (an ACL): a skip, said once.
          if (isDenied(error)) this.skipFile(file, error)
          else if (!TRANSIENT.has(error.code ?? '') && error.name !== 'AbortError') this.emit('error', error)
        },
      )
      this.running.add(job)
      void job.finally(() => {
        this.running.delete(job)
        this.pump()
      })
    }
    if (this.backlogHead >= this.backlog.length) {
      this.backlog = []
      this.backlogHead = 0
      if (this.running.size === 0) this.wakeIdle()
    }
  }

  private wakeIdle(): void {
    const idle = this.idle
    this.idle = []
    for (const resolve of idle) resolve()
  }

  /**
   * Adds or updates a file; the most specific mount owns a virtual path published twice.
   * `mounted`: `physicalPath` is the mount's location joined with `relativePath` (a scan's
   * plain file), so it need not be kept.
   */
  private record(
    mount: Mount,
    relativePath: string,
    physicalPath: string,
    file: Pick<PublishedFile, 'size' | 'mtimeMs' | 'ino' | 'mode'>,
    mounted = false,
  ): PublishedFile | undefined {
    const virtualPath = joinMount(mount, relativePath)
    if (this.mounts.owner(virtualPath) !== mount) return undefined
    const entry: PublishedFile = mounted
      ? new MountedFile(virtualPath, mount, file.size, file.mtimeMs, file.ino, file.mode)
      : { virtualPath, physicalPath, size: file.size, mtimeMs: file.mtimeMs, ino: file.ino, mode: file.mode }
    const before = this.files.get(virtualPath)
    if (before !== undefined) {
      this.likely.published(before.size, -1)
      this.probes.published(virtualPath, before.size, -1)
    } else this.counted(virtualPath, 1)
    this.likely.published(entry.size, 1)
    this.probes.published(virtualPath, entry.size, 1)
    this.files.set(virtualPath, entry)
    this.sums.invalidate()
    this.skips.published(mount, relativePath)
    return entry
  }

  /**
   * The digest (in the client's algorithm) of a file whose content a client may already hold:
   * under this name (touched: a new mtime, the size and digest it had), or under another (a
   * rename or a copy: the same digest is published, or was lately deleted, elsewhere; 128 KiB
   * and more, smaller ones are simply sent); else undefined. A file not hashed yet is read for
   * it only when its size makes one of these likely.
   */
  async elsewhere(file: PublishedFile, algorithm: DigestAlgorithm): Promise<FileDigest | undefined> {
    if (!this.mayBeElsewhere(file)) return undefined
    const before = this.likely.before(file.virtualPath)
    let digest = this.index.fresh(file.virtualPath, file, algorithm)
    if (digest === undefined && (await this.worthHashing(file))) {
      digest = await this.digest(file, algorithm).catch(() => undefined)
    }
    if (digest === undefined) return undefined
    // Touched: the content the client holds at this very name.
    if (digest.digest === before) return digest
    return file.size >= REFER_MIN && this.index.contentElsewhere(digest.digest, file.virtualPath) ? digest : undefined
  }

  /**
   * Starts reading a file for the digest {@link elsewhere} will want of it, so that the read
   * overlaps the transfer before it instead of holding up the file's turn. Returns whether a
   * read started or runs already (the caller bounds how many run at once).
   */
  prepareElsewhere(file: PublishedFile, algorithm: DigestAlgorithm): boolean {
    if (!this.mayBeElsewhere(file) || this.index.known(file.virtualPath, file, algorithm) || !this.likely.worthHashing(file.virtualPath, file.size)) return false
    void this.worthHashing(file).then((worth) => {
      if (worth) this.digest(file, algorithm).catch(() => undefined)
    })
    return true
  }

  /**
   * Whether a file is worth hashing before its turn: touched, maybe renamed, or maybe a copy of
   * another of its size, which it cannot be when no other starts as it does (copy-probe.ts).
   */
  private async worthHashing(file: PublishedFile): Promise<boolean> {
    if (!this.likely.worthHashing(file.virtualPath, file.size)) return false
    return !this.likely.copyOnly(file.virtualPath, file.size) || (await this.probes.copyPossible(file))
  }

  /**
   * Whether {@link elsewhere} looks at this file at all: 128 KiB and more (a smaller one is
   * simply sent), or touched (the client holds it at this very name).
   */
  mayBeElsewhere(file: PublishedFile): boolean {
    return file.size >= REFER_MIN || this.likely.before(file.virtualPath) !== undefined
  }

  /** A published file that could not be opened. */
  private skipFile(file: PublishedFile, error: unknown): void {
    const mount = this.mounts.owner(file.virtualPath)
    if (mount === undefined) return
    const relative = mount.virtualPath === '/' ? file.virtualPath.slice(1) : file.virtualPath.slice(mount.virtualPath.length + 1)
    this.skips.denied(mount, relative, error)
  }

  /** `path` relative to the mount, `/`-separated. */
  private relative(mount: Mount, path: string): string {
    return relative(mount.location, path).split(sep).join('/')
  }

  /** Any event on a path restarts its settle timer; the path is looked at once it is quiet. */
  private touched(mount: Mount, path: string): void {
    const key = `${mount.location}\0${path}`
    clearTimeout(this.settling.get(key))
    this.settling.set(
      key,
      setTimeout(() => {
        this.settling.delete(key)
        this.settled(mount, path).catch((error: Error) => this.emit('error', error))
      }, this.settleTimes.delay(key)),
    )
  }

  private async settled(mount: Mount, path: string): Promise<void> {
    const rel = this.relative(mount, path)
    // Outside the mount; a name such as `..foo` inside it is fine.
    if (rel === '' || rel === '..' || rel.startsWith('../')) return
    const link = isPortableLink(basename(path))
    const name = link ? portableLinkName(rel) : rel
    const virtualPath = joinMount(mount, name)
    const info = await lstat(path).catch(() => undefined)
    if (this.abort.signal.aborted) return

    if (info === undefined) {
      // Gone: a file, or a whole directory and everything that was under it.
      this.skips.forget(mount, rel)
      this.unpublish(mount, virtualPath, true)
      return
    }
    // A directory: the watcher reports each file inside a new directory on its own.
    if (info.isDirectory()) {
      if (!link && this.publishes(`${name}/`)) this.nodeFound(mount, name, { kind: 'dir', mode: info.mode & 0o7777, mtimeMs: info.mtimeMs })
      return
    }
    // Left out by the globs: never announced. (A deletion above is not filtered: an included
    // file under an excluded folder goes with that folder.)
    if (!this.publishes(name)) return
    let physicalPath = path
    let current: { size: number; mtimeMs: number; ino: number; mode: number }
    if (link) {
      physicalPath = await readPortableLink(path, mount.location, { allowOutside: this.options.followOutside })
      current = await stat(physicalPath)
    } else if (info.isFile()) {
      const denied = await unreadable(path, info)
      if (denied !== undefined) {
        // Kept if it was published: the mirrors keep their copy, as rsync keeps it (not deleted, not updated).
        this.skips.denied(mount, rel, denied)
        return
      }
      current = info
    } else if (info.isSymbolicLink() && this.options.followOutside) {
      // As the scan does: followed only when the configuration says so, to a regular file.
      const target = await realpath(path).catch(() => undefined)
      const targetInfo = target === undefined ? undefined : await stat(target).catch(() => undefined)
      if (target === undefined || targetInfo?.isFile() !== true) return
      physicalPath = target
      current = targetInfo
    } else if (info.isSymbolicLink()) {
      // Not followed: published as a link, its text as is, to clients that mirror the tree.
      const target = await readlink(path).catch(() => undefined)
      if (target === undefined || this.abort.signal.aborted) return
      this.nodeFound(mount, name, { kind: 'link', mode: info.mode & 0o7777, mtimeMs: info.mtimeMs, target })
      return
    } else {
      // Symbolic links (unless followed) are a choice of the configuration; special files a loss.
      if (info.isFIFO() || info.isSocket() || info.isBlockDevice() || info.isCharacterDevice()) {
        const kind = info.isFIFO() ? 'fifo' : info.isSocket() ? 'socket' : 'device'
        this.skips.special(mount, rel, kind)
      }
      return
    }
    // Whatever was published here before (a directory, a link) is replaced by the file.
    if (this.nodes.has(virtualPath)) this.unpublish(mount, virtualPath, false)
    const known = this.files.get(virtualPath)
    if (known && known.physicalPath === physicalPath && sameStat(known, current)) {
      if ((known.mode & 0o7777) === (current.mode & 0o7777)) return
      // chmod alone: same content, size and mtime; only clients that mirror the tree are told.
      const file = this.record(mount, name, known.physicalPath, { ...known, mode: current.mode & 0o7777 })
      if (file !== undefined) this.emit('attributes', file)
      return
    }
    const file = this.record(mount, name, physicalPath, {
      size: current.size,
      mtimeMs: current.mtimeMs,
      ino: current.ino,
      mode: current.mode & 0o7777,
    })
    if (file === undefined) return
    if (known === undefined) this.index.reappeared(virtualPath)
    // The same size again (a touch, say): the digest it had, to tell whether the content changed.
    const indexed = known !== undefined && known.size === file.size ? this.index.get(virtualPath) : undefined
    // Either algorithm: the one our clients use first (a digest of the other compares unequal, which only costs a send).
    const before = indexed === undefined ? undefined : (indexed.xxh128 ?? indexed.sha1 ?? undefined)
    this.likely.changed(virtualPath, before)
    this.hashInBackground([file])
    this.settleTimes.shipped(`${mount.location}\0${path}`)
    this.emit('changed', file, known !== undefined)
  }

  /**
   * Unpublishes what was at a virtual path of this mount: a file, a directory or link and, with
   * `below`, everything under it.
   */
  private unpublish(mount: Mount, virtualPath: string, below: boolean): void {
    const now = Date.now()
    this.sums.invalidate()
    const removeFile = (file: PublishedFile): void => {
      if (this.mounts.owner(file.virtualPath) !== mount) return
      this.files.delete(file.virtualPath)
      this.counted(file.virtualPath, -1)
      this.likely.published(file.size, -1, true)
      this.probes.published(file.virtualPath, file.size, -1)
      this.hashing.delete(file.virtualPath)
      this.index.remove(file.virtualPath, now)
      this.emit('removed', file.virtualPath, 'file')
    }
    const removeNode = (node: PublishedNode): void => {
      if (this.mounts.owner(node.virtualPath) !== mount) return
      this.nodes.delete(node.virtualPath)
      this.counted(node.virtualPath, -1)
      this.emit('removed', node.virtualPath, 'node')
    }
    // One path (a file deleted, or a folder already emptied): no look at the rest of the tree,
    // so a burst of 20,000 deletions costs 20,000 lookups, not 20,000 walks of the tree.
    if (!below || !this.holdsContent(virtualPath)) {
      const file = this.files.get(virtualPath)
      if (file !== undefined) removeFile(file)
      const node = this.nodes.get(virtualPath)
      if (node !== undefined) removeNode(node)
      return
    }
    const inside = (path: string): boolean => path === virtualPath || covers(virtualPath, path)
    for (const file of [...this.files.values()]) if (inside(file.virtualPath)) removeFile(file)
    for (const node of [...this.nodes.values()]) if (inside(node.virtualPath)) removeNode(node)
  }

  /** A directory or link seen by the watcher: announced when new or changed (a directory's mtime alone is not news). */
  private nodeFound(mount: Mount, name: string, found: Omit<PublishedNode, 'virtualPath'>): void {
    const virtualPath = joinMount(mount, name)
    const known = this.nodes.get(virtualPath)
    if (known !== undefined && known.kind === found.kind && known.mode === found.mode && known.target === found.target) {
      if (known.mtimeMs !== found.mtimeMs) this.recordNode(mount, name, found)
      return
    }
    // A file published here before is replaced (and a directory of that name holds nothing yet).
    if (this.files.has(virtualPath)) this.unpublish(mount, virtualPath, false)
    if (known !== undefined && known.kind !== found.kind) this.unpublish(mount, virtualPath, true)
    const node = this.recordNode(mount, name, found)
    if (node !== undefined) this.emit('node', node)
  }

  /** Adds or updates a directory or link; the most specific mount owns it. */
  private recordNode(mount: Mount, relativePath: string, node: Omit<PublishedNode, 'virtualPath'>): PublishedNode | undefined {
    const virtualPath = joinMount(mount, relativePath)
    if (relativePath === '' || this.mounts.owner(virtualPath) !== mount) return undefined
    const entry: PublishedNode = {
      virtualPath,
      kind: node.kind,
      mode: node.mode & 0o7777,
      mtimeMs: node.mtimeMs,
      ...(node.target === undefined ? {} : { target: node.target }),
    }
    if (!this.nodes.has(virtualPath)) this.counted(virtualPath, 1)
    this.nodes.set(virtualPath, entry)
    this.sums.invalidate()
    return entry
  }

  /** Keeps {@link Publisher.contents} counted (once it is) for an entry published (1) or no longer (-1). */
  private counted(virtualPath: string, delta: 1 | -1): void {
    const counts = this.contents
    if (counts === undefined) return
    for (let at = virtualPath.lastIndexOf('/'); at > 0; at = virtualPath.lastIndexOf('/', at - 1)) {
      const folder = virtualPath.slice(0, at)
      const count = (counts.get(folder) ?? 0) + delta
      if (count > 0) counts.set(folder, count)
      else counts.delete(folder)
    }
  }

  /** Whether anything is published below a virtual path (counted at the first removal, kept since). */
  private holdsContent(virtualPath: string): boolean {
    if (virtualPath === '/') return this.files.size + this.nodes.size > 0
    if (this.contents === undefined) {
      this.contents = new Map()
      for (const path of this.files.keys()) this.counted(path, 1)
      for (const path of this.nodes.keys()) this.counted(path, 1)
    }
    return this.contents.has(virtualPath)
  }
}

/**
 * A published file that is its own content, where its mount puts it: its physical path is made
 * when asked (to open the file), not kept. A scanned tree then holds each name once, in its
 * virtual path, and a million files cost a million strings less.
 */
class MountedFile implements PublishedFile {
  constructor(
    readonly virtualPath: string,
    private readonly mount: Mount,
    readonly size: number,
    readonly mtimeMs: number,
    readonly ino: number,
    readonly mode: number,
  ) {}
  get physicalPath(): string {
    const { location, virtualPath } = this.mount
    const relative = this.virtualPath.slice(virtualPath === '/' ? 1 : virtualPath.length + 1)
    return location.endsWith('/') ? location + relative : `${location}/${relative}`
  }
}

/** A mount's virtual path joined with a path relative to it (already checked by the scan or the watcher). */
function joinMount(mount: Mount, relativePath: string): string {
  return [mount.virtualPath === '/' ? '' : mount.virtualPath, relativePath].join('/')
}

