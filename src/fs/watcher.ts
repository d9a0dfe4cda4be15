/**
 * Watching a published tree for changes: one `fs.watch` per directory (one inotify watch on
 * Linux), never one per file. A directory's watch reports every entry created, written,
 * renamed or removed in it by name, which is all the publisher needs: it looks at the path
 * itself once it settles. chokidar v4, used before, puts a watch and a stat on every file as
 * well: measured here over 100,000 files, 7.5 s before it was ready and about 780 MiB of
 * memory, against well under a second and a few MiB for a watch per directory.
 *
 * Events are hints, not the truth: the kernel drops them when its queue overflows (and libuv
 * drops the overflow notice itself, so `fs.watch` never hears of it), and watches run out.
 * So the watcher says when it may have missed something (`doubt`), and the publisher rescans
 * that folder (src/server/rescan.ts):
 * - after a burst of events: an overflow can only happen once the kernel's queue holds
 *   `max_queued_events` events, all of which we then read in one go, so a burst of that many
 *   (or of {@link BURST_EVENTS}, if fewer) is rescanned once it quiets;
 * - a folder replaced (deleted and made again, or another renamed over it: `mv next current`):
 *   watches follow a folder's identity (its inode and birth time), and a watch whose folder is not the one at
 *   its path any more is dropped;
 * - a watch that failed, and the root removed, replaced or back.
 *
 * A directory that appears is watched at once and then listed, and every file found in it is
 * reported, so files written before its watch existed are not missed. Symbolic links to
 * directories are never followed, and ignored paths (the node's `.fmq` state) are never
 * watched. A directory we may not read is reported (`unreadable`) and passed over, never
 * thrown. Out of watches or of inotify instances, the folders left unwatched are said once
 * (`limit`), kept to be tried again ({@link TreeWatcher.retry}) and left to the rescans.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events'
import { type FSWatcher, lstatSync, readFileSync, type Stats, watch } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { basename, dirname, join, relative, sep } from 'node:path'

export interface TreeWatcherOptions {
  /** Whether a path (relative to the root, `/`-separated) is left alone: not watched, not reported. */
  ignored?: (relativePath: string) => boolean
}

export interface TreeWatcherEvents {
  /** Something happened at this path (created, written, renamed or removed; a file or a directory): look at it. */
  touched: [path: string]
  /**
   * Events under this directory may have been missed (a burst that may have overflowed the
   * kernel's queue, a folder replaced, a watch lost, the root gone or back): rescan it.
   */
  doubt: [directory: string, reason: string]
  /** A kernel limit is reached (said once until every folder is watched again): folders are left unwatched. */
  limit: [error: WatchLimitError]
  /** A directory could not be watched or listed for another reason than a permission or a limit. */
  error: [error: Error]
  /** A directory we may not read (EACCES, EPERM): neither it nor anything below it is watched. */
  unreadable: [path: string, error: Error]
}

/** Which kernel limit: inotify watches (`ENOSPC`) or inotify instances (`EMFILE`). */
export type WatchLimit = 'watches' | 'instances'

const SYSCTL: Record<WatchLimit, string> = {
  watches: 'fs.inotify.max_user_watches',
  instances: 'fs.inotify.max_user_instances',
}

/** An inotify limit is reached: the user must raise it; meanwhile what is not watched is rescanned. */
export class WatchLimitError extends Error {
  override readonly name = 'WatchLimitError'
  readonly code = 'ERR_FMQ_WATCH_LIMIT'
  /** The sysctl to raise. */
  readonly sysctl: string
  constructor(
    readonly path: string,
    readonly limit: WatchLimit = 'watches',
    options?: ErrorOptions,
  ) {
    const what = limit === 'watches' ? 'out of inotify watches' : 'out of inotify instances (or of open files)'
    super(`cannot watch ${path}: ${what}; raise ${SYSCTL[limit]} (sysctl -w ${SYSCTL[limit]}=...)`, options)
    this.sysctl = SYSCTL[limit]
  }
}

/** Events within a burst above which a rescan follows (fewer if the kernel's queue is smaller). */
export const BURST_EVENTS = 256
/** Milliseconds without an event that end a burst. */
const BURST_QUIET_MS = 200
/** A burst that goes on this long is rescanned anyway, and counted again from there. */
const BURST_MAX_MS = 5000
/** Milliseconds a folder that went is remembered (see `TreeWatcher.gone`), and how many at most. */
const GONE_MS = 60_000
const GONE_MAX = 10_000
/** Milliseconds between looks for a root that is gone. */
const ROOT_POLL_MS = 1000

