/**
 * The server's durable index of published files: a restart over an unchanged tree reads no
 * content; a file changed while the server was down is read again, only it; deletions,
 * while down or seen live, are logged with the last SHA-1 and forgotten when the file comes
 * back; state directories are never published; an unwritable default state directory
 * falls back to an index in memory.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setImmediate as nextTurn } from 'node:timers/promises'

import { digestHex } from '../../src/fs/digest.js'
import { Server } from '../../src/server/index.js'
import { DELETION_RETENTION_MS, FileIndex } from '../../src/server/file-index.js'
import type { PublishedFile, Publisher } from '../../src/server/publisher.js'
import { StoreOpenError, openStore } from '../../src/store/database.js'
import { until } from '../fixtures/until.js'

const sha1 = (data: Buffer | string): string => createHash('sha1').update(data).digest('hex')
const xxh = (data: Buffer | string): string => digestHex('xxh128', data)

/** Resolves with the first event `name` about a path that satisfies `match`; rejects after `ms`. */
function nextEvent(publisher: Publisher, name: 'changed' | 'removed', match: (path: string) => boolean, ms = 10_000): Promise<void> {
  const events = publisher as unknown as EventEmitter
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      events.off(name, listener)
      reject(new Error(`timed out after ${ms} ms waiting for '${name}'`))
    }, ms)
    const listener = (arg: string | PublishedFile): void => {
      if (!match(typeof arg === 'string' ? arg : arg.virtualPath)) return
      clearTimeout(timer)
      events.off(name, listener)
      resolve()
    }
    events.on(name, listener)
  })
}

/** A tree of `count` small files, 100 per directory, written one after the other. */
async function makeTree(root: string, count: number): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    const dir = `d${Math.floor(i / 100)}`
    if (i % 100 === 0) await mkdir(join(root, dir), { recursive: true })
    const content = randomBytes(1 + (i % 200))
    await writeFile(join(root, dir, `f${i}.bin`), content)
    files.set(`/${dir}/f${i}.bin`, content)
  }
  return files
}

