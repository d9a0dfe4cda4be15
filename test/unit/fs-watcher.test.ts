import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { TreeWatcher } from '../../src/fs/watcher.js'

/** Resolves once the watcher reports `path`, rejects after `ms`. */
function touchedAt(watcher: TreeWatcher, path: string, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      watcher.off('touched', seen)
      reject(new Error(`no event for ${path} within ${ms} ms`))
    }, ms)
    const seen = (touched: string): void => {
      if (touched !== path) return
      clearTimeout(timer)
      watcher.off('touched', seen)
      resolve()
    }
    watcher.on('touched', seen)
  })
}

describe('TreeWatcher: one watch per directory', () => {
  let root: string
  let watcher: TreeWatcher

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fmq-watch-'))
    await mkdir(join(root, 'a', 'b'), { recursive: true })
    await mkdir(join(root, '.fmq'))
    for (let i = 0; i < 50; i++) await writeFile(join(root, 'a', `f${i}`), 'x')
    watcher = await TreeWatcher.start(root, { ignored: (path) => path.split('/').includes('.fmq') })
  })

  after(async () => {
    watcher.close()
    await rm(root, { recursive: true, force: true })
  })

  it('watches directories only, never the files in them, nor ignored folders', () => {
    assert.equal(watcher.size, 3) // root, a, a/b
  })

  it('reports a file written in a nested directory, and a change to it', async () => {
    const file = join(root, 'a', 'b', 'new.txt')
    const created = touchedAt(watcher, file)
    await writeFile(file, 'one')
    await created
    const changed = touchedAt(watcher, file)
    await writeFile(file, 'two')
    await changed
  })

  it('reports every file of a directory moved in whole, and watches it', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'fmq-watch-out-'))
    await mkdir(join(outside, 'deep'))
    await writeFile(join(outside, 'deep', 'inner.txt'), 'in')
    const moved = join(root, 'moved')
    const inner = touchedAt(watcher, join(moved, 'deep', 'inner.txt'))
    await rename(outside, moved)
    await inner
    const later = touchedAt(watcher, join(moved, 'deep', 'later.txt'))
    await writeFile(join(moved, 'deep', 'later.txt'), 'later')
    await later
  })

  it('reports a removed directory and stops watching it and what was below', async () => {
    const dir = join(root, 'gone')
    await mkdir(join(dir, 'sub'), { recursive: true })
    const adopted = touchedAt(watcher, join(dir, 'sub'))
    await writeFile(join(dir, 'x'), 'x') // the new folder was seen: its entries are reported
    await adopted.catch(() => undefined)
    const before = watcher.size
    const removed = touchedAt(watcher, dir)
    await rm(dir, { recursive: true })
    await removed
    // Unwatching follows the event: wait for it without a fixed delay.
    const deadline = Date.now() + 5000
    while (watcher.size >= before && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
    assert.ok(watcher.size < before, `watches: ${watcher.size}, before removal: ${before}`)
  })

  it('says nothing of the ignored state folder', async () => {
    const events: string[] = []
    const record = (path: string): void => void events.push(path)
    watcher.on('touched', record)
    await writeFile(join(root, '.fmq', 'fmq.db'), 'db')
    // A later event at the root proves the earlier one was delivered, or never would be.
    const marker = touchedAt(watcher, join(root, 'marker'))
    await writeFile(join(root, 'marker'), 'm')
    await marker
    watcher.off('touched', record)
    assert.deepEqual(events.filter((path) => path.includes('.fmq')), [])
  })
})

/** Resolves with the reason once the watcher doubts `dir`, rejects after `ms`. */
function doubtAt(watcher: TreeWatcher, dir: string, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      watcher.off('doubt', seen)
      reject(new Error(`no doubt about ${dir} within ${ms} ms`))
    }, ms)
    const seen = (doubted: string, reason: string): void => {
      if (doubted !== dir) return
      clearTimeout(timer)
      watcher.off('doubt', seen)
      resolve(reason)
    }
    watcher.on('doubt', seen)
  })
}

describe('TreeWatcher: when it may have missed something, it says so (doubt)', () => {
  let root: string
  let watcher: TreeWatcher
  const touched: string[] = []

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fmq-watch-doubt-'))
    await mkdir(join(root, 'burst'))
    await mkdir(join(root, 'box', 'sub'), { recursive: true })
    watcher = await TreeWatcher.start(root)
    watcher.on('touched', (path) => void touched.push(path))
  })

  after(async () => {
    watcher.close()
    await rm(root, { recursive: true, force: true })
  })

  it('after a burst of events (an overflow of the kernel queue cannot be told apart), the folder they came from', async () => {
    const doubted = doubtAt(watcher, join(root, 'burst'))
    for (let i = 0; i < 400; i++) await writeFile(join(root, 'burst', `f${i}`), 'x')
    assert.match(await doubted, /burst of \d+ events/)
  })

  it('a folder deleted and made again at once (ext4 gives it the same inode) is watched anew; its own deletion is not reported under a wrong path', async () => {
    const box = join(root, 'box')
    const doubted = doubtAt(watcher, box)
    await rm(box, { recursive: true })
    await mkdir(box)
    await doubted
    const later = touchedAt(watcher, join(box, 'later.txt'))
    await writeFile(join(box, 'later.txt'), 'later')
    await later
    assert.deepEqual(touched.filter((path) => path.endsWith(join('box', 'box')) || path.endsWith(join('sub', 'sub'))), [])
  })
})