/** The kernel's inotify queue length (events it holds before it drops them), where there is one. */
function queuedEventsLimit(): number {
  try {
    return Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'), 10) || BURST_EVENTS
  } catch {
    return BURST_EVENTS
  }
}

/** One watched directory: its watch and the identity of the folder it was put on (see {@link identity}). */
interface Watched {
  readonly handle: FSWatcher
  readonly id: string
}

/**
 * A folder's identity: its inode and its birth time. The inode alone is not enough: ext4 gives
 * a folder made again at once the inode number its predecessor just freed.
 */
function identity(info: Stats): string {
  return `${info.ino}:${info.birthtimeMs}`
}

/** The identity of the folder at a path, or undefined when there is none. */
function folderAt(path: string): string | undefined {
  try {
    const info = lstatSync(path)
    return info.isDirectory() ? identity(info) : undefined
  } catch {
    return undefined
  }
}

/**
 * Watches a directory tree. Listen before {@link TreeWatcher.watch} to hear what it meets
 * while it starts (an unreadable folder, a limit).
 *
 * @example
 * ```ts
 * const watcher = new TreeWatcher('/srv/photos', { ignored: (path) => path.startsWith('.fmq') })
 * watcher.on('touched', (path) => console.log('look at', path))
 * watcher.on('doubt', (dir, why) => console.log('rescan', dir, 'because', why))
 * await watcher.watch()
 * watcher.close()
 * ```
 */
export class TreeWatcher extends EventEmitter<TreeWatcherEvents> {
  private readonly watches = new Map<string, Watched>()
  /**
   * Folders whose watch was dropped because they went, and when: one made again at the same
   * path soon after may have been taken for the old one by a publisher that looked late, so it
   * is rescanned (bounded; forgotten after GONE_MS).
   */
  private readonly gone = new Map<string, number>()
  /** Folders a limit left unwatched, tried again by `retry`. */
  private readonly unwatched = new Set<string>()
  /** Limits said already: each once, until every folder is watched again. */
  private readonly warned = new Set<WatchLimit>()
  private closed = false
  /** Why the root could not be watched, thrown by `watch()`. */
  private rootFailure: Error | undefined
  /** The root is gone: looked for every ROOT_POLL_MS. */
  private rootPoll: NodeJS.Timeout | undefined
  private readonly burstEvents = Math.max(8, Math.min(BURST_EVENTS, queuedEventsLimit()))
  private burst = { count: 0, first: 0, last: 0, dirs: new Set<string>() }
  private burstTimer: NodeJS.Timeout | undefined

  constructor(
    readonly root: string,
    private readonly options: TreeWatcherOptions = {},
  ) {
    super()
  }

  /**
   * Watches every directory under `root` (not reporting what is there now); resolves once all
   * are watched. Rejects only when the root itself cannot be watched for another reason than
   * a limit.
   */
  async watch(): Promise<this> {
    await this.adopt(this.root, false)
    if (this.rootFailure !== undefined) throw this.rootFailure
    return this
  }

  /** {@link TreeWatcher.watch} on a new watcher, for callers that need none of its start-up events. */
  static async start(root: string, options: TreeWatcherOptions = {}): Promise<TreeWatcher> {
    const watcher = new TreeWatcher(root, options)
    // Nobody listens yet: what is met on the way is not worth a crash (EventEmitter throws on an unheard 'error').
    watcher.on('error', () => undefined)
    return watcher.watch()
  }

  /** Directories watched. */
  get size(): number {
    return this.watches.size
  }

  /** Whether some folders are not watched (a limit, the root gone): only rescans see their changes. */
  get degraded(): boolean {
    return this.unwatched.size > 0 || this.rootPoll !== undefined
  }

