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
