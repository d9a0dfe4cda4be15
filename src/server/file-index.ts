/**
 * The server's durable index of published files (tables `server_files` and
 * `server_deletions` of the node database): for each virtual path the stat its digests were
 * computed for, its SHA-1 and the SHA-1 of every RESUME_BLOCK prefix. A file whose size,
 * mtime and inode are unchanged is never read again, across restarts too. Files that
 * disappear are logged with their last SHA-1, so a mirroring client that was away learns
 * of them.
 *
 * Everything but the block digests is held in memory, so "is this file fresh?" costs no
 * query; block digests are read by path when a resume needs them. The rows are read at the
 * first question, or a page at a time between other work ({@link FileIndex.loadInBackground}):
 * a restart whose clients ask nothing of the index (a rerun of `fmq track` over an unchanged
 * mirror) does not wait for 100,000 rows before serving. Writes are queued and
 * committed together, one transaction per turn of the event loop, so hashing a tree of small
 * files does not pay a commit per file.
 *
 * @packageDocumentation
 */
import type { Statement } from 'better-sqlite3'

import { covers } from '../fs/vpath.js'
import { RESUME_BLOCK } from '../protocol/extensions.js'
import { openStore, type Store } from '../store/database.js'

/** The part of a stat that identifies a version of a file's content. */
export interface FileStat {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
}

/** The digests of one version of a file, as computed when it was read. */
export interface FileDigest {
  /** SHA-1 of the whole content, lower-case hex. */
  readonly sha1: string
  /** 20-octet SHA-1 of every prefix [0, k × RESUME_BLOCK), k = 1 .. floor(size / RESUME_BLOCK). */
  readonly blocks: Buffer
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
}

/** A published file that disappeared. */
export interface Deletion {
  readonly virtualPath: string
  /** Milliseconds since the epoch. */
  readonly deletedAt: number
  /** SHA-1 of the last version we had indexed, when there was one. */
  readonly sha1?: string
}

/** What the index holds in memory for a file. */
export interface IndexedFile extends FileStat {
  readonly sha1: string
  /** Virtual path of the mount the file was found in; null for rows older than schema 3. */
  readonly mount: string | null
}

/** Options of {@link FileIndex}. */
export interface FileIndexOptions {
  /** Deletions older than this many milliseconds are forgotten when the index opens (default 90 days). */
  retentionMs: number
  /** The clock, for tests. */
  now: () => number
  /** A batch of writes could not be committed (the files are hashed again after a restart). */
  onError: (error: Error) => void
}

/** SHA-1s of deletions remembered in memory for {@link FileIndex.contentElsewhere}. */
const MAX_DELETED_DIGESTS = 100_000

/** Default of {@link FileIndexOptions.retentionMs}: 90 days. */
export const DELETION_RETENTION_MS = 90 * 24 * 60 * 60 * 1000

type Write =
  | { readonly kind: 'put'; readonly vpath: string; readonly physical: string; readonly file: IndexedFile; readonly blocks: Buffer }
  | { readonly kind: 'remove'; readonly vpath: string; readonly deletedAt: number; readonly sha1: string | null }
  | { readonly kind: 'reappeared'; readonly vpath: string }

const NO_BLOCKS = Buffer.alloc(0)

/** Rows read per page by {@link FileIndex.loadInBackground}: a few milliseconds of work. */
const LOAD_PAGE = 2000

type Row = { vpath: string; deleted_at: number; sha1: string | null }

const sameStat = (a: FileStat, b: FileStat): boolean => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino

/**
 * The index of published files over a node database.
 *
 * @example
 * ```ts
 * const index = FileIndex.open('/srv/photos/.fmq')
 * const digest = index.fresh('/photos/a.jpg', await stat('/srv/photos/a.jpg'))
 * if (digest === undefined) index.put('/photos/a.jpg', physical, stats, sha1, blocks, '/photos')
 * index.close()
 * ```
 */
export class FileIndex {
  /** What is loaded of the rows, and what changed since: read it through {@link FileIndex.all}. */
  private readonly files = new Map<string, IndexedFile>()
  /** The last path loaded, rows being read in path order; undefined once every row is. */
  private loadedUpTo: string | undefined = ''
  private readonly options: Readonly<FileIndexOptions>
  private writes: Write[] = []
  /**
   * Published files per SHA-1: whether some content is published under another path (a copy).
   * Counted at the first question, not at open: most runs never ask.
   */
  private bySha1: Map<string, number> | undefined
  /** SHA-1s of files deleted by this process, oldest first: the content of a file renamed away. */
  private readonly deletedDigests = new Map<string, number>()
  /** Block digests put but not committed yet, so reading them back needs no commit. */
  private readonly unwritten = new Map<string, Buffer>()
  private scheduled: NodeJS.Immediate | undefined
  private closed = false
  private readonly sql: {
    put: Statement
    removeFile: Statement
    logDeletion: Statement
    forgetDeletion: Statement
    blocks: Statement
    deletion: Statement
    deletionsUnder: Statement
    allDeletions: Statement
    page: Statement<[string, number], [string, number, number, number, string, string | null]>
  }

