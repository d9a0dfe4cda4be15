/**
 * The node database: created in WAL mode at the newest schema version; an older database
 * migrated forward with its rows kept; a newer one refused and left as it was; and a
 * writer killed with SIGKILL at any point leaves a sound database holding every transaction
 * it reported committed, each whole.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'

import { DATABASE_FILE, StoreVersionError, openStore, schemaVersion } from '../../src/store/database.js'
import { MIGRATIONS } from '../../src/store/schema.js'

const LATEST = MIGRATIONS.at(-1)!.version
/** Rows per transaction of test/peers/store-writer.ts. */
const WRITER_ROWS = 8
const writer = fileURLToPath(new URL('../peers/store-writer.ts', import.meta.url))

const sha1 = (path: string): string => createHash('sha1').update(readFileSync(path)).digest('hex')

describe('store: the node database', () => {
  let dir: string
  let serial = 0
  const stateDir = (): string => join(dir, `state${serial++}`)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-store-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('openStore creates fmq.db in WAL mode at the newest schema version', () => {
    const state = stateDir()
    const db = openStore(state)
    try {
      assert.ok(existsSync(join(state, DATABASE_FILE)))
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal')
      assert.equal(schemaVersion(db), LATEST)
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all()
      assert.deepEqual(tables, ['client_manifest', 'client_partials', 'server_deletions', 'server_files'])
    } finally {
      db.close()
    }
    const again = openStore(state)
    assert.equal(schemaVersion(again), LATEST, 'reopening changes nothing')
    again.close()
  })

  test('a version 1 database holding rows is migrated to the newest version, rows kept', () => {
    const state = stateDir()
    const old = openStore(state, MIGRATIONS.slice(0, 1))
    assert.equal(schemaVersion(old), 1)
    old.prepare(`INSERT INTO server_files VALUES ('/a.txt', '/srv/a.txt', 5, 1234.5, 42, 'ab', x'0102')`).run()
    old.prepare(`INSERT INTO client_manifest VALUES ('a.txt', 5, 1234.5, 'ab')`).run()
    old.close()

    const db = openStore(state)
    try {
      assert.equal(schemaVersion(db), LATEST)
      const file = db.prepare('SELECT * FROM server_files').all()
      assert.deepEqual(file, [
        { vpath: '/a.txt', physical: '/srv/a.txt', size: 5, mtime_ms: 1234.5, ino: 42, sha1: 'ab', blocks: Buffer.from([1, 2]), mount: null, xxh128: null, xxh_blocks: null },
      ])
      assert.deepEqual(db.prepare('SELECT * FROM client_manifest').all(), [{ path: 'a.txt', size: 5, mtime_ms: 1234.5, digest: 'ab' }])
      assert.deepEqual(db.prepare('SELECT * FROM server_deletions').all(), [], 'migration 2 applied')
    } finally {
      db.close()
    }
  })

  test('a database from a newer fmq is refused with StoreVersionError and left untouched', () => {
    const state = stateDir()
    const newer = openStore(state)
    newer.prepare(`INSERT INTO server_deletions VALUES ('/x', 1, NULL, NULL)`).run()
    newer.pragma(`user_version = ${LATEST + 1}`)
    newer.close()
    const file = join(state, DATABASE_FILE)
    const before = sha1(file)

    assert.throws(
      () => openStore(state),
      (error: unknown) => error instanceof StoreVersionError && error.found === LATEST + 1 && error.known === LATEST && error.code === 'ERR_FMQ_STORE_VERSION',
    )
    assert.equal(sha1(file), before, 'the database file is unchanged')
    assert.ok(!existsSync(`${file}-wal`) || readFileSync(`${file}-wal`).length === 0, 'nothing waits in the WAL')
  })

  test('kill -9 at any point: the database is sound and holds every transaction reported committed, whole', async () => {
    const state = stateDir()
    const reported = new Set<number>()
    for (const killAfter of [1, 4, 17, 60, 150]) {
      const child = spawn(process.execPath, ['--import', 'tsx', writer, state], { stdio: ['ignore', 'pipe', 'inherit'] })
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
      let seen = 0
      for await (const line of createInterface({ input: child.stdout! })) {
        const committed = /^committed (\d+)$/.exec(line)
        if (committed === null) continue
        reported.add(Number(committed[1]))
        if (++seen === killAfter) child.kill('SIGKILL')
      }
      assert.equal(await exited, 'SIGKILL')

      const db = openStore(state)
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `after ${killAfter} commits`)
        const counts = new Map(
          (db.prepare('SELECT size, count(*) AS n FROM server_files GROUP BY size').raw().all() as Array<[number, number]>),
        )
        for (const n of reported) assert.equal(counts.get(n), WRITER_ROWS, `transaction ${n} was reported committed`)
        for (const [n, rows] of counts) assert.equal(rows, WRITER_ROWS, `transaction ${n} is whole`)
      } finally {
        db.close()
      }
    }
    assert.ok(reported.size >= 1 + 4 + 17 + 60 + 150)
  })
})
