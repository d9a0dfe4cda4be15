/**
 * The inbox manifest: for every file the client knows in its inbox, the size and mtime it had
 * when its SHA-1 was taken. The RESYNC cache of a subscription comes from a stat-only walk of
 * that part of the inbox checked against it: a file whose size and mtime are unchanged is not
 * read again; a new or changed one is hashed (streaming) and recorded; a row whose file is
 * gone is dropped. A start over an unchanged inbox therefore reads no file content at all.
 *
 * Writes are queued and committed in one transaction on the next turn of the event loop: a
 * kill -9 before that costs only a rehash of those files at the next start, since a row is
 * only ever trusted when the file's size and mtime still match it.
 *
 * @packageDocumentation
 */
import { stat } from 'node:fs/promises'

import { DIGEST_HEX_LENGTH as DIGEST_LENGTH, type DigestAlgorithm, digestAlgorithm, hashFile } from '../fs/digest.js'
import { scanFolders, type ScannedFile, type ScannedNode } from '../fs/scan.js'
import { formatTreeValue } from '../protocol/extensions.js'
import type { Store } from '../store/database.js'
import { cacheRoot, stateLeftOut } from './cache.js'
import type { MutableStats } from './durable.js'
import { WriteBehind } from '../store/write-behind.js'

/** One file of the inbox as the manifest knows it. */
export interface ManifestEntry {
  /** Relative to the inbox, `"/"`-separated, no leading slash (`photos/a.jpg`). */
  readonly path: string
  readonly size: number
  /** The stat's `mtimeMs`, compared exactly. */
  readonly mtimeMs: number
  /** Lower-case hex: SHA-1 or XXH128, the algorithm of the server it was last judged with (the length tells). */
  readonly digest: string
}

interface Row {
  path: string
  size: number
  mtime_ms: number
  digest: string
}

/** A row as an array: path, size, mtime_ms, digest. */
type RawRow = [string, number, number, string]

/** A queued write: the last one for a path wins. */
type Pending =
  | { readonly op: 'upsert'; readonly entry: ManifestEntry }
  | { readonly op: 'delete' }
  /** Only if the row is still the one the walk saw: a delivery meanwhile is kept. */
  | { readonly op: 'delete-if'; readonly entry: ManifestEntry }

/** The `client_manifest` table, with queued writes. */
export class Manifest {
  private readonly pending = new Map<string, Pending>()
  private readonly behind = new WriteBehind(() => this.flush())
  private readonly statements

  constructor(
    private readonly db: Store,
    private readonly stats: MutableStats,
    private readonly onError: (error: Error) => void,
  ) {
    this.statements = {
      upsert: db.prepare<[string, number, number, string]>(
        'INSERT INTO client_manifest (path, size, mtime_ms, digest) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, digest = excluded.digest',
      ),
      remove: db.prepare<[string]>('DELETE FROM client_manifest WHERE path = ?'),
      removeIf: db.prepare<[string, number, number, string]>(
        'DELETE FROM client_manifest WHERE path = ? AND size = ? AND mtime_ms = ? AND digest = ?',
      ),
      get: db.prepare<[string], Row>('SELECT path, size, mtime_ms, digest FROM client_manifest WHERE path = ?'),
      all: db.prepare<[], Row>('SELECT path, size, mtime_ms, digest FROM client_manifest'),
      allRaw: db.prepare<[], RawRow>('SELECT path, size, mtime_ms, digest FROM client_manifest').raw(),
      bySha1: db.prepare<[string], Row>('SELECT path, size, mtime_ms, digest FROM client_manifest WHERE digest = ? LIMIT 16'),
      countUnder: db.prepare<[string, string, number], { n: number }>(
        'SELECT count(*) AS n FROM (SELECT 1 FROM client_manifest WHERE path >= ? AND path < ? LIMIT ?)',
      ),
      // Every path below `dir/`: they sort between "dir/" and "dir0" ("0" follows "/").
      underRaw: db.prepare<[string, string], RawRow>('SELECT path, size, mtime_ms, digest FROM client_manifest WHERE path >= ? AND path < ?').raw(),
    }
  }

