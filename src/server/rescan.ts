/**
 * The reconciling rescan: the watcher's events are hints, the disk is the truth. A rescan
 * walks a folder of a mount (src/fs/scan.ts, the same walk as the first scan) and compares
 * what it finds with what is published, from the stat alone (size, mtime, inode, mode; no
 * content is read); every difference, a new, changed or vanished file, folder or link, is
 * handed to the publisher as if the watcher had reported it, so it goes the usual way
 * (settle, look, publish or unpublish).
 *
 * Rescans run on doubt (the watcher's `doubt`: a burst that may have overflowed the kernel's
 * queue, a folder replaced, the root gone or back) and periodically: every `rescan`
 * milliseconds (default an hour, as Syncthing beside its watcher), and every
 * {@link DEGRADED_RESCAN_MS} while some folders are not watched (an inotify limit reached).
 * One at a time; requests for a folder under one already waiting are merged into it.
 *
 * @packageDocumentation
 */
import { join } from 'node:path'

import type { Mount } from '../fs/mounts.js'
import { type ScannedNode, type ScanOptions, scanMount } from '../fs/scan.js'
import { relativeTo } from '../fs/vpath.js'
import type { FileStat } from './file-index.js'

/** Default milliseconds between periodic rescans of every mount (an hour). */
export const DEFAULT_RESCAN_MS = 3_600_000
/** Milliseconds between rescans while folders are left unwatched (an inotify limit, the root gone). */
export const DEGRADED_RESCAN_MS = 10_000

/** What a rescan compares the disk with: the publisher's tables, for one mount. */
export interface PublishedState {
  file(virtualPath: string): (FileStat & { readonly physicalPath: string; readonly mode: number }) | undefined
  node(virtualPath: string): { readonly kind: 'dir' | 'link'; readonly mode: number; readonly target?: string } | undefined
  /** Whether this mount is the one publishing a virtual path (the most specific mount covering it). */
  owns(mount: Mount, virtualPath: string): boolean
  /** Kept published though it cannot be read now (a skipped entry at or above it): not a difference. */
  holdsBack(virtualPath: string): boolean
  /** Virtual paths of every file, folder and link this mount publishes under a virtual path. */
  publishedUnder(mount: Mount, virtualPath: string): Iterable<string>
}

/**
 * Walks `under` (relative to the mount, `/`-separated, `''` for all of it) and calls `touch`
 * with the physical path of every entry that differs from what is published: new, changed,
 * or published and gone (only the topmost of a gone subtree). Resolves to how many.
 *
 * @example
 * ```ts
 * const missed = await findMissed(mount, 'photos/2024', { publish }, state, (path) => publisher.touched(mount, path))
 * ```
 */
