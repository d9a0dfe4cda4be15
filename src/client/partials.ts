/**
 * Files being received that are worth resuming (at least {@link RESUME_BLOCK} octets): one row
 * per server and name in `client_partials`, with what the server announced of the file; the
 * content is the partial file itself. A row outlives the conversation, the process and a
 * kill -9; it goes when the file is delivered, discarded or deleted, or when a new transfer of
 * that name starts over at offset 0.
 *
 * On a new conversation the client offers each covered partial to the server as a cache entry
 * `name=SHA1@OFFSET` (src/protocol/extensions.ts), OFFSET being the largest block boundary the
 * partial file reaches and SHA1 the digest of those OFFSET octets, read back from disk; the
 * hash state is kept so the transfer can go on from there and still be checked as a whole.
 *
 * @packageDocumentation
 */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream, readdirSync, unlinkSync } from 'node:fs'
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'

import { type ContentHash, createContentHash, type DigestAlgorithm, SHA1_READ_BYTES } from '../fs/digest.js'
import { UnsafeNameError } from '../fs/errors.js'
import { inboxSegments } from '../fs/inbox.js'
import { formatPartialEntry, resumeOffset } from '../protocol/extensions.js'
import type { Store } from '../store/database.js'
import type { MutableStats } from './durable.js'

/** One partial file, as recorded. */
export interface PartialRecord {
  readonly endpoint: string
  /** The CHEEZBURGER filename, exactly as the server sent it. */
  readonly name: string
  /** The partial file. */
  readonly temp: string
  /** What the server announced (headers), when it did. */
  readonly size: number | undefined
  readonly mtimeMs: number | undefined
  readonly mode: number | undefined
  /** The digest the server announced, SHA-1 or XXH128. */
  readonly digest: string | undefined
}

interface Row {
  endpoint: string
  name: string
  temp: string
  size: number | null
  mtime_ms: number | null
  mode: number | null
  digest: string | null
}

/**
 * The `client_partials` table. A record is written at once: the row must survive a kill -9
 * right after. Removals are queued and committed together on the next turn of the event loop
 * (or before any read): a row that outlives its file after a kill -9 only costs a failed
 * offer, which drops it. The keys of all rows are kept in memory, so forgetting a name that
 * has no row (every small file delivered) costs no statement.
 */
export class Partials {
  private readonly statements
  /** `endpoint\nname` of every row, queued removals already left out. */
  private readonly keys = new Set<string>()
  /** Removals not committed yet, as [endpoint, name]. */
  private readonly removals = new Map<string, readonly [string, string]>()
  private scheduled: NodeJS.Immediate | undefined

  /** @param onError - a batch of removals could not be committed (the rows go at the next offer). */
  constructor(
    private readonly db: Store,
    private readonly onError: (error: Error) => void = () => undefined,
  ) {
    this.statements = {
      upsert: db.prepare<[string, string, string, number | null, number | null, number | null, string | null]>(
        'INSERT INTO client_partials (endpoint, name, temp, size, mtime_ms, mode, digest) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (endpoint, name) DO UPDATE SET temp = excluded.temp, size = excluded.size, ' +
          'mtime_ms = excluded.mtime_ms, mode = excluded.mode, digest = excluded.digest',
      ),
      remove: db.prepare<[string, string]>('DELETE FROM client_partials WHERE endpoint = ? AND name = ?'),
      get: db.prepare<[string, string], Row>('SELECT * FROM client_partials WHERE endpoint = ? AND name = ?'),
      list: db.prepare<[string], Row>('SELECT * FROM client_partials WHERE endpoint = ? ORDER BY name'),
      temps: db.prepare<[], { temp: string }>('SELECT temp FROM client_partials'),
    }
    const keys = db.prepare<[], { endpoint: string; name: string }>('SELECT endpoint, name FROM client_partials').all()
    for (const { endpoint, name } of keys) this.keys.add(key(endpoint, name))
  }

  /**
   * Deletes the partial files in `folder` that no row names: files too small to resume, left
   * by a conversation that ended with a kill -9. Run before any transfer starts.
   */
  sweep(folder: string): number {
    const kept = new Set(this.statements.temps.all().map((row) => row.temp))
    let removed = 0
    let names: string[]
    try {
      names = readdirSync(folder)
    } catch {
      return 0 // no partial files yet
    }
    for (const name of names) {
      const path = join(folder, name)
      if (!name.endsWith('.part') || kept.has(path)) continue
      try {
        unlinkSync(path)
        removed++
      } catch {
        // gone already, or not ours to remove: leave it
      }
    }
    return removed
  }