describe('server index: digests kept across restarts, deletion log', () => {
  let dir: string
  const servers: Server[] = []

  async function start(location: string, options: ConstructorParameters<typeof Server>[0] = {}): Promise<Server> {
    const server = new Server({ settle: 20, ...options })
    servers.push(server)
    await server.publish(location, '/')
    await server.publisher.whenIndexed()
    return server
  }

  async function stop(server: Server): Promise<void> {
    servers.splice(servers.indexOf(server), 1)
    await server.close()
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-index-'))
  })
  after(async () => {
    for (const server of servers) await server.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('a restart over an unchanged tree of 3,000 files reads no content; changes made while down are read, only them', async () => {
    const root = join(dir, 'tree')
    const files = await makeTree(root, 3000)
    const total = [...files.values()].reduce((sum, content) => sum + content.length, 0)

    const first = await start(root)
    assert.equal(first.publisher.size, 3000, '.fmq is not published')
    assert.equal(first.stats.filesHashed, 3000)
    assert.equal(first.stats.bytesHashed, total)
    assert.ok(existsSync(join(root, '.fmq', 'fmq.db')), 'the default state directory is <first published directory>/.fmq')
    const deletedContent = files.get('/d3/f300.bin')!
    await stop(first)

    const second = await start(root)
    assert.equal(second.publisher.stats.bytesHashed, 0, 'nothing read on the restart')
    assert.equal(second.publisher.stats.filesHashed, 0)
    assert.equal(second.publisher.size, 3000)
    // Digests come from the index, blocks and all, still without reading.
    const file = second.publisher.get('/d7/f777.bin')!
    const digest = await second.publisher.digest(file)
    assert.equal(digest.digest, xxh(files.get('/d7/f777.bin')!), 'the fast digest, what our clients use')
    assert.equal(digest.blocks.length, 0, 'no whole RESUME_BLOCK in a small file')
    assert.equal((await second.publisher.digest(file)).digest, digest.digest)
    assert.equal(second.stats.bytesHashed, 0)
    await stop(second)

    // While down: one file grows, one is only touched (same content, new mtime), one is new, one is deleted.
    const grown = Buffer.concat([files.get('/d1/f100.bin')!, Buffer.from('more')])
    await writeFile(join(root, 'd1', 'f100.bin'), grown)
    await utimes(join(root, 'd2', 'f200.bin'), new Date(), new Date(Date.now() - 3_600_000))
    await writeFile(join(root, 'd2', 'new.bin'), 'new')
    await unlink(join(root, 'd3', 'f300.bin'))

    const third = await start(root)
    assert.equal(third.stats.filesHashed, 3, 'the grown, the touched and the new file, nothing else')
    assert.equal(third.stats.bytesHashed, grown.length + files.get('/d2/f200.bin')!.length + 3)
    assert.equal((await third.publisher.digest(third.publisher.get('/d1/f100.bin')!)).digest, xxh(grown))
    const deletion = third.publisher.deletion('/d3/f300.bin')
    assert.ok(deletion, 'a file deleted while down is in the deletion log')
    assert.equal(deletion.xxh128, xxh(deletedContent), 'with its last digest')
    assert.equal(deletion.sha1, undefined, 'no SHA-1: no reference peer needed one')
    assert.ok(Math.abs(deletion.deletedAt - Date.now()) < 60_000)
    assert.deepEqual(third.publisher.deletionsUnder('/d3').map((d) => d.virtualPath), ['/d3/f300.bin'])
    assert.deepEqual(third.publisher.deletionsUnder('/d2'), [])
    await stop(third)

    // Once re-created, it leaves the log at the next start; and the log itself survives restarts.
    await writeFile(join(root, 'd3', 'f300.bin'), deletedContent)
    const fourth = await start(root)
    assert.equal(fourth.publisher.deletion('/d3/f300.bin'), undefined)
    assert.equal(fourth.stats.filesHashed, 1)
    await stop(fourth)
  })

  test('deletions seen live by the watcher are logged, and a re-created file leaves the log', async () => {
    const root = join(dir, 'live')
    await mkdir(join(root, 'sub'), { recursive: true })
    await writeFile(join(root, 'a.txt'), 'alpha')
    await writeFile(join(root, 'sub', 'b.txt'), 'bravo')
    await writeFile(join(root, 'sub', 'c.txt'), 'charlie')
    const server = await start(root, { stateDir: join(dir, 'live-state') })
    assert.ok(!existsSync(join(root, '.fmq')), 'an explicit stateDir is used instead of the default')

    const removed = nextEvent(server.publisher, 'removed', (path) => path === '/a.txt')
    const before = Date.now()
    await unlink(join(root, 'a.txt'))
    await removed
    const deletion = server.publisher.deletion('/a.txt')
    assert.ok(deletion)
    assert.equal(deletion.xxh128, xxh('alpha'))
    assert.ok(deletion.deletedAt >= before && deletion.deletedAt <= Date.now())

    // A whole directory: every file under it.
    const gone = Promise.all(['/sub/b.txt', '/sub/c.txt'].map((path) => nextEvent(server.publisher, 'removed', (p) => p === path)))
    await rm(join(root, 'sub'), { recursive: true })
    await gone
    assert.deepEqual(server.publisher.deletionsUnder('/sub').map((d) => [d.virtualPath, d.xxh128]), [
      ['/sub/b.txt', xxh('bravo')],
      ['/sub/c.txt', xxh('charlie')],
    ])
    assert.deepEqual(server.publisher.deletionsUnder('/').map((d) => d.virtualPath), ['/a.txt', '/sub/b.txt', '/sub/c.txt'])

    const back = nextEvent(server.publisher, 'changed', (path) => path === '/a.txt')
    await writeFile(join(root, 'a.txt'), 'alpha again')
    await back
    assert.equal(server.publisher.deletion('/a.txt'), undefined, 'a re-created file leaves the log')
    await server.publisher.whenIndexed()
    assert.equal((await server.publisher.digest(server.publisher.get('/a.txt')!)).digest, xxh('alpha again'))
    await stop(server)

    // All of it durable: the database says the same after close.
    const db = openStore(join(dir, 'live-state'))
    try {
      assert.deepEqual(db.prepare('SELECT vpath FROM server_deletions ORDER BY vpath').pluck().all(), ['/sub/b.txt', '/sub/c.txt'])
      assert.equal(db.prepare(`SELECT xxh128 FROM server_files WHERE vpath = '/a.txt'`).pluck().get(), xxh('alpha again'))
      assert.equal(db.prepare(`SELECT sha1 FROM server_files WHERE vpath = '/a.txt'`).pluck().get(), null, 'no SHA-1 until a reference peer needs one')
    } finally {
      db.close()
    }
  })

  test('state directories (.fmq) are never published, at the top or deeper, scanned or watched', async () => {
    const root = join(dir, 'relay-inbox')
    await mkdir(join(root, 'inner', '.fmq', 'partial'), { recursive: true })
    await writeFile(join(root, 'inner', '.fmq', 'partial', 'x.part'), 'partial')
    await writeFile(join(root, 'inner', 'real.txt'), 'real')
    await writeFile(join(root, '.fmqx'), 'a name that only starts like it is published')
    const server = await start(root)
    const published = [...server.publisher.under('/')].map((file) => file.virtualPath).sort()
    assert.deepEqual(published, ['/.fmqx', '/inner/real.txt'])

    const seen: string[] = []
    server.publisher.on('changed', (file) => seen.push(file.virtualPath))
    const marker = nextEvent(server.publisher, 'changed', (path) => path === '/marker.txt')
    await writeFile(join(root, '.fmq', 'junk'), 'state')
    await writeFile(join(root, 'inner', '.fmq', 'partial', 'y.part'), 'more')
    await writeFile(join(root, 'marker.txt'), 'after the state files')
    await marker
    await server.publisher.whenIndexed()
    assert.deepEqual(seen, ['/marker.txt'], 'writes under .fmq raise nothing')
    assert.equal(server.publisher.get('/.fmq/fmq.db'), undefined)
    await stop(server)
  })

  test('watch: false publishes what the scan found and watches nothing (fmq track --once)', async () => {
    const root = join(dir, 'snapshot')
    await mkdir(join(root, 'sub'), { recursive: true })
    await writeFile(join(root, 'sub', 'a.txt'), 'alpha')
    // In a process of its own: libuv opens its inotify instance at the first watch and keeps it.
    const script = `
      import { readdirSync, readlinkSync } from 'node:fs'
      import { Server } from ${JSON.stringify(new URL('../../src/server/index.ts', import.meta.url).href)}
      const inotify = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd) === 'anon_inode:inotify' } catch { return false } }).length
      const watch = process.argv[1] === 'true'
      const server = new Server({ stateDir: ${JSON.stringify(join(dir, 'snapshot-state'))}, watch })
      await server.publish(${JSON.stringify(root)}, '/')
      console.log(JSON.stringify({ files: [...server.publisher.under('/')].map((f) => f.virtualPath), dir: server.publisher.node('/sub') !== undefined, inotify: inotify() }))
      await server.close()`
    const run = (watch: boolean): { files: string[]; dir: boolean; inotify: number } =>
      JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, String(watch)], { encoding: 'utf8' }))
    assert.deepEqual(run(false), { files: ['/sub/a.txt'], dir: true, inotify: 0 })
    assert.deepEqual(run(true), { files: ['/sub/a.txt'], dir: true, inotify: 1 })
  })

  test('a burst of deletions: 10,000 files of 50 folders removed at once are all unpublished, one by one or as a tree', async () => {
    const root = join(dir, 'burst')
    await mkdir(join(root, 'keep'), { recursive: true })
    await writeFile(join(root, 'keep', 'k.txt'), 'kept')
    const doomed: string[] = []
    for (let d = 0; d < 50; d++) {
      await mkdir(join(root, 'gone', `d${d}`, 'deeper'), { recursive: true })
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const name = i % 2 === 0 ? `d${d}/f${i}.txt` : `d${d}/deeper/f${i}.txt`
          doomed.push(`/gone/${name}`)
          return writeFile(join(root, 'gone', name), `${d}-${i}`)
        }),
      )
    }
    const server = await start(root, { stateDir: join(dir, 'burst-state') })
    assert.equal(server.publisher.size, 10_001)
    // Every file, and the folders too (what a client that mirrors the tree is told).
    const left = new Set([...doomed, '/gone', '/gone/d3', '/gone/d3/deeper'])
    const allGone = new Promise<void>((resolve) => {
      server.publisher.on('removed', (path) => {
        left.delete(path)
        if (left.size === 0) resolve()
      })
    })
    // One file first (a path alone), then the whole tree at once.
    const started = Date.now()
    await unlink(join(root, 'gone', 'd0', 'f0.txt'))
    await rm(join(root, 'gone'), { recursive: true })
    await Promise.race([allGone, new Promise((_, reject) => setTimeout(() => reject(new Error(`${left.size} files still published`)), 60_000).unref())])
    console.log(`# 10,000 deletions unpublished in ${Date.now() - started} ms`)
    assert.deepEqual([...server.publisher.under('/')].map((file) => file.virtualPath), ['/keep/k.txt'])
    assert.equal(server.publisher.node('/gone/d3/deeper'), undefined)
    assert.equal(server.publisher.node('/gone'), undefined)
    assert.ok(server.publisher.node('/keep'))
    // A folder emptied and made again, with a file where a folder was: published as it is now.
    const back = nextEvent(server.publisher, 'changed', (path) => path === '/gone')
    await writeFile(join(root, 'gone'), 'a file now')
    await back
    assert.equal(server.publisher.get('/gone')?.size, 10)
    await stop(server)
  })

  test('an unwritable default state directory falls back to an index in memory, with a warning', async (t) => {
    const root = join(dir, 'read-only')
    await mkdir(root)
    await writeFile(join(root, 'a.txt'), 'alpha')
    // Root may write anywhere: make the directory immutable instead.
    const asRoot = process.getuid?.() === 0
    try {
      if (asRoot) execFileSync('chattr', ['+i', root], { stdio: 'ignore' })
      else await chmod(root, 0o555)
    } catch {
      t.skip('cannot make a directory unwritable here (root without chattr)')
      return
    }
    try {
      for (let run = 0; run < 2; run++) {
        const server = new Server({ settle: 20 })
        servers.push(server)
        const warnings: string[] = []
        server.on('log', (level, text) => level === 'warn' && warnings.push(text))
        await server.publish(root, '/')
        await server.publisher.whenIndexed()
        assert.equal(warnings.length, 1)
        assert.match(warnings[0]!, /kept in memory/)
        assert.equal(server.stats.filesHashed, 1, 'hashed at every start: nothing is durable')
        assert.equal((await server.publisher.digest(server.publisher.get('/a.txt')!)).digest, xxh('alpha'))
        await stop(server)
      }
      assert.ok(!existsSync(join(root, '.fmq')))
      // A state directory asked for explicitly is not silently replaced.
      assert.throws(() => new Server({ stateDir: join(root, 'state') }), StoreOpenError)
    } finally {
      if (asRoot) execFileSync('chattr', ['-i', root], { stdio: 'ignore' })
      else await chmod(root, 0o755)
    }
    assert.equal(await readFile(join(root, 'a.txt'), 'utf8'), 'alpha')
  })
})

