/**
 * What the server publishes: the mount table, an in-memory index of every published
 * file (virtual path → physical file and its stat), kept current by one chokidar
 * watcher per mount. A file is announced once it is stable: unchanged for the settle
 * time, so a file still being written is not shipped half done.
 */
import { EventEmitter } from 'node:events'
import { lstat, stat } from 'node:fs/promises'
import { basename, relative, sep } from 'node:path'
import { type FSWatcher, watch } from 'chokidar'
import { type Mount, MountTable } from '../fs/mounts.js'
import { scanMount } from '../fs/scan.js'
import { sha1File } from '../fs/digest.js'
import { isPortableLink, portableLinkName, readPortableLink } from '../fs/links.js'
import { covers } from '../fs/vpath.js'

/** One published file. */
export interface PublishedFile {
  readonly virtualPath: string
  /** The file whose content is sent (the target of a portable link). */
  readonly physicalPath: string
  readonly size: number
  readonly mtimeMs: number
  readonly mode: number
}

export interface PublisherEvents {
  /** A file appeared or changed and is now stable. */
  changed: [file: PublishedFile]
  /** A published file disappeared. */
  removed: [virtualPath: string]
  /** A mount could not be scanned or watched. */
  error: [error: Error]
}

export interface PublisherOptions {
  /** Milliseconds a file must stay unchanged before it is shipped. */
  settle: number
  /** Follow symbolic links and portable links that leave the mount. */
  followOutside: boolean
}

const sameStat = (a: PublishedFile, b: { size: number; mtimeMs: number }): boolean =>
  a.size === b.size && a.mtimeMs === b.mtimeMs

export class Publisher extends EventEmitter<PublisherEvents> {
  readonly mounts = new MountTable()
  private readonly files = new Map<string, PublishedFile>()
  private readonly digests = new Map<string, { size: number; mtimeMs: number; sha1: Promise<string> }>()
  private readonly watchers: FSWatcher[] = []
  private readonly settling = new Map<string, NodeJS.Timeout>()

  constructor(private readonly options: PublisherOptions) {
    super()
  }

  /** Publishes a directory under a virtual path: scans it, then watches it. */
  async publish(location: string, virtualPath: string): Promise<Mount> {
    const info = await stat(location)
    if (!info.isDirectory()) throw Object.assign(new Error(`${location} is not a directory`), { code: 'ENOTDIR' })
    const mount = this.mounts.add(location, virtualPath)
    for await (const entry of scanMount(mount.location, { followSymlinks: this.options.followOutside })) {
      this.record(mount, entry.relativePath, {
        physicalPath: entry.contentPath,
        size: entry.size,
        mtimeMs: entry.mtimeMs,
        mode: entry.mode,
      })
    }
    const watcher = watch(mount.location, {
      ignoreInitial: true,
      followSymlinks: false,
      persistent: true,
    })
    watcher.on('all', (_event, path) => this.touched(mount, path))
    watcher.on('error', (error) => this.emit('error', error as Error))
    this.watchers.push(watcher)
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
    return mount
  }

  /** Every published file under a subscription, in no particular order. */
  *under(subscription: string): Iterable<PublishedFile> {
    for (const file of this.files.values()) if (covers(subscription, file.virtualPath)) yield file
  }

  get(virtualPath: string): PublishedFile | undefined {
    return this.files.get(virtualPath)
  }

  get size(): number {
    return this.files.size
  }

  /** SHA-1 of a published file in hex, computed once per size and mtime, off the event loop's hot path. */
  sha1(file: PublishedFile): Promise<string> {
    const known = this.digests.get(file.virtualPath)
    if (known && known.size === file.size && known.mtimeMs === file.mtimeMs) return known.sha1
    const sha1 = sha1File(file.physicalPath)
    sha1.catch(() => this.digests.delete(file.virtualPath))
    this.digests.set(file.virtualPath, { size: file.size, mtimeMs: file.mtimeMs, sha1 })
    return sha1
  }

  async close(): Promise<void> {
    for (const timer of this.settling.values()) clearTimeout(timer)
    this.settling.clear()
    await Promise.all(this.watchers.map((w) => w.close()))
    this.watchers.length = 0
  }

  /** Adds or updates a file; the most specific mount owns a virtual path published twice. */
  private record(mount: Mount, relativePath: string, file: Omit<PublishedFile, 'virtualPath'>): PublishedFile | undefined {
    const virtualPath = mount.virtualPath === '/' ? `/${relativePath}` : `${mount.virtualPath}/${relativePath}`
    if (this.mounts.owner(virtualPath) !== mount) return undefined
    const entry = { virtualPath, ...file }
    this.files.set(virtualPath, entry)
    return entry
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
      }, this.options.settle),
    )
  }

  private async settled(mount: Mount, path: string): Promise<void> {
    const rel = relative(mount.location, path).split(sep).join('/')
    if (rel === '' || rel.startsWith('..')) return
    const link = isPortableLink(basename(path))
    const name = link ? portableLinkName(rel) : rel
    const virtualPath = mount.virtualPath === '/' ? `/${name}` : `${mount.virtualPath}/${name}`
    const info = await lstat(path).catch(() => undefined)

    if (info === undefined) {
      // Gone: a file, or a whole directory and everything that was under it.
      for (const file of [...this.files.values()]) {
        if (file.virtualPath === virtualPath || covers(virtualPath, file.virtualPath)) {
          if (this.mounts.owner(file.virtualPath) !== mount) continue
          this.files.delete(file.virtualPath)
          this.digests.delete(file.virtualPath)
          this.emit('removed', file.virtualPath)
        }
      }
      return
    }
    // A directory: chokidar reports each file inside it on its own.
    if (info.isDirectory()) return
    let physicalPath = path
    let current: { size: number; mtimeMs: number; mode: number }
    if (link) {
      physicalPath = await readPortableLink(path, mount.location, { allowOutside: this.options.followOutside })
      current = await stat(physicalPath)
    } else if (info.isFile()) {
      current = info
    } else {
      return // symbolic links and special files are not published from the watcher
    }
    const known = this.files.get(virtualPath)
    if (known && known.physicalPath === physicalPath && sameStat(known, current)) return
    const file = this.record(mount, name, { physicalPath, size: current.size, mtimeMs: current.mtimeMs, mode: current.mode & 0o7777 })
    if (file) this.emit('changed', file)
  }
}
