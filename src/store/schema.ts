/**
 * The node database's schema, as numbered migrations. Never edit a released migration: add
 * the next one. `openStore` applies those newer than the database's `user_version`.
 *
 * @packageDocumentation
 */

export interface Migration {
  /** The `user_version` once applied; strictly increasing from 1. */
  readonly version: number
  readonly title: string
  /** SQL run in one transaction. */
  readonly up: string
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    title: 'server index, client manifest and partial files',
    up: `
      -- Server: every published file, with the digests computed when it was last read.
      -- mtime_ms is the stat's mtimeMs (a double, compared exactly); blocks holds the 20-octet
      -- SHA-1 of every prefix [0, k × RESUME_BLOCK) for k = 1 .. floor(size / RESUME_BLOCK).
      CREATE TABLE server_files (
        vpath    TEXT PRIMARY KEY,
        physical TEXT NOT NULL,
        size     INTEGER NOT NULL,
        mtime_ms REAL NOT NULL,
        ino      INTEGER NOT NULL,
        sha1     TEXT NOT NULL,
        blocks   BLOB NOT NULL
      ) WITHOUT ROWID;

      -- Client: what the inbox holds (path relative to the inbox, "/"-separated).
      CREATE TABLE client_manifest (
        path     TEXT PRIMARY KEY,
        size     INTEGER NOT NULL,
        mtime_ms REAL NOT NULL,
        sha1     TEXT NOT NULL
      ) WITHOUT ROWID;

      -- Client: files being received, per server and name as the server sends it, with what
      -- the server announced of them; the content is in temp.
      CREATE TABLE client_partials (
        endpoint TEXT NOT NULL,
        name     TEXT NOT NULL,
        temp     TEXT NOT NULL,
        size     INTEGER,
        mtime_ms REAL,
        mode     INTEGER,
        sha1     TEXT,
        PRIMARY KEY (endpoint, name)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    title: 'server deletion log',
    up: `
      -- Server: published files that disappeared, so that a mirroring client that was away
      -- learns of them (ICANHAZ option MIRROR=1).
      CREATE TABLE server_deletions (
        vpath      TEXT PRIMARY KEY,
        deleted_at INTEGER NOT NULL,
        sha1       TEXT
      ) WITHOUT ROWID;
      CREATE INDEX server_deletions_by_time ON server_deletions (deleted_at);
    `,
  },
  {
    version: 3,
    title: 'server index: the mount that published each file',
    up: `
      -- Server: the virtual path of the mount a file was found in. With overlapping mounts
      -- published one after the other, only the file's own mount may conclude, from its scan,
      -- that the file was deleted while the server was down. NULL for rows from version 2:
      -- then whichever mount owns the path decides.
      ALTER TABLE server_files ADD COLUMN mount TEXT;
    `,
  },
  {
    version: 4,
    title: 'client manifest by digest',
    up: `
      -- Client: the files holding some content, so a file renamed or copied at the source
      -- (offered by digest, operation ATTRIBUTES) is made from a local copy, not sent again.
      CREATE INDEX client_manifest_by_sha1 ON client_manifest (sha1);
    `,
  },
  {
    version: 5,
    title: 'XXH128 beside SHA-1: the server index holds either, each computed when first needed; client digests of either',
    up: `
      -- Server: a file's digests in either algorithm, each NULL until a client needed it: XXH128
      -- (the fast digest our own clients negotiate) with xxh_blocks, the 16-octet XXH128 of every
      -- RESUME_BLOCK block; SHA-1 (what reference peers expect) with blocks as in version 1.
      -- SHA-1 loses NOT NULL, so the table is made again; rows of version 4 keep their SHA-1.
      CREATE TABLE server_files_5 (
        vpath      TEXT PRIMARY KEY,
        physical   TEXT NOT NULL,
        size       INTEGER NOT NULL,
        mtime_ms   REAL NOT NULL,
        ino        INTEGER NOT NULL,
        sha1       TEXT,
        blocks     BLOB,
        mount      TEXT,
        xxh128     TEXT,
        xxh_blocks BLOB
      ) WITHOUT ROWID;
      INSERT INTO server_files_5 (vpath, physical, size, mtime_ms, ino, sha1, blocks, mount)
        SELECT vpath, physical, size, mtime_ms, ino, sha1, blocks, mount FROM server_files;
      DROP TABLE server_files;
      ALTER TABLE server_files_5 RENAME TO server_files;

      -- Server: the last XXH128 of a deleted file, sent on its delete to a client of ours.
      ALTER TABLE server_deletions ADD COLUMN xxh128 TEXT;

      -- Client: a digest in the algorithm of the server it came from, SHA-1 (40 hex digits) or
      -- XXH128 (32): the length says which. The index client_manifest_by_sha1 follows the column.
      ALTER TABLE client_manifest RENAME COLUMN sha1 TO digest;
      ALTER TABLE client_partials RENAME COLUMN sha1 TO digest;
    `,
  },
])