describe('server index: FileIndex', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-file-index-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('writes are committed together shortly after, not one by one; what is put reads back at once', async () => {
    const state = join(dir, 'batch')
    const index = FileIndex.open(state)
    const other = openStore(state)
    try {
      const blocks = randomBytes(40)
      index.put('/a', '/srv/a', { size: 2_097_152, mtimeMs: 1.5, ino: 7 }, { algorithm: 'sha1', digest: 'aa', blocks: blocks }, '/')
      index.put('/b', '/srv/b', { size: 1, mtimeMs: 2, ino: 8 }, { algorithm: 'sha1', digest: 'bb', blocks: Buffer.alloc(0) }, '/')
      const count = () => other.prepare('SELECT count(*) FROM server_files').pluck().get()
      assert.equal(count(), 0, 'not committed within the turn')
      assert.deepEqual(index.fresh('/a', { size: 2_097_152, mtimeMs: 1.5, ino: 7 }, 'sha1')?.blocks, blocks)
      assert.equal(index.fresh('/a', { size: 2_097_152, mtimeMs: 1.5, ino: 8 }, 'sha1'), undefined, 'another inode is another file')
      await nextTurn()
      assert.equal(count(), 0, 'not committed at the next turn either: more writes may come')
      await until(() => count() === 2, 5000, 'the two writes committed')
      index.put('/c', '/srv/c', { size: 0, mtimeMs: 3, ino: 9 }, { algorithm: 'sha1', digest: 'cc', blocks: Buffer.alloc(0) })
      index.close()
      assert.equal(count(), 3, 'close commits what is queued')
    } finally {
      other.close()
    }
    const reopened = FileIndex.open(state)
    assert.equal(reopened.size, 3)
    assert.equal(reopened.get('/a')?.mount, '/')
    assert.equal(reopened.get('/c')?.mount, null)
    assert.deepEqual(reopened.fresh('/b', { size: 1, mtimeMs: 2, ino: 8 }, 'sha1'), { algorithm: 'sha1', digest: 'bb', blocks: Buffer.alloc(0), size: 1, mtimeMs: 2, ino: 8 })
    reopened.close()
  })

  test('a question about one path reads its row alone; all rows are read by a change, a count, or a page at a time; a change before they all are is kept', async () => {
    const state = join(dir, 'lazy')
    const first = FileIndex.open(state)
    for (let i = 0; i < 10_000; i++) first.put(`/f${String(i).padStart(5, '0')}`, `/srv/f${i}`, { size: i, mtimeMs: i, ino: i }, { algorithm: 'sha1', digest: `sha${i}`, blocks: Buffer.alloc(0) }, '/')
    first.close()
    // A question about one path reads that row alone (a changed file is served at once, not
    // after 100,000 rows); a count reads every row.
    const asked = FileIndex.open(state)
    assert.equal(asked.known('/f09999', { size: 9999, mtimeMs: 9999, ino: 9999 }), true)
    assert.equal(asked.known('/f09999', { size: 9999, mtimeMs: 1, ino: 9999 }), false, 'another mtime is another version')
    assert.equal(asked.fresh('/f05000', { size: 5000, mtimeMs: 5000, ino: 5000 }, 'sha1')?.digest, 'sha5000')
    assert.equal(asked.get('/nowhere'), undefined)
    assert.equal(asked.complete, false, 'questions about single paths read no other row')
    assert.equal(asked.size, 10_000)
    assert.equal(asked.complete, true)
    asked.close()
    // In the background, a page a turn; a change meanwhile reads the rest first and stands.
    const paged = FileIndex.open(state)
    let loaded = false
    const loading = paged.loadInBackground().then(() => (loaded = true))
    await nextTurn()
    await nextTurn()
    assert.equal(loaded, false, 'the rows take more than a turn: pages between other work')
    paged.put('/f00001', '/srv/f1', { size: 1, mtimeMs: 42, ino: 1 }, { algorithm: 'sha1', digest: 'new', blocks: Buffer.alloc(0) }, '/')
    paged.put('/f09998', '/srv/f9998', { size: 1, mtimeMs: 43, ino: 1 }, { algorithm: 'sha1', digest: 'newer', blocks: Buffer.alloc(0) }, '/')
    paged.remove('/f09997', 1)
    assert.equal(paged.complete, false, 'a change reads no other row')
    assert.equal(paged.get('/f09997'), undefined, 'removed, though its row is not read yet')
    await loading
    assert.equal(paged.size, 9_999)
    assert.equal(paged.get('/f00001')?.sha1, 'new', 'the change made while loading stands')
    assert.equal(paged.get('/f09998')?.sha1, 'newer', 'a change to a row not read yet stands too')
    assert.equal(paged.get('/f09997'), undefined, 'a row read after its removal does not come back')
    assert.equal(paged.get('/f09999')?.sha1, 'sha9999')
    paged.close()
    const reopened = FileIndex.open(state)
    assert.equal(reopened.get('/f00001')?.sha1, 'new')
    assert.equal(reopened.get('/f09998')?.sha1, 'newer')
    assert.equal(reopened.get('/f09997'), undefined)
    assert.equal(reopened.size, 9_999)
    reopened.close()
  })

  test('deletions: by path and under a subscription (whole segments), purged after the retention', () => {
    const state = join(dir, 'deletions')
    const day = 24 * 60 * 60 * 1000
    const now = 1_000 * day
    const index = FileIndex.open(state, { now: () => now })
    index.put('/a/b', '/srv/a/b', { size: 1, mtimeMs: 1, ino: 1 }, { algorithm: 'sha1', digest: 'ab', blocks: Buffer.alloc(0) })
    assert.deepEqual(index.remove('/a/b', now), { virtualPath: '/a/b', deletedAt: now, sha1: 'ab' })
    assert.equal(index.get('/a/b'), undefined)
    for (const path of ['/a', '/a/b/c', '/a0', '/ab']) index.remove(path, now - day)
    index.remove('/old', now - DELETION_RETENTION_MS - 1)
    assert.deepEqual(index.deletion('/a/b'), { virtualPath: '/a/b', deletedAt: now, sha1: 'ab' })
    assert.deepEqual(index.deletion('/a'), { virtualPath: '/a', deletedAt: now - day }, 'never indexed: no SHA-1')
    assert.deepEqual(index.deletionsUnder('/a').map((d) => d.virtualPath), ['/a', '/a/b', '/a/b/c'])
    assert.deepEqual(index.deletionsUnder('/').map((d) => d.virtualPath), ['/a', '/a/b', '/a/b/c', '/a0', '/ab', '/old'])
    index.reappeared('/a0')
    assert.equal(index.deletion('/a0'), undefined)
    index.close()

    const later = FileIndex.open(state, { now: () => now })
    assert.equal(later.deletion('/old'), undefined, 'older than 90 days: purged at open')
    assert.ok(later.deletion('/ab'))
    later.close()
    const muchLater = FileIndex.open(state, { now: () => now + 2 * day, retentionMs: 2 * day })
    assert.deepEqual(muchLater.deletionsUnder('/').map((d) => d.virtualPath), ['/a/b'])
    muchLater.close()
  })
})
