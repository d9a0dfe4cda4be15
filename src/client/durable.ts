/**
 * The client's durable state: the node database (src/store/database.ts) of its state
 * directory, opened once per client at `connect()`, with the two tables the client owns, the
 * inbox manifest (manifest.ts) and the partial files being received (partials.ts).
 *
 * @packageDocumentation
 */
import { join } from 'node:path'

import { openStore, type Store } from '../store/database.js'
import { Manifest } from './manifest.js'
import { PARTIAL_DIR } from './options.js'
import { Partials } from './partials.js'

/**
 * Counters a test or an operator can read on `client.stats`.
 *
 * @example
 * ```ts
 * await client.subscribe('/')
 * console.log(client.stats.bytesHashed) // 0 on a restart over an unchanged inbox
 * ```
 */
export interface ClientStats {
  /**
   * Octets read back from disk to hash them: inbox files the manifest did not know (or that
   * changed) while building a RESYNC cache, and prefixes of partial files to resume. Content
   * hashed as it arrives is not counted.
   */
  readonly bytesHashed: number
  /** Partial files a server continued from where an earlier conversation left them. */
  readonly resumes: number
  /**
   * Folders asked for again entry by entry because their sum differed from the server's
   * (SUMS, operation DIFFERS): 0 on a rerun over an unchanged mirror.
   */
  readonly foldersAskedAgain: number
}

/** The same counters, as the client's internals update them. */
export interface MutableStats {
  bytesHashed: number
  resumes: number
  foldersAskedAgain: number
}

/** The node database of one state directory and the client's views of it. */
export class DurableState {
  readonly manifest: Manifest
  readonly partials: Partials
  private readonly db: Store

  /**
   * Opens (creating and migrating it if needed) `<stateDir>/fmq.db`. Throws StoreOpenError or
   * StoreVersionError (src/store/database.ts).
   */
  constructor(
    readonly stateDir: string,
    readonly stats: MutableStats,
    onError: (error: Error) => void,
  ) {
    this.db = openStore(stateDir)
    try {
      this.manifest = new Manifest(this.db, stats, onError)
      this.partials = new Partials(this.db, onError)
      this.partials.sweep(join(stateDir, PARTIAL_DIR))
    } catch (error) {
      this.db.close()
      throw error
    }
  }

  /** Set by close(), also when the database is left open for the process's exit. */
  private closing = false

  get open(): boolean {
    return this.db.open && !this.closing
  }

  /**
   * Writes what is queued and closes the database; later calls do nothing. With `exiting` (the
   * process exits next), the database stays open until the process ends: closing it would
   * checkpoint its write-ahead log, and that checkpoint's fsync waits, on ext4, for the
   * writeback of every file just renamed over another (100 ms after a 256 MiB one). The log
   * stays beside the database, committed, and the next open folds it in, as after a kill.
   */
  close(options: { readonly exiting?: boolean } = {}): void {
    if (!this.open) return
    this.closing = true
    try {
      this.partials.close()
    } finally {
      this.manifest.close()
      if (options.exiting === true) leftOpen.push(this.db)
      else this.db.close()
    }
  }
}

/** Databases left for the process's exit to end: kept from the collector, which would close (and checkpoint) them. */
const leftOpen: Store[] = []
