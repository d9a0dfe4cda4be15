/**
 * The server's durable index of published files (tables `server_files` and
 * `server_deletions` of the node database): for each virtual path the stat its digests were
 * computed for, and its digest in each algorithm a client needed so far with what proves its
 * prefixes (fs/digest.ts): XXH128 for our clients, SHA-1 only once a reference peer needs it.
 * A file whose size, mtime and inode are unchanged is never read again for a digest the index
 * holds, across restarts too. Files that disappear are logged with their last digests, so a
 * mirroring client that was away learns of them.
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

import type { BlockDigests, DigestAlgorithm } from '../fs/digest.js'
import { covers } from '../fs/vpath.js'
import { RESUME_BLOCK } from '../protocol/extensions.js'
import { openStore, type Store } from '../store/database.js'
import { WriteBehind } from '../store/write-behind.js'

/** The part of a stat that identifies a version of a file's content. */
export interface FileStat {
  readonly size: number
  readonly mtimeMs: number
  readonly ino: number
}

/** The digest in one algorithm of one version of a file, as computed when it was read. */
export interface FileDigest {
  readonly algorithm: DigestAlgorithm
  /** The digest of the whole content, lower-case hex. */
  readonly digest: string
  /** What proves every prefix [0, k × RESUME_BLOCK), k = 1 .. floor(size / RESUME_BLOCK) (`prefixDigestOf`). */
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
  /** XXH128 of the last version we had indexed, when there was one. */
  readonly xxh128?: string
}