  /**
   * Tries again what a limit left unwatched, and checks that the root's watch is on the folder
   * at the root's path. What it then watches is rescanned by the caller anyway: not reported.
   */
  async retry(): Promise<void> {
    if (this.closed) return
    this.checkRoot()
    const waiting = [...this.unwatched]
    this.unwatched.clear()
    for (const dir of waiting) await this.adopt(dir, false)
    if (this.unwatched.size === 0) this.warned.clear()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.burstTimer)
    clearTimeout(this.rootPoll)
    this.rootPoll = undefined
    for (const watched of this.watches.values()) watched.handle.close()
    this.watches.clear()
    this.unwatched.clear()
  }

  /** Watches a directory and those below it; with `report`, every entry found is reported. */
  private async adopt(directory: string, report: boolean): Promise<void> {
    const pending = [directory]
    while (pending.length > 0 && !this.closed) {
      const dir = pending.pop()!
      if (this.watches.has(dir) || this.isIgnored(dir)) continue
      // Watch first, list second: nothing created in between goes unseen.
      if (!this.watchDirectory(dir)) continue
      let entries
      try {
        entries = await readdir(dir, { withFileTypes: true })
      } catch (error) {
        this.unwatch(dir)
        this.failed(dir, error as NodeJS.ErrnoException)
        continue
      }
      for (const entry of entries) {
        const path = join(dir, entry.name)
        if (this.isIgnored(path)) continue
        if (entry.isDirectory()) pending.push(path)
        if (report) this.emit('touched', path)
      }
    }
  }

  private watchDirectory(dir: string): boolean {
    // Its identity before its watch: a folder swapped in between shows as another one at the next event.
    let id: string
    try {
      const info = lstatSync(dir)
      if (!info.isDirectory()) return false
      id = identity(info)
    } catch (error) {
      this.failed(dir, error as NodeJS.ErrnoException)
      return false
    }
    let handle: FSWatcher
    try {
      handle = watch(dir, { persistent: true }, (event, name) => this.changed(dir, watched, event, name))
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOSPC' || code === 'EMFILE') this.limitReached(dir, new WatchLimitError(dir, code === 'ENOSPC' ? 'watches' : 'instances', { cause: error }))
      else this.failed(dir, error as NodeJS.ErrnoException)
      return false
    }
    const watched: Watched = { handle, id }
    // The watch broke (its folder gone, say): dropped, and what was under it looked at again.
    handle.on('error', () => {
      if (this.watches.get(dir) !== watched) return
      this.unwatchTree(dir)
      if (dir === this.root) {
        this.checkRoot()
        return
      }
      this.unwatched.add(dir) // tried again by retry()
      this.emit('doubt', dir, `the watch of ${dir} failed`)
    })
    this.watches.set(dir, watched)
    return true
  }

  /** A limit: the folder is kept to try again, and the limit said once. */
  private limitReached(dir: string, error: WatchLimitError): void {
    this.unwatched.add(dir)
    if (this.warned.has(error.limit)) return
    this.warned.add(error.limit)
    this.emit('limit', error)
  }

  /** A directory could not be watched or listed: gone (nothing to say), unreadable, or worse. */
  private failed(dir: string, error: NodeJS.ErrnoException): void {
    const code = error.code
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      if (dir === this.root) this.rootGone()
      return
    }
    if (dir === this.root) {
      this.rootFailure ??= error
      return
    }
    if (code === 'EACCES' || code === 'EPERM') this.emit('unreadable', dir, error)
    else this.emit('error', error)
  }

  private changed(dir: string, watched: Watched, event: string, name: string | Buffer | null): void {
    // A watch dropped (its folder replaced or gone) may still deliver what was queued: not ours any more.
    if (this.closed || this.watches.get(dir) !== watched) return
    this.counted(dir)
    if (name === null) {
      // Events were dropped for this directory: look at everything in it again.
      this.emit('doubt', dir, `events were lost in ${dir}`)
      return
    }
    const entry = name.toString()
    const path = join(dir, entry)
    // The folder's own deletion or move is reported under its own name, as an entry of itself
    // would be: which one it was, its identity says. Its own is not news of an entry (its
    // parent reports the folder).
    if (event === 'rename' && entry === basename(dir) && this.checkSelf(dir, watched)) return
    if (path === dir || this.isIgnored(path)) return
    this.emit('touched', path)
    if (event === 'rename') void this.renamed(path)
  }

  /** Counts an event into the current burst; a burst big enough is rescanned once it quiets. */
  private counted(dir: string): void {
    const burst = this.burst
    const now = Date.now()
    if (burst.count === 0) burst.first = now
    burst.count++
    burst.last = now
    burst.dirs.add(dir)
    if (this.burstTimer === undefined) this.burstTimer = setTimeout(() => this.burstCheck(), BURST_QUIET_MS).unref()
  }

  private burstCheck(): void {
    const burst = this.burst
    const now = Date.now()
    const quiet = now - burst.last
    if (quiet < BURST_QUIET_MS && now - burst.first < BURST_MAX_MS) {
      this.burstTimer = setTimeout(() => this.burstCheck(), BURST_QUIET_MS - quiet).unref()
      return
    }
    this.burstTimer = undefined
    this.burst = { count: 0, first: 0, last: 0, dirs: new Set() }
    if (burst.count < this.burstEvents || this.closed) return
    this.emit('doubt', commonFolder([...burst.dirs]), `a burst of ${burst.count} events: the kernel's queue (${this.burstEvents} and more) may have overflowed`)
  }

  /**
   * A watched folder's own name was reported: if the folder at its path is another one or
   * none, its watch is dead (and the event was the folder's own: true).
   */
  private checkSelf(dir: string, watched: Watched): boolean {
    const id = folderAt(dir)
    if (id === watched.id) return false
    if (dir === this.root) {
      this.checkRoot()
      return true
    }
    // Gone or replaced: its parent reports the name; a replacement is adopted there.
    if (id === undefined) this.wentAway(dir)
    this.unwatchTree(dir)
    if (id !== undefined) void this.replaced(dir)
    return true
  }

  /** Remembers a folder that went (see `gone`). */
  private wentAway(dir: string): void {
    this.gone.delete(dir)
    this.gone.set(dir, Date.now())
    if (this.gone.size > GONE_MAX) this.gone.delete(this.gone.keys().next().value!)
  }

  /** Whether a folder went lately (and forgets it). */
  private cameBack(dir: string): boolean {
    const when = this.gone.get(dir)
    this.gone.delete(dir)
    return when !== undefined && Date.now() - when < GONE_MS
  }

  /** An entry appeared or vanished: a new directory is adopted, a replaced one adopted anew, a vanished one unwatched. */
  private async renamed(path: string): Promise<void> {
    const info = await lstat(path).catch(() => undefined)
    if (this.closed) return
    if (info?.isDirectory()) {
      const known = this.watches.get(path)
      if (known !== undefined && known.id === identity(info)) return
      if (known !== undefined || this.cameBack(path)) await this.replaced(path)
      else await this.adopt(path, true)
      return
    }
    if (this.watches.has(path)) this.wentAway(path)
    this.unwatchTree(path)
  }

  /** Another folder is at a (lately) watched folder's path: watched anew, reported, and rescanned for what the old one held. */
  private async replaced(dir: string): Promise<void> {
    this.unwatchTree(dir)
    await this.adopt(dir, true)
    if (!this.closed) this.emit('doubt', dir, `${dir} was replaced by another folder`)
  }

  /** Whether the root's watch is on the folder at the root's path; if not, the root is gone or replaced. */
  private checkRoot(): void {
    if (this.closed) return
    const watched = this.watches.get(this.root)
    const id = folderAt(this.root)
    if (id !== undefined && watched?.id === id) return
    if (id === undefined) {
      this.rootGone()
      return
    }
    if (watched === undefined && this.unwatched.has(this.root)) return // a limit: retry() tries it
    // Back, or replaced: everything watched anew, and all of it rescanned.
    this.stopPolling()
    this.unwatchTree(this.root)
    void this.adopt(this.root, false).then(() => {
      if (!this.closed) this.emit('doubt', this.root, 'the published folder was replaced or came back')
    })
  }

  /** The root is gone: nothing is watched, everything published is looked at, and the root looked for until it is back. */
  private rootGone(): void {
    if (this.closed || this.rootPoll !== undefined) return
    this.unwatchTree(this.root)
    this.unwatched.clear()
    this.emit('doubt', this.root, 'the published folder is gone')
    const poll = (): void => {
      this.rootPoll = setTimeout(() => {
        if (this.closed) return
        if (folderAt(this.root) !== undefined) {
          this.rootPoll = undefined
          this.checkRoot()
          return
        }
        poll()
      }, ROOT_POLL_MS).unref()
    }
    poll()
  }

  private stopPolling(): void {
    clearTimeout(this.rootPoll)
    this.rootPoll = undefined
  }

  private unwatch(dir: string): void {
    this.watches.get(dir)?.handle.close()
    this.watches.delete(dir)
  }

  /** Stops watching a directory that is gone, and everything that was below it. */
  private unwatchTree(path: string): void {
    const below = path + sep
    for (const dir of [...this.unwatched]) if (dir === path || dir.startsWith(below)) this.unwatched.delete(dir)
    if (this.watches.size === 0) return
    for (const dir of [...this.watches.keys()]) if (dir === path || dir.startsWith(below)) this.unwatch(dir)
  }

  private isIgnored(path: string): boolean {
    const { ignored } = this.options
    if (ignored === undefined || path === this.root) return false
    return ignored(relative(this.root, path).split(sep).join('/'))
  }
}

/** The deepest folder holding every one of these folders. */
function commonFolder(dirs: readonly string[]): string {
  let common = dirs[0] ?? sep
  for (const dir of dirs) {
    while (common !== dir && !dir.startsWith(common.endsWith(sep) ? common : common + sep)) {
      const up = dirname(common)
      if (up === common) return common
      common = up
    }
  }
  return common
}
