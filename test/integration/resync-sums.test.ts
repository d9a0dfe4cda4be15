/**
 * A resync judged folder by folder (SUMS, spec/fmq_msg.xml): our client sends one sum per
 * folder, our server compares each with its own. Over an unchanged mirror no folder is asked
 * for again and nothing is sent; after changes, exactly the folders that changed are asked for
 * again, entry by entry, and the inbox ends as the source is (rsync -a --delete's answer).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import { listEntries } from '../fixtures/entries.js'

describe('resync in folder sums (SUMS)', () => {
  let dir: string
  let src: string
  let inbox: string
  let endpoint: string
  const closers: Array<() => Promise<void>> = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-sums-'))
    src = join(dir, 'src')
    inbox = join(dir, 'inbox')
    // 30 folders of 20 files, two levels deep, an empty folder, a folder of mode 0750, a link, odd names.
    for (let top = 0; top < 6; top++) {
      for (let sub = 0; sub < 5; sub++) {
        const folder = join(src, `top-${top}`, `sub-${sub}`)
        await mkdir(folder, { recursive: true })
        for (let i = 0; i < 20; i++) await writeFile(join(folder, `file-${i}.txt`), `${top} ${sub} ${i} `.repeat(10))
      }
    }
    await mkdir(join(src, 'empty'))
    await mkdir(join(src, 'private'))
    await writeFile(join(src, 'private', 'secret'), 'secret')
    await chmod(join(src, 'private'), 0o750)
    await symlink('top-0/sub-0/file-0.txt', join(src, 'link'))
    await writeFile(join(src, 'top-1', 'new\nline and\ttab \\ ✓'), 'odd')
    // The mirror, as another tool leaves it: no manifest.
    execFileSync('cp', ['-a', src, inbox])

    const server = new Server({ settle: 20 })
    server.on('error', () => undefined)
    closers.push(() => server.close())
    await server.publish(src, '/')
    endpoint = await server.bind(`ipc://${join(dir, 'server.sock')}`)
  })

  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  /** One resync of the whole tree with --mirror: what was delivered and deleted, and the client's counters. */
  async function resync(into = inbox, from = endpoint): Promise<{ delivered: string[]; deleted: string[]; foldersAskedAgain: number }> {
    const client = new Client({ inbox: into, resync: true, mirror: true })
    client.on('error', () => undefined)
    const delivered: string[] = []
    const deleted: string[] = []
    client.on('delivered', (event) => delivered.push(event.virtualPath))
    client.on('deleted', (event) => deleted.push(event.virtualPath))
    const synced = new Promise<void>((resolve) => client.once('synced', () => resolve()))
    try {
      await client.connect(from)
      await client.subscribe('/')
      await synced
      return { delivered: delivered.sort(), deleted: deleted.sort(), foldersAskedAgain: client.stats.foldersAskedAgain }
    } finally {
      await client.close()
    }
  }

  test('an unchanged mirror: no folder asked again, nothing sent', async () => {
    const result = await resync()
    assert.deepEqual(result, { delivered: [], deleted: [], foldersAskedAgain: 0 })
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
  })

  test('changes in a few folders: those folders asked again, the changed files sent, the rest left alone', async () => {
    // A new size in one folder, a chmod alone in another, a deletion, a new folder, a folder gone, a mode of a folder.
    await writeFile(join(src, 'top-2', 'sub-3', 'file-4.txt'), 'changed, and longer than it was before')
    await chmod(join(src, 'top-4', 'sub-1', 'file-9.txt'), 0o600)
    await rm(join(src, 'top-5', 'sub-0', 'file-1.txt'))
    await mkdir(join(src, 'top-0', 'fresh', 'deeper'), { recursive: true })
    await writeFile(join(src, 'top-0', 'fresh', 'deeper', 'n.txt'), 'new')
    await rm(join(src, 'top-3', 'sub-2'), { recursive: true })
    await chmod(join(src, 'top-1', 'sub-4'), 0o700)
    // A file replaced by a folder of the same name.
    await rm(join(src, 'top-1', 'sub-0', 'file-0.txt'))
    await mkdir(join(src, 'top-1', 'sub-0', 'file-0.txt'))
    await writeFile(join(src, 'top-1', 'sub-0', 'file-0.txt', 'inside'), 'inside')
    // The server sees them (its watcher settles each); a rescan makes sure of it.
    await waitPublished()

    const result = await resync()
    assert.deepEqual(result.delivered, ['/top-0/fresh/deeper/n.txt', '/top-1/sub-0/file-0.txt/inside', '/top-2/sub-3/file-4.txt'])
    assert.ok(result.deleted.includes('/top-5/sub-0/file-1.txt'), `deleted: ${result.deleted.join(', ')}`)
    assert.ok(result.deleted.includes('/top-3/sub-2'), `deleted: ${result.deleted.join(', ')}`)
    // Folders asked again: those whose own entries changed (top-0, top-1, top-2/sub-3, top-3, top-4/sub-1, top-5/sub-0, top-1/sub-0), at most.
    assert.ok(result.foldersAskedAgain > 0 && result.foldersAskedAgain <= 7, `${result.foldersAskedAgain} folders asked again`)
    assert.deepEqual(await listEntries(inbox), await listEntries(src))

    // And then, nothing more to do.
    assert.deepEqual(await resync(), { delivered: [], deleted: [], foldersAskedAgain: 0 })
  })

  test('a touch alone reaches the mirror without content, and a renamed folder arrives', async () => {
    const when = new Date('2024-05-06T07:08:09.123Z')
    await utimes(join(src, 'top-3', 'sub-0', 'file-3.txt'), when, when)
    await rename(join(src, 'top-4', 'sub-4'), join(src, 'top-4', 'renamed'))
    await waitPublished()
    const result = await resync()
    assert.ok(!result.delivered.includes('/top-3/sub-0/file-3.txt'), 'a touch alone sends no content')
    assert.equal(result.delivered.filter((path) => path.startsWith('/top-4/renamed/')).length, 20)
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
    assert.deepEqual(await resync(), { delivered: [], deleted: [], foldersAskedAgain: 0 })
  })

  test('a server publishing under /photos, a client subscribed to /: the mount arrives whole, and a rerun sends nothing', async () => {
    const server = new Server({ settle: 20 })
    server.on('error', () => undefined)
    closers.push(() => server.close())
    await server.publish(join(src, 'top-2'), '/photos')
    const mounted = await server.bind(`ipc://${join(dir, 'mounted.sock')}`)
    const target = join(dir, 'mounted-inbox')
    const run = async (): Promise<string[]> => (await resync(target, mounted)).delivered
    assert.equal((await run()).length, 100)
    assert.deepEqual(await listEntries(join(target, 'photos')), await listEntries(join(src, 'top-2')))
    assert.deepEqual(await run(), [])
  })

  /** Waits until the server publishes the source as it is now (its next rescan has run). */
  async function waitPublished(): Promise<void> {
    const server = new Server({ settle: 20 })
    // A second server over the same tree, started now, publishes exactly what is there: the first
    // one's watcher may lag, so the test asks the one that scanned last.
    server.on('error', () => undefined)
    closers.push(() => server.close())
    await server.publish(src, '/')
    endpoint = await server.bind(`ipc://${join(dir, `server-${closers.length}.sock`)}`)
  }
})
