/**
 * Entries of a mount that are not published although no filter left them out (unreadable,
 * special files, names that cannot be carried): each reported once, by path and reason, and
 * again only after it was published or gone in between. What lies under such an entry is not
 * known to be gone, so mirrors keep it (rsync deletes nothing it could not read either).
 *
 * @packageDocumentation
 */
import type { Mount } from '../fs/mounts.js'
import type { ScanSkip } from '../fs/scan.js'
import { covers, joinVirtual } from '../fs/vpath.js'

/**
 * An entry of a mount that is not published although no filter left it out: reported once
 * (again only if it was published or gone in between), by the side that meets it.
 *
 * @example
 * ```ts
 * publisher.on('skipped', (entry) => console.error(`skipped ${entry.path}: ${entry.reason}`))
 * ```
 */
export interface SkippedEntry {
  /** Relative to the mount's folder, `/`-separated (a name that is not UTF-8 shows U+FFFD). */
  readonly path: string
  /** Why, in words: `permission denied`, `a FIFO`, `name not valid UTF-8`... */
  readonly reason: string
  /** `EACCES` or `EPERM` (unreadable), `ERR_FMQ_SPECIAL_FILE` (FIFO, socket, device), `ERR_FMQ_BAD_NAME` (not UTF-8). */
  readonly code: string
  /** The mount's folder. */
  readonly location: string
  /** The virtual path it would be published under. */
  readonly virtualPath: string
}

/** Skips of the scan that are a loss (not a choice of the configuration): these are reported. */
const REPORTED: ReadonlySet<ScanSkip['reason']> = new Set(['unreadable', 'not-a-file', 'bad-name'])
const SPECIAL_KINDS = { fifo: 'a FIFO', socket: 'a socket', device: 'a device', other: 'not a regular file' } as const
export type SpecialKind = keyof typeof SPECIAL_KINDS

/** The skips of one publisher. */
export class SkipLog {
  /** By mount location and relative path. */
  private readonly entries = new Map<string, SkippedEntry>()

  /**
   * @param report - told of each new skip.
   * @param active - false once the publisher is closing: nothing is reported then.
   */
  constructor(
    private readonly report: (entry: SkippedEntry) => void,
    private readonly active: () => boolean,
  ) {}

  /** Entries skipped and not published or gone since. */
  get all(): Iterable<SkippedEntry> {
    return this.entries.values()
  }

  /** Whether a skipped entry is at or above this virtual path: what is there is not known to be gone. */
  holdsBack(virtualPath: string): boolean {
    for (const entry of this.entries.values()) if (covers(entry.virtualPath, virtualPath)) return true
    return false
  }

  /** A skip of the scan, reported when it is a loss rather than a choice (symbolic links, filters). */
  fromScan(mount: Mount, skipped: ScanSkip): void {
    if (!REPORTED.has(skipped.reason)) return
    if (skipped.reason === 'unreadable') {
      const folder = (skipped.error as { syscall?: string } | undefined)?.syscall === 'scandir'
      this.denied(mount, skipped.relativePath, skipped.error, folder)
    } else if (skipped.reason === 'not-a-file') {
      this.special(mount, skipped.relativePath, skipped.kind ?? 'other')
    } else {
      this.add(mount, skipped.relativePath, 'name not valid UTF-8', 'ERR_FMQ_BAD_NAME')
    }
  }

  /** A file, or a folder, that this process may not read. */
  denied(mount: Mount, relativePath: string, error: unknown, folder = false): void {
    this.add(mount, relativePath, folder ? 'cannot list folder (permission denied)' : 'cannot read (permission denied)', codeOf(error))
  }

  /** A FIFO, socket or device. */
  special(mount: Mount, relativePath: string, kind: SpecialKind): void {
    this.add(mount, relativePath, `${SPECIAL_KINDS[kind]}, not a regular file`, 'ERR_FMQ_SPECIAL_FILE')
  }

  /** Published now: a later failure is news again. */
  published(mount: Mount, relativePath: string): void {
    if (this.entries.size > 0) this.entries.delete(key(mount, relativePath))
  }

  /** Forgets the skips at or under a path that is gone: if it comes back unreadable, that is news. */
  forget(mount: Mount, relativePath: string): void {
    const at = key(mount, relativePath)
    for (const other of [...this.entries.keys()]) if (other === at || other.startsWith(`${at}/`)) this.entries.delete(other)
  }

  /** Reports an entry once: again only after it was published or gone. */
  private add(mount: Mount, relativePath: string, reason: string, code: string): void {
    if (relativePath === '' || !this.active()) return
    const at = key(mount, relativePath)
    if (this.entries.has(at)) return
    const entry: SkippedEntry = { path: relativePath, reason, code, location: mount.location, virtualPath: joinVirtual(mount.virtualPath, relativePath) }
    this.entries.set(at, entry)
    this.report(entry)
  }
}

function key(mount: Mount, relativePath: string): string {
  return `${mount.location}\0${relativePath}`
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : 'EACCES'
}
