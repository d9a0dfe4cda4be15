/**
 * The reconciling rescan (src/server/rescan.ts): it finds exactly what differs from what is
 * published (new, changed, chmod'ed, vanished: only the topmost of a vanished folder), from
 * the stat alone; over an unchanged tree it finds nothing and reads no content.
 */
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Mount } from '../../src/fs/mounts.js'
import { scanMount } from '../../src/fs/scan.js'
import { covers } from '../../src/fs/vpath.js'
import { Publisher } from '../../src/server/publisher.js'
import { findMissed, type PublishedState } from '../../src/server/rescan.js'
import { write } from '../fixtures/tree.js'

type File = NonNullable<ReturnType<PublishedState['file']>>
type Node = NonNullable<ReturnType<PublishedState['node']>>

/** What a publisher would hold after a full scan of the mount now. */
async function snapshot(mount: Mount): Promise<PublishedState> {
  const files = new Map<string, File>()
  const nodes = new Map<string, Node>()
  const at = (relativePath: string): string => `/${relativePath}`
  for await (const entry of scanMount(mount.location, {
    onNode: (node) => void nodes.set(at(node.relativePath), { kind: node.kind, mode: node.mode, ...(node.target === undefined ? {} : { target: node.target }) }),
  })) {
    files.set(at(entry.relativePath), { physicalPath: entry.contentPath, size: entry.size, mtimeMs: entry.mtimeMs, ino: entry.ino, mode: entry.mode & 0o7777 })
  }
  return {
    file: (path) => files.get(path),
    node: (path) => nodes.get(path),
    owns: () => true,
    holdsBack: () => false,
    publishedUnder: (_mount, top) => [...files.keys(), ...nodes.keys()].filter((path) => covers(top, path)),
  }
}

describe('rescan: what the events missed, from the stat alone', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-rescan-unit-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('finds each new, changed, chmod-ed and vanished entry (a vanished folder once, not each file in it), and nothing in an unchanged tree', async () => {
    const root = join(dir, 'tree')
    await write(root, { 'same.txt': 'same\n', 'grow.txt': 'a\n', 'mode.txt': 'm\n', 'gone/a.txt': 'a\n', 'gone/deep/b.txt': 'b\n', 'keep/c.txt': 'c\n' })
    const mount: Mount = { location: root, virtualPath: '/' }
    const state = await snapshot(mount)
    const none: string[] = []
    assert.equal(await findMissed(mount, '', {}, state, (path) => void none.push(path)), 0, `nothing differs: ${none.join(', ')}`)

    await writeFile(join(root, 'grow.txt'), 'a longer content\n')
    await chmod(join(root, 'mode.txt'), 0o600)
    await rm(join(root, 'gone'), { recursive: true })
    await writeFile(join(root, 'keep', 'new.txt'), 'new\n')
    await mkdir(join(root, 'fresh'))
    await symlink('same.txt', join(root, 'link'))
    const touched: string[] = []
    const missed = await findMissed(mount, '', {}, state, (path) => void touched.push(path))
    const expected = ['grow.txt', 'mode.txt', 'gone', 'keep/new.txt', 'fresh', 'link'].map((name) => join(root, name))
    assert.deepEqual(touched.sort(), expected.sort())
    assert.equal(missed, expected.length)

    // A folder of the mount alone: only what is under it.
    const under: string[] = []
    await findMissed(mount, 'keep', {}, state, (path) => void under.push(path))
    assert.deepEqual(under, [join(root, 'keep', 'new.txt')])
    // A folder that is gone: itself.
    const gone: string[] = []
    await findMissed(mount, 'gone', {}, state, (path) => void gone.push(path))
    assert.deepEqual(gone, [join(root, 'gone')])
  })

  test('a rescan of an unchanged tree of 2,000 files publishes nothing and reads no content', async () => {
    const root = join(dir, 'big')
    const files: Record<string, string> = {}
    for (let i = 0; i < 2000; i++) files[`d${i % 20}/f${i}.txt`] = `content ${i}\n`
    await write(root, files)
    const publisher = new Publisher({ settle: 10, followOutside: false })
    try {
      await publisher.publish(root, '/')
      await publisher.whenIndexed()
      const hashed = publisher.stats.bytesHashed
      const news: string[] = []
      for (const event of ['changed', 'removed', 'node', 'attributes'] as const) publisher.on(event, (entry: string | { virtualPath: string }) => void news.push(typeof entry === 'string' ? entry : entry.virtualPath))
      await publisher.rescanNow()
      assert.equal(publisher.stats.bytesHashed, hashed, 'no content read')
      assert.deepEqual(news, [])
      assert.equal(publisher.size, 2000)
    } finally {
      await publisher.close()
    }
  })
})