export async function findMissed(
  mount: Mount,
  under: string,
  options: ScanOptions,
  state: PublishedState,
  touch: (physicalPath: string) => void,
): Promise<number> {
  const seen = new Set<string>()
  let missed = 0
  const differs = (physicalPath: string): void => {
    missed++
    touch(physicalPath)
  }
  const onNode = (node: ScannedNode): void => {
    const virtualPath = joinMount(mount, node.relativePath)
    if (!state.owns(mount, virtualPath)) return
    seen.add(virtualPath)
    const known = state.node(virtualPath)
    if (known === undefined || known.kind !== node.kind || known.mode !== node.mode || known.target !== node.target || state.file(virtualPath) !== undefined) {
      differs(node.physicalPath)
    }
  }
  let gone = false
  try {
    for await (const entry of scanMount(mount.location, { ...options, under, onNode })) {
      const virtualPath = joinMount(mount, entry.relativePath)
      if (!state.owns(mount, virtualPath)) continue
      seen.add(virtualPath)
      const known = state.file(virtualPath)
      const same =
        known !== undefined &&
        known.physicalPath === entry.contentPath &&
        known.size === entry.size &&
        known.mtimeMs === entry.mtimeMs &&
        known.ino === entry.ino &&
        known.mode === (entry.mode & 0o7777)
      if (!same) differs(entry.physicalPath)
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error
    gone = true // the folder itself: everything published under it is gone
  }
  const top = under === '' ? mount.virtualPath : joinMount(mount, under)
  if (gone && under !== '') {
    differs(physical(mount, top))
    return missed
  }
  // Only the topmost of a vanished subtree: its unpublishing takes what was below.
  const vanished = [...state.publishedUnder(mount, top)].filter((path) => path !== top && !seen.has(path) && !state.holdsBack(path))
  const taken = new Set<string>()
  for (const virtualPath of vanished.sort()) {
    if (hasAncestorIn(taken, virtualPath)) continue
    taken.add(virtualPath)
    differs(physical(mount, virtualPath))
  }
  return missed
}

/** A request: a folder of a mount to rescan, and why. */
interface Request {
  readonly mount: Mount
  /** Relative to the mount, `/`-separated; `''` for the whole mount. */
  readonly under: string
  readonly reason: string
}

/** What the scheduler needs of the publisher. */
export interface RescanHost {
  /** Rescans a folder of a mount; resolves to how many differences it found. */
  rescan(mount: Mount, under: string): Promise<number>
  /** Every mount, for the periodic rescan. */
  mounts(): Iterable<Mount>
  /** Before each periodic rescan: unwatched folders tried again; resolves to whether some are still not watched. */
  retryWatches(): Promise<boolean>
  log(level: 'info' | 'warn', text: string): void
  error(error: Error): void
}

/**
 * Runs rescans one at a time, merges requests, and rescans every mount periodically.
 *
 * @example
 * ```ts
 * const rescans = new RescanScheduler(host, 3_600_000)
 * rescans.request(mount, 'photos', 'a burst of 900 events')
 * rescans.close()
 * ```
 */
export class RescanScheduler {
  private pending: Request[] = []
  private running = false
  private closed = false
  private timer: NodeJS.Timeout | undefined
  private due = 0
  /** Resolves the callers of `idle()` once nothing is pending or running. */
  private waiters: Array<() => void> = []

  constructor(
    private readonly host: RescanHost,
    /** Milliseconds between periodic rescans. */
    private readonly interval: number = DEFAULT_RESCAN_MS,
    /** Whether the periodic rescans are all there is (no watcher): what they find is expected, not missed. */
    private readonly polling = false,
  ) {}

  /** Starts the periodic rescans (sooner while some folders are not watched: see {@link soon}). */
  start(): void {
    if (this.timer === undefined && !this.closed) this.arm(this.interval)
  }

  /** Some folders are not watched: the next periodic rescan comes within DEGRADED_RESCAN_MS. */
  soon(): void {
    if (this.closed) return
    const wait = Math.min(this.interval, DEGRADED_RESCAN_MS)
    if (this.timer === undefined || this.due - Date.now() > wait) this.arm(wait)
  }

  /** Asks for a folder of a mount to be rescanned, saying why (logged when it runs). */
  request(mount: Mount, under: string, reason: string): void {
    if (this.closed) return
    const inside = (outer: Request, path: string): boolean => outer.mount === mount && (outer.under === '' || path === outer.under || path.startsWith(`${outer.under}/`))
    if (this.pending.some((waiting) => inside(waiting, under))) return
    this.pending = this.pending.filter((waiting) => !(waiting.mount === mount && inside({ mount, under, reason }, waiting.under)))
    this.pending.push({ mount, under, reason })
    if (!this.running) void this.drain()
  }

  /** Resolves once no rescan is pending or running (for tests and `close`). */
  idle(): Promise<void> {
    if (!this.running && this.pending.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  close(): void {
    this.closed = true
    this.pending = []
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm(ms: number): void {
    clearTimeout(this.timer)
    this.due = Date.now() + ms
    this.timer = setTimeout(() => void this.periodic(), ms).unref()
  }

  private async periodic(): Promise<void> {
    this.timer = undefined
    if (this.closed) return
    const degraded = await this.host.retryWatches().catch(() => true)
    if (this.closed) return
    for (const mount of this.host.mounts()) {
      this.request(mount, '', degraded ? 'some folders are not watched (an inotify limit)' : this.polling ? 'poll' : 'periodic')
    }
    this.arm(degraded ? Math.min(this.interval, DEGRADED_RESCAN_MS) : this.interval)
  }

  private async drain(): Promise<void> {
    this.running = true
    while (this.pending.length > 0 && !this.closed) {
      const { mount, under, reason } = this.pending.shift()!
      const where = under === '' ? mount.location : join(mount.location, ...under.split('/'))
      const periodic = reason === 'periodic' || reason === 'poll'
      if (!periodic) this.host.log('info', `rescanning ${where}: ${reason}`)
      try {
        const missed = await this.host.rescan(mount, under)
        // Polled, finding changes is the point; watched, a periodic rescan that finds some says the watcher missed them.
        if (missed > 0 && reason !== 'poll') this.host.log(periodic ? 'warn' : 'info', `rescan of ${where} found ${missed} ${missed === 1 ? 'change' : 'changes'} the watcher had not reported`)
      } catch (error) {
        if ((error as Error).name !== 'AbortError') this.host.error(error as Error)
      }
    }
    this.running = false
    const waiters = this.waiters
    this.waiters = []
    for (const resolve of waiters) resolve()
  }
}

/** A mount's virtual path joined with a path relative to it. */
function joinMount(mount: Mount, relativePath: string): string {
  return mount.virtualPath === '/' ? `/${relativePath}` : `${mount.virtualPath}/${relativePath}`
}

/** Where a virtual path of a mount lives on disk. */
function physical(mount: Mount, virtualPath: string): string {
  const rel = relativeTo(mount.virtualPath, virtualPath) ?? ''
  return rel === '' ? mount.location : join(mount.location, ...rel.split('/'))
}

function hasAncestorIn(paths: ReadonlySet<string>, virtualPath: string): boolean {
  for (let slash = virtualPath.indexOf('/', 1); slash !== -1; slash = virtualPath.indexOf('/', slash + 1)) {
    if (paths.has(virtualPath.slice(0, slash))) return true
  }
  return false
}