/** What the index holds in memory for a file: its digests, each null until needed once. */
export interface IndexedFile extends FileStat {
  readonly sha1: string | null
  readonly xxh128: string | null
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
  | {
      readonly kind: 'put'
      readonly vpath: string
      readonly physical: string
      readonly file: IndexedFile
      readonly algorithm: DigestAlgorithm
      readonly blocks: Buffer
      /** The row holds this version already, with the other algorithm's digest: only this one's columns are set. */
      readonly merge: boolean
    }
  | { readonly kind: 'remove'; readonly vpath: string; readonly deletedAt: number; readonly sha1: string | null; readonly xxh128: string | null }
  | { readonly kind: 'reappeared'; readonly vpath: string }

const NO_BLOCKS = Buffer.alloc(0)

/** Rows read per page by {@link FileIndex.loadInBackground}: a few milliseconds of work. */
const LOAD_PAGE = 2000

type Row = { vpath: string; deleted_at: number; sha1: string | null; xxh128: string | null }

/** A file's digest in one algorithm, as the index holds it in memory. */
export function digestOf(file: IndexedFile, algorithm: DigestAlgorithm): string | null {
  return algorithm === 'sha1' ? file.sha1 : file.xxh128
}

const sameStat = (a: FileStat, b: FileStat): boolean => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino

/**
 * The index of published files over a node database.
 *
 * @example
 * ```ts
 * const index = FileIndex.open('/srv/photos/.fmq')
 * const digest = index.fresh('/photos/a.jpg', await stat('/srv/photos/a.jpg'), 'xxh128')
 * if (digest === undefined) index.put('/photos/a.jpg', physical, stats, await hashFileWithBlocks(physical, { algorithm: 'xxh128' }), '/photos')
 * index.close()
 * ```
 */
export class FileIndex {
  /** What is loaded of the rows, and what changed since: read through {@link FileIndex.all} (every row) or {@link FileIndex.lookup} (one path). */
  private readonly files = new Map<string, IndexedFile>()
  /** Paths removed before every row was read: a page read later must not bring their rows back. */
  private readonly gone = new Set<string>()
  /** The last path loaded, rows being read in path order; undefined once every row is. */
  private loadedUpTo: string | undefined = ''
  private readonly options: Readonly<FileIndexOptions>
  private writes: Write[] = []
  /**
   * Published files per digest (either algorithm: the length tells them apart): whether some
   * content is published under another path (a copy). Counted at the first question, not at
   * open: most runs never ask.
   */
  private byDigest: Map<string, number> | undefined
  /** Digests of files deleted by this process, oldest first: the content of a file renamed away. */
  private readonly deletedDigests = new Map<string, number>()
  /** Block digests put but not committed yet, per algorithm, so reading them back needs no commit. */
  private readonly unwritten = { sha1: new Map<string, Buffer>(), xxh128: new Map<string, Buffer>() }
  private readonly behind = new WriteBehind(() => this.flush())
  private closed = false
  private readonly sql: {
    put: Record<DigestAlgorithm, Statement>
    merge: Record<DigestAlgorithm, Statement>
    removeFile: Statement
    logDeletion: Statement
    forgetDeletion: Statement
    blocks: Record<DigestAlgorithm, Statement>
    deletion: Statement
    deletionsUnder: Statement
    allDeletions: Statement
    page: Statement<[string, number], [string, number, number, number, string | null, string | null, string | null]>
    row: Statement<[string], [number, number, number, string | null, string | null, string | null]>
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
      put: {
        sha1: store.prepare(
          `INSERT OR REPLACE INTO server_files (vpath, physical, size, mtime_ms, ino, sha1, blocks, mount)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        xxh128: store.prepare(
          `INSERT OR REPLACE INTO server_files (vpath, physical, size, mtime_ms, ino, xxh128, xxh_blocks, mount)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
      },
      merge: {
        sha1: store.prepare('UPDATE server_files SET sha1 = ?, blocks = ? WHERE vpath = ?'),
        xxh128: store.prepare('UPDATE server_files SET xxh128 = ?, xxh_blocks = ? WHERE vpath = ?'),
      },
      removeFile: store.prepare('DELETE FROM server_files WHERE vpath = ?'),
      logDeletion: store.prepare('INSERT OR REPLACE INTO server_deletions (vpath, deleted_at, sha1, xxh128) VALUES (?, ?, ?, ?)'),
      forgetDeletion: store.prepare('DELETE FROM server_deletions WHERE vpath = ?'),
      blocks: {
        sha1: store.prepare('SELECT blocks FROM server_files WHERE vpath = ?').pluck(),
        xxh128: store.prepare('SELECT xxh_blocks FROM server_files WHERE vpath = ?').pluck(),
      },
      deletion: store.prepare('SELECT vpath, deleted_at, sha1, xxh128 FROM server_deletions WHERE vpath = ?'),
      // Everything strictly below "/a" sorts in ["/a/", "/a0"): "0" follows "/" in every collation of bytes.
      deletionsUnder: store.prepare(
        'SELECT vpath, deleted_at, sha1, xxh128 FROM server_deletions WHERE vpath = ? OR (vpath >= ? AND vpath < ?) ORDER BY vpath',
      ),
      allDeletions: store.prepare('SELECT vpath, deleted_at, sha1, xxh128 FROM server_deletions ORDER BY vpath'),
      // Keyset pages in the primary key's order: each page a query of its own, so the
      // connection is free for writes between pages.
      page: store
        .prepare<[string, number], [string, number, number, number, string | null, string | null, string | null]>(
          'SELECT vpath, size, mtime_ms, ino, sha1, xxh128, mount FROM server_files WHERE vpath > ? ORDER BY vpath LIMIT ?',
        )
        .raw(),
      row: store.prepare<[string], [number, number, number, string | null, string | null, string | null]>(
        'SELECT size, mtime_ms, ino, sha1, xxh128, mount FROM server_files WHERE vpath = ?',
      ).raw(),
    }
    store.prepare('DELETE FROM server_deletions WHERE deleted_at < ?').run(this.options.now() - this.options.retentionMs)
  }

  /** Every indexed file, the rows not read yet read now. */
  private get all(): Map<string, IndexedFile> {
    while (this.loadedUpTo !== undefined) this.loadPage(LOAD_PAGE * 20)
    return this.files
  }

