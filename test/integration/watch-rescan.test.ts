/**
 * The server never misses a change (issue 14), with real folders and real inotify: a burst
 * that overflows the kernel's queue, the watch and instance limits reached (a warning, no
 * crash, everything published, later changes found by the rescan), a folder deleted and made
 * again, swapped by rename, a tree moved in and out, the published folder replaced. Each case
 * ends with DST the shape of SRC (folders, files by content, links), waited for, never slept.
 *
 * The limits are the kernel's (`/proc/sys/fs/inotify/...`, shared by every process of the
 * user): lowered only for as long as a test needs them, and restored in a `finally`. A test
 * that cannot write them (not root, a read-only /proc) is skipped, saying why.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Track } from '../../track/track.js'
import { sameEntries } from '../fixtures/entries.js'
import { mirrored } from '../fixtures/mirrored.js'
import { write } from '../fixtures/tree.js'
import { FmqProcess, type FmqLine } from '../peers/fmq-process.js'

const INOTIFY = '/proc/sys/fs/inotify'

/** Sets an inotify sysctl; resolves to a function restoring the old value, or undefined if it cannot be written. */
async function lowered(name: string, value: number): Promise<(() => Promise<void>) | undefined> {
  const path = join(INOTIFY, name)
  let old: string
  try {
    old = (await readFile(path, 'utf8')).trim()
    await writeFile(path, `${value}\n`)
  } catch {
    return undefined
  }
  let restored = false
  return async () => {
    if (restored) return
    restored = true
    await writeFile(path, `${old}\n`)
  }
}

/** The inotify watches and instances this machine's processes hold now (all of them: the tests run as root). */
async function inotifyInUse(): Promise<{ watches: number; instances: number }> {
  let watches = 0
  let instances = 0
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^[0-9]+$/.test(pid)) continue
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      if (target !== 'anon_inode:inotify') continue
      instances++
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '')
      watches += info.split('\n').filter((line) => line.startsWith('inotify wd:')).length
    }
  }
  return { watches, instances }
}

const NOT_WRITABLE = `${INOTIFY} is not writable here (run as root on Linux): the kernel limit cannot be lowered for this test`