  /**
   * Records a file (queued).
   *
   * @example
   * ```ts
   * manifest.record({ path: 'photos/a.jpg', size: 3, mtimeMs: stats.mtimeMs, sha1: digest })
   * ```
   */
  record(entry: ManifestEntry): void {
    this.queue(entry.path, { op: 'upsert', entry })
  }

  /** Forgets a file (queued). */
  forget(path: string): void {
    this.queue(path, { op: 'delete' })
  }

  /** The entry for a path, queued writes included. */
  get(path: string): ManifestEntry | undefined {
    this.flush()
    const row = this.statements.get.get(path)
    return row === undefined ? undefined : fromRow(row)
  }

  /**
   * Whether the manifest holds at least `count` files under a subscription (a cheap look before
   * a walk: a big cache is sent in parts).
   */
  holdsAtLeast(subscription: string, count: number): boolean {
    this.flush()
    const prefix = subscription === '/' ? '' : `${subscription.slice(1)}/`
    const row = this.statements.countUnder.get(prefix, prefix === '' ? '\u{10FFFF}' : `${prefix.slice(0, -1)}0`, count)
    return (row?.n ?? 0) >= count
  }

  /** Some of the entries holding this content (queued writes included). */
  withDigest(digest: string): ManifestEntry[] {
    this.flush()
    return this.statements.bySha1.all(digest).map(fromRow)
  }

  /** Every entry, queued writes included (for tests and tools). */
  entries(): ManifestEntry[] {
    this.flush()
    return this.statements.all.all().map(fromRow)
  }

  /** Commits the queued writes in one transaction now. */
  flush(): void {
    this.behind.cancel()
    if (this.pending.size === 0) return
    const writes = [...this.pending]
    this.pending.clear()
    if (!this.db.open) return
    const { upsert, remove, removeIf } = this.statements
    try {
      this.db.transaction(() => {
        for (const [path, write] of writes) {
          if (write.op === 'upsert') upsert.run(path, write.entry.size, write.entry.mtimeMs, write.entry.digest)
          else if (write.op === 'delete') remove.run(path)
          else removeIf.run(path, write.entry.size, write.entry.mtimeMs, write.entry.digest)
        }
      })()
    } catch (error) {
      // Lost writes only cost a rehash later: report, never throw into a transfer.
      this.onError(error instanceof Error ? error : new Error(String(error)))
    }
  }

  /** Flushes; nothing is queued after this. */
  close(): void {
    this.flush()
  }