  /**
   * Records (or updates) a partial file.
   *
   * @example
   * ```ts
   * partials.record({ endpoint, name: '/big.bin', temp, size: 5e6, mtimeMs: undefined, mode: undefined, digest })
   * ```
   */
  record(partial: PartialRecord): void {
    if (!this.db.open) return
    const { endpoint, name, temp, size, mtimeMs, mode, digest } = partial
    const k = key(endpoint, name)
    // A removal queued earlier must not undo this row when it is committed.
    this.removals.delete(k)
    this.statements.upsert.run(endpoint, name, temp, size ?? null, mtimeMs ?? null, mode ?? null, digest ?? null)
    this.keys.add(k)
  }

  /** Forgets a partial file (queued); nothing at all when no row names it. */
  remove(endpoint: string, name: string): void {
    if (!this.db.open) return
    const k = key(endpoint, name)
    if (!this.keys.delete(k)) return
    this.removals.set(k, [endpoint, name])
    if (this.scheduled !== undefined) return
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined
      this.flush()
    })
    // Never keeps a process alive on its own; close() flushes what is left.
    this.scheduled.unref()
  }

  /** Whether a row names this partial file (no query). */
  has(endpoint: string, name: string): boolean {
    return this.db.open && this.keys.has(key(endpoint, name))
  }

  get(endpoint: string, name: string): PartialRecord | undefined {
    if (!this.db.open || !this.keys.has(key(endpoint, name))) return undefined
    this.flush()
    const row = this.statements.get.get(endpoint, name)
    return row === undefined ? undefined : fromRow(row)
  }

  /** Every partial file of one server. */
  list(endpoint: string): PartialRecord[] {
    if (!this.db.open) return []
    this.flush()
    return this.statements.list.all(endpoint).map(fromRow)
  }

  /** Commits the queued removals in one transaction now. */
  flush(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled)
    this.scheduled = undefined
    if (this.removals.size === 0 || !this.db.open) return
    const removals = [...this.removals.values()]
    this.removals.clear()
    const { remove } = this.statements
    try {
      this.db.transaction(() => {
        for (const [endpoint, name] of removals) remove.run(endpoint, name)
      })()
    } catch (error) {
      // Never thrown into a transfer: a row left behind is dropped when its offer fails.
      this.onError(error instanceof Error ? error : new Error(String(error)))
    }
  }

  /** Flushes; nothing is queued after this. */
  close(): void {
    this.flush()
  }
}

function key(endpoint: string, name: string): string {
  return `${endpoint}\n${name}`
}

/**
 * The virtual path a recorded name stands for (`"/"` + its safe segments), or undefined for a
 * name the inbox would refuse anyway.
 *
 * @example
 * ```ts
 * partialVirtualPath('//photos/big.bin') // '/photos/big.bin'
 * ```
 */
export function partialVirtualPath(name: string): string | undefined {
  try {
    return '/' + inboxSegments(name).join('/')
  } catch (error) {
    if (error instanceof UnsafeNameError) return undefined
    throw error
  }
}

/** A partial file ready to go on at `offset`. */
export interface ResumePoint {
  readonly offset: number
  /** The digest (the server's algorithm) fed with the first `offset` octets; the transfer goes on feeding it. */
  readonly hash: ContentHash
  /** The cache value offering it: `DIGEST@OFFSET`. */
  readonly entry: string
}

/**
 * Reads the first block-aligned part of a partial file back and hashes it; undefined when the
 * file holds less than one block. Throws when the file is missing, is not a regular file, or
 * shrinks while being read.
 *
 * @example
 * ```ts
 * const point = await hashPrefix('/in/.fmq/partial/ab12.part', stats)
 * cache.set('/big.bin', point.entry) // 'a999...@2097152'
 * ```
 */
export async function hashPrefix(path: string, stats: MutableStats, algorithm: DigestAlgorithm = 'sha1'): Promise<ResumePoint | undefined> {
  const info = await lstat(path)
  if (!info.isFile()) throw new Error(`${path} is not a regular file`)
  const offset = resumeOffset(info.size)
  if (offset === 0) return undefined
  const hash = createContentHash(algorithm)
  let read = 0
  const stream = createReadStream(path, { start: 0, end: offset - 1, highWaterMark: SHA1_READ_BYTES })
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk)
    read += chunk.length
    stats.bytesHashed += chunk.length
  }
  if (read !== offset) throw new Error(`${path} shrank while it was read`)
  return { offset, hash, entry: formatPartialEntry(hash.copy().digest(), offset) }
}

function fromRow(row: Row): PartialRecord {
  return {
    endpoint: row.endpoint,
    name: row.name,
    temp: row.temp,
    size: row.size ?? undefined,
    mtimeMs: row.mtime_ms ?? undefined,
    mode: row.mode ?? undefined,
    digest: row.digest ?? undefined,
  }
}