  /**
   * An index over an open store; loads every indexed file (without block digests) and
   * forgets deletions older than the retention. The store stays the caller's to close,
   * unless `ownsStore`.
   */
  constructor(
    readonly store: Store,
    options: Partial<FileIndexOptions> = {},
    private readonly ownsStore = false,
  ) {
    this.options = Object.freeze({ retentionMs: DELETION_RETENTION_MS, now: Date.now, onError: () => undefined, ...options })
    this.sql = {
      put: store.prepare(
        `INSERT OR REPLACE INTO server_files (vpath, physical, size, mtime_ms, ino, sha1, blocks, mount)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      removeFile: store.prepare('DELETE FROM server_files WHERE vpath = ?'),
      logDeletion: store.prepare('INSERT OR REPLACE INTO server_deletions (vpath, deleted_at, sha1) VALUES (?, ?, ?)'),
      forgetDeletion: store.prepare('DELETE FROM server_deletions WHERE vpath = ?'),
      blocks: store.prepare('SELECT blocks FROM server_files WHERE vpath = ?').pluck(),
      deletion: store.prepare('SELECT vpath, deleted_at, sha1 FROM server_deletions WHERE vpath = ?'),
      // Everything strictly below "/a" sorts in ["/a/", "/a0"): "0" follows "/" in every collation of bytes.
      deletionsUnder: store.prepare(
        'SELECT vpath, deleted_at, sha1 FROM server_deletions WHERE vpath = ? OR (vpath >= ? AND vpath < ?) ORDER BY vpath',
      ),
      allDeletions: store.prepare('SELECT vpath, deleted_at, sha1 FROM server_deletions ORDER BY vpath'),
      // Keyset pages in the primary key's order: each page a query of its own, so the
      // connection is free for writes between pages.
      page: store
        .prepare<[string, number], [string, number, number, number, string, string | null]>(
          'SELECT vpath, size, mtime_ms, ino, sha1, mount FROM server_files WHERE vpath > ? ORDER BY vpath LIMIT ?',
        )
        .raw(),
    }
    store.prepare('DELETE FROM server_deletions WHERE deleted_at < ?').run(this.options.now() - this.options.retentionMs)
  }

  /** Every indexed file, the rows not read yet read now. */
  private get all(): Map<string, IndexedFile> {
    while (this.loadedUpTo !== undefined) this.loadPage(LOAD_PAGE * 20)
    return this.files
  }

  /** Reads the next page of rows (every change goes through {@link FileIndex.all}: nothing newer is overwritten). */
  private loadPage(limit: number): void {
    if (this.loadedUpTo === undefined) return
    if (this.closed) {
      this.loadedUpTo = undefined
      return
    }
    const rows = this.sql.page.all(this.loadedUpTo, limit)
    for (const [vpath, size, mtimeMs, ino, sha1, mount] of rows) this.files.set(vpath, { size, mtimeMs, ino, sha1, mount })
    this.loadedUpTo = rows.length < limit ? undefined : rows[rows.length - 1]![0]
  }

  /**
   * Reads the rows a page at a time, letting the event loop run between pages, until all
   * are (or `signal` aborts). A question asked meanwhile reads the rest at once.
   */
  async loadInBackground(signal?: AbortSignal): Promise<void> {
    while (this.loadedUpTo !== undefined) {
      signal?.throwIfAborted()
      this.loadPage(LOAD_PAGE)
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  /**
   * Whether content of this SHA-1 is known under another path than `vpath`: published there,
   * or deleted there lately (by this process). A client that mirrored it may hold it (a file
   * renamed or copied), and can be told to make the file from it rather than be sent it.
   */
  contentElsewhere(sha1: string, vpath: string): boolean {
    const here = this.all.get(vpath)?.sha1 === sha1 ? 1 : 0
    if (this.bySha1 === undefined) {
      this.bySha1 = new Map()
      for (const file of this.all.values()) this.count(file.sha1, 1)
    }
    return (this.bySha1.get(sha1) ?? 0) > here || this.deletedDigests.has(sha1)
  }

  /** Keeps {@link FileIndex.bySha1} counted, once it is. */
  private count(sha1: string, delta: 1 | -1): void {
    if (this.bySha1 === undefined) return
    const count = (this.bySha1.get(sha1) ?? 0) + delta
    if (count > 0) this.bySha1.set(sha1, count)
    else this.bySha1.delete(sha1)
  }

  /** Opens the node database of a state directory (or an in-memory one) and the index over it; `close()` closes both. */
  static open(stateDir: string | ':memory:', options: Partial<FileIndexOptions> = {}): FileIndex {
    const store = openStore(stateDir)
    try {
      return new FileIndex(store, options, true)
    } catch (error) {
      store.close()
      throw error
    }
  }

  /** Files indexed. */
  get size(): number {
    return this.all.size
  }

  /** Every indexed file, without its block digests. */
  entries(): IterableIterator<[string, IndexedFile]> {
    return this.all.entries()
  }

  /** What the index holds for a path, whatever its stat. */
  get(vpath: string): IndexedFile | undefined {
    return this.all.get(vpath)
  }

  /** Whether the index holds digests for exactly this version of the file (no query). */
  known(vpath: string, stat: FileStat): boolean {
    const file = this.all.get(vpath)
    return file !== undefined && sameStat(file, stat)
  }

  /** The digests of this version of the file, or undefined when it must be read again. */
  fresh(vpath: string, stat: FileStat): FileDigest | undefined {
    const file = this.all.get(vpath)
    if (file === undefined || !sameStat(file, stat) || this.closed) return undefined
    // A file shorter than a block has no block digests: no query for the many small files.
    if (file.size < RESUME_BLOCK) return { sha1: file.sha1, blocks: NO_BLOCKS, size: file.size, mtimeMs: file.mtimeMs, ino: file.ino }
    const blocks = this.unwritten.get(vpath) ?? (this.sql.blocks.get(vpath) as Buffer | undefined)
    if (blocks === undefined) return undefined
    return { sha1: file.sha1, blocks, size: file.size, mtimeMs: file.mtimeMs, ino: file.ino }
  }

  /** Records the digests of a version of a file (committed with the next batch). */
  put(vpath: string, physical: string, stat: FileStat, sha1: string, blocks: Buffer, mount: string | null = null): void {
    if (this.closed) return
    const file: IndexedFile = { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha1, mount }
    const before = this.all.get(vpath)
    if (before !== undefined) this.count(before.sha1, -1)
    this.count(sha1, 1)
    this.all.set(vpath, file)
    this.unwritten.set(vpath, blocks)
    this.queue({ kind: 'put', vpath, physical, file, blocks })
  }

  /** A published file disappeared: it leaves the index for the deletion log, with its last SHA-1. */
  remove(vpath: string, deletedAt: number): Deletion {
    const sha1 = this.all.get(vpath)?.sha1
    if (sha1 !== undefined) {
      this.count(sha1, -1)
      this.deletedDigests.delete(sha1)
      this.deletedDigests.set(sha1, deletedAt)
      // Bounded: the oldest go first (a rename is announced within moments of its deletion).
      if (this.deletedDigests.size > MAX_DELETED_DIGESTS) this.deletedDigests.delete(this.deletedDigests.keys().next().value!)
    }
    this.all.delete(vpath)
    this.unwritten.delete(vpath)
    if (!this.closed) this.queue({ kind: 'remove', vpath, deletedAt, sha1: sha1 ?? null })
    return sha1 === undefined ? { virtualPath: vpath, deletedAt } : { virtualPath: vpath, deletedAt, sha1 }
  }

  /** A file is published (again) under a path: it is no longer deleted. */
  reappeared(vpath: string): void {
    if (!this.closed) this.queue({ kind: 'reappeared', vpath })
  }

  /** The deletion logged for a path, if any. */
  deletion(vpath: string): Deletion | undefined {
    if (this.closed) return undefined
    this.flush()
    const row = this.sql.deletion.get(vpath) as Row | undefined
    return row && toDeletion(row)
  }

  /** Every deletion logged under a subscription (a normalized virtual path), by path. */
  deletionsUnder(subscription: string): Deletion[] {
    if (this.closed) return []
    this.flush()
    const rows = (
      subscription === '/'
        ? this.sql.allDeletions.all()
        : this.sql.deletionsUnder.all(subscription, `${subscription}/`, `${subscription}0`)
    ) as Row[]
    return rows.filter((row) => covers(subscription, row.vpath)).map(toDeletion)
  }

  /** Commits every queued write now, in one transaction. */
  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled)
    this.scheduled = undefined
    if (this.writes.length === 0) return
    const writes = this.writes
    this.writes = []
    this.unwritten.clear()
    try {
      this.store.transaction(() => {
        for (const write of writes) this.apply(write)
      })()
    } catch (error) {
      // Forget what could not be stored: those files are hashed again rather than served stale blocks.
      for (const write of writes) if (write.kind === 'put') this.all.delete(write.vpath)
      this.options.onError(error as Error)
    }
  }

  /** Commits what is queued; closes the database too when the index opened it. */
  close(): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    if (this.ownsStore) this.store.close()
  }

  private queue(write: Write): void {
    this.writes.push(write)
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined
      this.flush()
    })
  }

  private apply(write: Write): void {
    switch (write.kind) {
      case 'put': {
        const { file } = write
        this.sql.put.run(write.vpath, write.physical, file.size, file.mtimeMs, file.ino, file.sha1, write.blocks, file.mount)
        break
      }
      case 'remove':
        this.sql.removeFile.run(write.vpath)
        this.sql.logDeletion.run(write.vpath, write.deletedAt, write.sha1)
        break
      case 'reappeared':
        this.sql.forgetDeletion.run(write.vpath)
    }
  }
}

function toDeletion(row: Row): Deletion {
  return row.sha1 === null
    ? { virtualPath: row.vpath, deletedAt: row.deleted_at }
    : { virtualPath: row.vpath, deletedAt: row.deleted_at, sha1: row.sha1 }
}