  /**
   * The RESYNC cache of a subscription: `name=SHA-1` of every regular file under that part of
   * the inbox, keyed relative to the subscribed path (a relative key is joined to the
   * subscription), or by the subscription itself when it names one file. Symbolic links and
   * the state directory are left out; a part of the inbox that does not exist gives an empty
   * cache. Only new or changed files are read; the manifest is brought up to date on the way.
   * (A server that named QUICK gets `quickCacheParts` instead: no digests, nothing read.)
   *
   * @example
   * ```ts
   * await manifest.cacheFor('/in', '/in/.fmq', '/photos') // Map { '2024/a.jpg' => 'a9993e36...' }
   * ```
   */
  async cacheFor(
    inbox: string,
    stateDir: string,
    subscription: string,
    options: {
      signal?: AbortSignal
      tree?: boolean
      /** The digest the server judges by. Default SHA-1. */
      algorithm?: DigestAlgorithm
      /**
       * The algorithm is a guess (the server's extensions are not known yet): a file the
       * manifest knows unchanged, by a digest of the other algorithm, is left out rather than
       * read again.
       */
      guess?: boolean
    } = {},
  ): Promise<Map<string, string>> {
    const { signal, tree = false, algorithm = 'sha1', guess = false } = options
    const cache = new Map<string, string>()
    const at = await cacheRoot(inbox, stateDir, subscription)
    if (at === undefined) return cache
    const { root, stats: rootStats, stateDir: state, prefix } = at

    if (rootStats.isFile()) {
      const known = this.get(prefix)
      if (guess && known !== undefined && known.size === rootStats.size && known.mtimeMs === rootStats.mtimeMs && digestAlgorithm(known.digest) !== algorithm) return cache
      const digest = await this.digestOf(root, prefix, rootStats.size, rootStats.mtimeMs, known, algorithm, signal)
      if (digest !== undefined) cache.set(subscription, digest)
      return cache
    }
    if (!rootStats.isDirectory()) return cache

    // What the manifest holds under this directory; whatever the walk does not find is gone.
    // As raw rows ([path, size, mtime_ms, digest]): a rerun over 100,000 files makes no object per row.
    this.flush()
    const known = new Map<string, RawRow>()
    const rows = prefix === '' ? this.statements.allRaw.iterate() : this.statements.underRaw.iterate(`${prefix}/`, `${prefix}0`)
    for (const row of rows) known.set(row[0], row)

    const { exclude, inState } = stateLeftOut(root, state)
    // Mirroring the tree, directories and links are entries of the cache too (TREE=1 values).
    const onNode = (node: ScannedNode): void => {
      if (inState(node.physicalPath)) return
      cache.set(node.relativePath, formatTreeValue(node.kind === 'dir' ? { kind: 'dir', mode: node.mode } : { kind: 'link', target: node.target ?? '' }))
    }
    const scan = scanFolders(root, {
      portableLinks: false,
      followSymlinks: false,
      exclude,
      ...(signal === undefined ? {} : { signal }),
      ...(tree ? { onNode } : {}),
    })
    const value = (file: ScannedFile, digest: string): string =>
      tree ? formatTreeValue({ kind: 'complete', digest, mode: file.mode, mtimeMs: file.mtimeMs }) : digest
    for await (const folder of scan) {
      for (const file of folder) {
        if (inState(file.physicalPath)) continue
        const path = prefix === '' ? file.relativePath : `${prefix}/${file.relativePath}`
        const row = known.get(path)
        known.delete(path)
        // Unchanged (the common case of a rerun), with a digest in this server's algorithm: no promise, no read.
        if (row !== undefined && row[1] === file.size && row[2] === file.mtimeMs && (row[3].length === DIGEST_LENGTH[algorithm] || guess)) {
          if (row[3].length === DIGEST_LENGTH[algorithm]) cache.set(file.relativePath, value(file, row[3]))
          continue
        }
        const digest = await this.digestOf(file.physicalPath, path, file.size, file.mtimeMs, row && fromRaw(row), algorithm, signal)
        if (digest !== undefined) cache.set(file.relativePath, value(file, digest))
      }
    }
    for (const [path, row] of known) this.queue(path, { op: 'delete-if', entry: fromRaw(row) })
    return cache
  }

  /**
   * The digest in `algorithm` of one inbox file whose stat the caller took: from the manifest
   * when size and mtime match and it holds a digest of that algorithm, else hashed and recorded
   * (only if the file did not change while being read). Undefined when the file vanished meanwhile.
   */
  private async digestOf(
    physical: string,
    path: string,
    size: number,
    mtimeMs: number,
    known: ManifestEntry | undefined,
    algorithm: DigestAlgorithm,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    if (known !== undefined && known.size === size && known.mtimeMs === mtimeMs && digestAlgorithm(known.digest) === algorithm) return known.digest
    let hashed: { digest: string; bytes: number }
    try {
      hashed = await hashFile(physical, algorithm, signal === undefined ? {} : { signal })
    } catch (error) {
      if (isMissing(error)) {
        if (known !== undefined) this.queue(path, { op: 'delete-if', entry: known })
        return undefined
      }
      throw error
    }
    this.stats.bytesHashed += hashed.bytes
    const { digest } = hashed
    try {
      const after = await stat(physical)
      if (after.size === size && after.mtimeMs === mtimeMs && hashed.bytes === size) {
        this.record({ path, size, mtimeMs, digest })
      }
    } catch (error) {
      if (!isMissing(error)) throw error
    }
    return digest
  }

  private queue(path: string, write: Pending): void {
    this.pending.set(path, write)
    this.behind.queued(this.pending.size)
  }
}

function fromRaw([path, size, mtimeMs, digest]: RawRow): ManifestEntry {
  return { path, size, mtimeMs, digest }
}

function fromRow(row: Row): ManifestEntry {
  return { path: row.path, size: row.size, mtimeMs: row.mtime_ms, digest: row.digest }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
