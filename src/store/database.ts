/**
 * The node's durable state: one SQLite database per node (`fmq.db` in its state directory),
 * shared by the server and the client of a node that is both (a relay). WAL mode with
 * `synchronous=NORMAL`: a kill -9 at any point leaves the database as of its last committed
 * transaction. The schema is versioned with `PRAGMA user_version` and migrated forward in
 * one transaction per step: a database from an older version is upgraded, never discarded.
 *
 * @packageDocumentation
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

import Database from 'better-sqlite3'

import { MIGRATIONS, type Migration } from './schema.js'

export type Store = Database.Database

/** The database file in a state directory. */
export const DATABASE_FILE = 'fmq.db'

/** The database is newer than this program: opening it would risk its data. */
export class StoreVersionError extends Error {
  override readonly name = 'StoreVersionError'
  readonly code = 'ERR_FMQ_STORE_VERSION'
  constructor(
    readonly path: string,
    readonly found: number,
    readonly known: number,
  ) {
    super(`${path} has schema version ${found}; this fmq knows up to ${known}: upgrade fmq`)
  }
}

/** The database could not be opened or migrated. */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError'
  readonly code = 'ERR_FMQ_STORE_OPEN'
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot open the state database ${path}: ${(options?.cause as Error | undefined)?.message ?? 'unknown error'}`, options)
  }
}

/**
 * Opens (creating it if needed) the node database of a state directory, or an in-memory
 * one for `':memory:'`, and migrates it to the newest schema.
 *
 * @example
 * ```ts
 * const db = openStore('/srv/inbox/.fmq')
 * db.prepare('SELECT count(*) AS n FROM server_files').get()
 * ```
 */
export function openStore(stateDir: string | ':memory:', migrations: readonly Migration[] = MIGRATIONS): Store {
  const path = stateDir === ':memory:' ? ':memory:' : join(stateDir, DATABASE_FILE)
  let db: Store | undefined
  try {
    if (stateDir !== ':memory:') mkdirSync(stateDir, { recursive: true, mode: 0o700 })
    db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    // With NORMAL, only a checkpoint syncs to disk, and on ext4 a sync also flushes every file
    // written since the last one: the default (every 1,000 pages) paid that every few hundred
    // received files. A checkpoint every 16,384 pages (64 MiB of WAL), and at close, instead.
    db.pragma('wal_autocheckpoint = 16384')
    // A relay's server and client share the file: wait for each other's short writes.
    db.pragma('busy_timeout = 5000')
    migrate(db, path, migrations)
    return db
  } catch (error) {
    db?.close()
    if (error instanceof StoreVersionError) throw error
    throw new StoreOpenError(path, { cause: error })
  }
}

/** The schema version of an open database. */
export function schemaVersion(db: Store): number {
  return db.pragma('user_version', { simple: true }) as number
}

/** Applies every migration newer than the database, each in its own transaction. */
export function migrate(db: Store, path: string, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  const from = schemaVersion(db)
  const known = migrations.at(-1)?.version ?? 0
  if (from > known) throw new StoreVersionError(path, from, known)
  for (const migration of migrations) {
    if (migration.version <= schemaVersion(db)) continue
    db.transaction(() => {
      db.exec(migration.up)
      db.pragma(`user_version = ${migration.version}`)
    }).immediate()
  }
  return { from, to: schemaVersion(db) }
}