  /**
   * What the index holds for one path, without reading every row first: a path changed or
   * removed since the index opened is answered from memory, any other path not read yet from
   * its row alone. A file changed in a tree of 100,000 is then sent, and its digest recorded,
   * at once, not after the whole index is read (0.7 s each here).
   */
  private lookup(vpath: string): IndexedFile | undefined {
    const loaded = this.files.get(vpath)
    if (loaded !== undefined || this.loadedUpTo === undefined || this.closed || this.gone.has(vpath)) return loaded
    const row = this.sql.row.get(vpath)
    if (row === undefined) return undefined
    const [size, mtimeMs, ino, sha1, xxh128, mount] = row
    return { size, mtimeMs, ino, sha1, xxh128, mount }
  }

  /** Reads the next page of rows; a path changed or removed meanwhile keeps what memory says (nothing newer is overwritten). */
  private loadPage(limit: number): void {
    if (this.loadedUpTo === undefined) return
    if (this.closed) {
      this.loadedUpTo = undefined
      return
    }
    const rows = this.sql.page.all(this.loadedUpTo, limit)
    // A path changed (in memory already) or removed before its row was read is newer than the row.
    for (const [vpath, size, mtimeMs, ino, sha1, xxh128, mount] of rows) {
      if (!this.files.has(vpath) && !this.gone.has(vpath)) this.files.set(vpath, { size, mtimeMs, ino, sha1, xxh128, mount })
    }
    this.loadedUpTo = rows.length < limit ? undefined : rows[rows.length - 1]![0]
    if (this.loadedUpTo === undefined) this.gone.clear()
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
   * Whether content of this digest (either algorithm) is known under another path than
   * `vpath`: published there, or deleted there lately (by this process). A client that mirrored
   * it may hold it (a file renamed or copied), and can be told to make the file from it rather
   * than be sent it.
   */
  contentElsewhere(digest: string, vpath: string): boolean {
    const file = this.all.get(vpath)
    const here = file !== undefined && (file.sha1 === digest || file.xxh128 === digest) ? 1 : 0
    if (this.byDigest === undefined) {
      this.byDigest = new Map()
      for (const file of this.all.values()) this.countFile(file, 1)
    }
    return (this.byDigest.get(digest) ?? 0) > here || this.deletedDigests.has(digest)
  }

  /** Keeps {@link FileIndex.byDigest} counted, once it is. */
  private countFile(file: IndexedFile, delta: 1 | -1): void {
    if (this.byDigest === undefined) return
    for (const digest of [file.sha1, file.xxh128]) {
      if (digest === null) continue
      const count = (this.byDigest.get(digest) ?? 0) + delta
      if (count > 0) this.byDigest.set(digest, count)
      else this.byDigest.delete(digest)
    }
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

  /** Whether every row is read into memory (a question about one path reads only its row until then). */
  get complete(): boolean {
    return this.loadedUpTo === undefined
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
    return this.lookup(vpath)
  }

  /**
   * Whether the index holds this version of the file (no query): with a digest in `algorithm`,
   * when one is given, else in either.
   */
  known(vpath: string, stat: FileStat, algorithm?: DigestAlgorithm): boolean {
    const file = this.lookup(vpath)
    return file !== undefined && sameStat(file, stat) && (algorithm === undefined || digestOf(file, algorithm) !== null)
  }

  /** The digest in `algorithm` of this version of the file, or undefined when it must be read again. */
  fresh(vpath: string, stat: FileStat, algorithm: DigestAlgorithm): FileDigest | undefined {
    const file = this.lookup(vpath)
    if (file === undefined || !sameStat(file, stat) || this.closed) return undefined
    const digest = digestOf(file, algorithm)
    if (digest === null) return undefined
    const version = { algorithm, digest, size: file.size, mtimeMs: file.mtimeMs, ino: file.ino }
    // A file shorter than a block has no block digests: no query for the many small files.
    if (file.size < RESUME_BLOCK) return { ...version, blocks: NO_BLOCKS }
    const blocks = this.unwritten[algorithm].get(vpath) ?? (this.sql.blocks[algorithm].get(vpath) as Buffer | null | undefined)
    if (blocks === undefined || blocks === null) return undefined
    return { ...version, blocks }
  }

  /**
   * Records the digest in one algorithm of a version of a file (committed with the next
   * batch); the other algorithm's is kept when the version is the one indexed, else dropped.
   */
  put(vpath: string, physical: string, stat: FileStat, digests: Pick<BlockDigests, 'algorithm' | 'digest' | 'blocks'>, mount: string | null = null): void {
    if (this.closed) return
    const { algorithm, digest, blocks } = digests
    const before = this.lookup(vpath)
    const merge = before !== undefined && sameStat(before, stat)
    const file: IndexedFile = {
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      ino: stat.ino,
      sha1: algorithm === 'sha1' ? digest : merge ? before.sha1 : null,
      xxh128: algorithm === 'xxh128' ? digest : merge ? before.xxh128 : null,
      mount,
    }
    if (before !== undefined) this.countFile(before, -1)
    this.countFile(file, 1)
    this.files.set(vpath, file)
    this.gone.delete(vpath)
    this.unwritten[algorithm].set(vpath, blocks)
    if (!merge) this.unwritten[algorithm === 'sha1' ? 'xxh128' : 'sha1'].delete(vpath)
    this.queue({ kind: 'put', vpath, physical, file, algorithm, blocks, merge })
  }

  /** A published file disappeared: it leaves the index for the deletion log, with its last digests. */
  remove(vpath: string, deletedAt: number): Deletion {
    const file = this.lookup(vpath)
    if (file !== undefined) {
      this.countFile(file, -1)
      for (const digest of [file.sha1, file.xxh128]) {
        if (digest === null) continue
        this.deletedDigests.delete(digest)
        this.deletedDigests.set(digest, deletedAt)
      }
      // Bounded: the oldest go first (a rename is announced within moments of its deletion).
      while (this.deletedDigests.size > MAX_DELETED_DIGESTS) this.deletedDigests.delete(this.deletedDigests.keys().next().value!)
    }
    this.files.delete(vpath)
    if (this.loadedUpTo !== undefined) this.gone.add(vpath)
    this.unwritten.sha1.delete(vpath)
    this.unwritten.xxh128.delete(vpath)
    const sha1 = file?.sha1 ?? null
    const xxh128 = file?.xxh128 ?? null
    if (!this.closed) this.queue({ kind: 'remove', vpath, deletedAt, sha1, xxh128 })
    return toDeletion({ vpath, deleted_at: deletedAt, sha1, xxh128 })
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
    this.behind.cancel()
    if (this.writes.length === 0) return
    const writes = this.writes
    this.writes = []
    this.unwritten.sha1.clear()
    this.unwritten.xxh128.clear()
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
    this.behind.queued(this.writes.length)
  }

  private apply(write: Write): void {
    switch (write.kind) {
      case 'put': {
        const { file, algorithm } = write
        if (write.merge) this.sql.merge[algorithm].run(digestOf(file, algorithm), write.blocks, write.vpath)
        else this.sql.put[algorithm].run(write.vpath, write.physical, file.size, file.mtimeMs, file.ino, digestOf(file, algorithm), write.blocks, file.mount)
        break
      }
      case 'remove':
        this.sql.removeFile.run(write.vpath)
        this.sql.logDeletion.run(write.vpath, write.deletedAt, write.sha1, write.xxh128)
        break
      case 'reappeared':
        this.sql.forgetDeletion.run(write.vpath)
    }
  }
}

function toDeletion(row: Row): Deletion {
  return {
    virtualPath: row.vpath,
    deletedAt: row.deleted_at,
    ...(row.sha1 === null ? {} : { sha1: row.sha1 }),
    ...(row.xxh128 === null ? {} : { xxh128: row.xxh128 }),
  }
}