describe('the watcher misses nothing: events are hints, the rescan is the truth', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-rescan-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** A track of SRC into DST, closed at the end of the test; its server log collected. */
  async function track(t: { after: (fn: () => Promise<void>) => void }, src: string, dst: string): Promise<{ track: Track; logs: string[] }> {
    const started = await Track.start(src, dst)
    const logs: string[] = []
    started.on('log', (_level, text) => logs.push(text))
    started.on('error', () => undefined)
    t.after(() => started.close())
    await started.firstSync
    return { track: started, logs }
  }

  test('a burst that overflows the kernel queue (max_queued_events 64) ends with every file published, the rescan logged', async (t) => {
    const src = join(dir, 'burst-src')
    await write(src, { 'seed.txt': 'seed\n' })
    // The queue length is fixed when the inotify instance is made: lowered only while the track starts.
    const restore = await lowered('max_queued_events', 64)
    if (restore === undefined) return t.skip(NOT_WRITABLE)
    let started: Awaited<ReturnType<typeof track>>
    try {
      started = await track(t, src, join(dir, 'burst-dst'))
    } finally {
      await restore()
    }
    // 5,000 files at once (synchronously: the watcher's thread cannot keep up with a queue of 64).
    for (let d = 0; d < 10; d++) await mkdir(join(src, `d${d}`))
    for (let i = 0; i < 5000; i++) writeFileSync(join(src, `d${i % 10}`, `f${i}.txt`), `file ${i}\n`)
    await mirrored(started.track, 50_000)
    assert.ok(started.logs.some((line) => /rescanning .*burst of \d+ events/.test(line)), `the rescan is logged with its reason: ${started.logs.join(' | ')}`)
  })

  test('a folder deleted and made again, then written to: its new watch sees the change', async (t) => {
    const src = join(dir, 'recreate-src')
    await write(src, { 'box/a.txt': 'a\n', 'box/sub/b.txt': 'b\n', 'other.txt': 'o\n' })
    const { track: mirror } = await track(t, src, join(dir, 'recreate-dst'))
    await rm(join(src, 'box'), { recursive: true })
    await mkdir(join(src, 'box'))
    await writeFile(join(src, 'box', 'c.txt'), 'c\n')
    await mirrored(mirror, 20_000)
    await writeFile(join(src, 'box', 'later.txt'), 'later\n')
    await mirrored(mirror, 20_000)
  })

  test('a folder swapped by rename (mv current old; mv next current), and one renamed over an empty folder, end as on disk', async (t) => {
    const src = join(dir, 'swap-src')
    await write(src, { 'current/v1.txt': 'one\n', 'current/deep/x.txt': 'x1\n', 'next/v2.txt': 'two\n', 'next/deep/y.txt': 'y2\n' })
    await mkdir(join(src, 'empty'))
    await write(join(dir, 'swap-staging'), { 'filled/z.txt': 'z\n' })
    const { track: mirror } = await track(t, src, join(dir, 'swap-dst'))
    await rename(join(src, 'current'), join(src, 'old'))
    await rename(join(src, 'next'), join(src, 'current'))
    await rm(join(src, 'old'), { recursive: true })
    await mkdir(join(src, 'spare'))
    await writeFile(join(src, 'spare', 's.txt'), 's\n')
    await rename(join(src, 'spare'), join(src, 'empty')) // rename(2) replaces an empty folder
    await mirrored(mirror, 20_000)
    // The watches followed the folders now at those paths.
    await writeFile(join(src, 'current', 'deep', 'after.txt'), 'after\n')
    await writeFile(join(src, 'empty', 'after.txt'), 'after\n')
    await mirrored(mirror, 20_000)
  })

  test('a tree moved in from outside, and one moved out, end as on disk; the moved-in tree is watched', async (t) => {
    const src = join(dir, 'move-src')
    const outside = join(dir, 'move-outside')
    await write(src, { 'leaving/a/1.txt': '1\n', 'leaving/2.txt': '2\n', 'stay.txt': 's\n' })
    await write(outside, { 'arriving/b/c/3.txt': '3\n', 'arriving/4.txt': '4\n' })
    await symlink('b/c/3.txt', join(outside, 'arriving', 'link'))
    const { track: mirror } = await track(t, src, join(dir, 'move-dst'))
    await rename(join(outside, 'arriving'), join(src, 'arriving'))
    await rename(join(src, 'leaving'), join(outside, 'left'))
    await mirrored(mirror, 20_000)
    await writeFile(join(src, 'arriving', 'b', 'c', 'new.txt'), 'new\n')
    await writeFile(join(outside, 'left', 'a', 'not-ours.txt'), 'outside now\n')
    await mirrored(mirror, 20_000)
  })

  test('the published folder removed and made again, then replaced by rename: DST follows each time', async (t) => {
    const src = join(dir, 'root-src')
    await write(src, { 'a.txt': 'a\n', 'in/b.txt': 'b\n' })
    const { track: mirror, logs } = await track(t, src, join(dir, 'root-dst'))
    await rm(src, { recursive: true })
    await write(src, { 'back.txt': 'back\n', 'in/c.txt': 'c\n' })
    await mirrored(mirror, 20_000)
    await write(join(dir, 'root-next'), { 'swapped.txt': 'swapped\n' })
    await rename(src, join(dir, 'root-old'))
    await rename(join(dir, 'root-next'), src)
    await mirrored(mirror, 20_000)
    await writeFile(join(src, 'later.txt'), 'later\n')
    await mirrored(mirror, 20_000)
    assert.ok(logs.some((line) => /published folder/.test(line)), `the rescan says why: ${logs.join(' | ')}`)
  })

  test('polled instead of watched (--poll, for NFS, SMB, FUSE): creations, changes, deletions and folders found by the rescans', async (t) => {
    const src = join(dir, 'poll-src')
    await write(src, { 'a.txt': 'a\n', 'gone/b.txt': 'b\n' })
    const mirror = await Track.start(src, join(dir, 'poll-dst'), { server: { poll: 300 } })
    mirror.on('error', () => undefined)
    t.after(() => mirror.close())
    await mirror.firstSync
    await writeFile(join(src, 'a.txt'), 'a, changed\n')
    await write(src, { 'new/deep/c.txt': 'c\n' })
    await rm(join(src, 'gone'), { recursive: true })
    await mirrored(mirror, 20_000)
  })

  test('fmq track out of inotify watches: one warning naming fs.inotify.max_user_watches, no crash, all published, later changes found by the rescan', async (t) => {
    const src = join(dir, 'limit-src')
    const dst = join(dir, 'limit-dst')
    const files: Record<string, string> = {}
    for (let i = 0; i < 200; i++) files[`d${i}/f.txt`] = `${i}\n`
    await write(src, files)
    const restore = await lowered('max_user_watches', (await inotifyInUse()).watches + 60)
    if (restore === undefined) return t.skip(NOT_WRITABLE)
    const child = new FmqProcess(['track', src, dst])
    try {
      const warned = (line: FmqLine): boolean => line.type === 'warning' && /fs\.inotify\.max_user_watches/.test(String(line.message))
      await child.waitFor(warned, 30_000, 'the watch-limit warning')
      await child.waitFor((line) => line.type === 'synced', 30_000, 'the first sync')
      assert.ok(await sameEntries(src, dst), 'every file published though most folders are not watched')
      // One change in every folder: those not watched are found by the rescan (every 10 s meanwhile).
      for (let i = 0; i < 200; i++) await writeFile(join(src, `d${i}`, 'later.txt'), `later ${i}\n`)
      const later = new Set<string>()
      await child.waitFor(
        (line) => {
          if (line.type === 'delivered' && String(line.virtualPath).endsWith('/later.txt')) later.add(String(line.virtualPath))
          return later.size === 200
        },
        40_000,
        'the later file of every folder',
      )
      assert.ok(await sameEntries(src, dst))
      assert.equal(child.lines.filter(warned).length, 1, 'the limit is said once')
    } finally {
      await restore()
    }
    child.child.kill('SIGINT')
    assert.equal(await child.exited, 0, `a clean exit, never an abort (134); stderr: ${child.stderr.join(' | ')}`)
    assert.ok(!child.stderr.some((line) => /Napi|terminate called/.test(line)))
  })

  test('fmq track out of inotify instances: a warning naming fs.inotify.max_user_instances, the tree published and followed by rescans', async (t) => {
    const src = join(dir, 'instances-src')
    const dst = join(dir, 'instances-dst')
    await write(src, { 'a/1.txt': '1\n', 'b/2.txt': '2\n' })
    const restore = await lowered('max_user_instances', (await inotifyInUse()).instances)
    if (restore === undefined) return t.skip(NOT_WRITABLE)
    const child = new FmqProcess(['track', src, dst])
    try {
      const warned = (line: FmqLine): boolean => line.type === 'warning' && /fs\.inotify\.max_user_instances/.test(String(line.message))
      await child.waitFor(warned, 30_000, 'the instance-limit warning')
      await child.waitFor((line) => line.type === 'synced', 30_000, 'the first sync')
      await writeFile(join(src, 'a', 'later.txt'), 'later\n')
      await child.waitFor((line) => line.type === 'delivered' && line.virtualPath === '/a/later.txt', 30_000, 'a later file, found by a rescan')
      assert.ok(await sameEntries(src, dst))
    } finally {
      await restore()
    }
    child.child.kill('SIGINT')
    assert.equal(await child.exited, 0, `a clean exit, never an abort (134); stderr: ${child.stderr.join(' | ')}`)
  })
})

describe('settling: a writer that pauses longer than the settle', () => {
  test('a file written in pieces with pauses ends whole in DST, shipped a few times at most, never a mix', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fmq-slow-writer-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const src = join(dir, 'src')
    await write(src, { 'seed.txt': 'seed\n' })
    const mirror = await Track.start(src, join(dir, 'dst'))
    mirror.on('error', () => undefined)
    t.after(() => mirror.close())
    await mirror.firstSync
    let shipped = 0
    mirror.on('delivered', ({ virtualPath }) => {
      if (virtualPath === '/slow.bin') shipped++
    })
    // The writer's own pace (the scenario, not a wait for a result): 20 pieces, 60 ms apart.
    const handle = await open(join(src, 'slow.bin'), 'w')
    for (let i = 0; i < 20; i++) {
      await handle.write(Buffer.alloc(16 * 1024, i))
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
    await handle.close()
    await mirrored(mirror, 20_000)
    assert.ok(shipped <= 6, `shipped ${shipped} times while it was written (a ship per pause would be 20)`)
  })
})
