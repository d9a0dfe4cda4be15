/**
 * track/: SRC mirrored into DST in one process (server and client over inproc), through the
 * public API only: the first sync is known exactly (the `synced` mark), live changes follow
 * (create, modify, delete, rename), stale files in DST go, bad folders are refused.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Track, TrackError } from '../../track/track.js'
import { mirrored } from '../fixtures/mirrored.js'
import { digests, sameTree, write } from '../fixtures/tree.js'

describe('track', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-track-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('the first sync mirrors a nested tree exactly (stale files in DST removed), then live changes follow', async () => {
    const src = join(dir, 'src')
    const dst = join(dir, 'dst')
    const files: Record<string, string | Buffer> = { 'empty.txt': '', 'a/b/c/deep.txt': 'deep\n', 'big.bin': Buffer.alloc(3_000_000, 7) }
    for (let i = 0; i < 50; i++) files[`dir${i % 5}/file${i}.txt`] = `file ${i}\n`
    await write(src, files)
    await write(dst, { 'stale.txt': 'not in SRC\n', 'dir1/file1.txt': 'old content\n' })

    const track = await Track.start(src, dst)
    track.on('error', () => undefined)
    closers.push(() => track.close())
    await track.firstSync
    assert.ok(await sameTree(src, dst), 'DST mirrors SRC at the first synced mark')
    assert.equal((await digests(dst)).has('stale.txt'), false)

    await writeFile(join(src, 'new.txt'), 'created\n')
    await writeFile(join(src, 'dir2/file2.txt'), 'modified\n')
    await unlink(join(src, 'dir3/file3.txt'))
    await rename(join(src, 'a/b/c/deep.txt'), join(src, 'a/renamed.txt'))
    await mkdir(join(src, 'fresh/nested'), { recursive: true })
    await writeFile(join(src, 'fresh/nested/x.txt'), 'x\n')
    await mirrored(track, 30_000)
  })

  test('keepDeleted: files deleted in SRC stay in DST', async () => {
    const src = join(dir, 'keep-src')
    const dst = join(dir, 'keep-dst')
    await write(src, { 'one.txt': '1\n', 'two.txt': '2\n' })
    const track = await Track.start(src, dst, { keepDeleted: true })
    track.on('error', () => undefined)
    closers.push(() => track.close())
    await track.firstSync
    const delivered = new Promise<void>((resolve) => track.on('delivered', ({ virtualPath }) => virtualPath === '/three.txt' && resolve()))
    await unlink(join(src, 'one.txt'))
    await writeFile(join(src, 'three.txt'), '3\n') // after the deletion: its delivery shows the deletion went by
    await delivered
    assert.deepEqual([...(await digests(dst)).keys()].sort(), ['one.txt', 'three.txt', 'two.txt'])
  })

  test('a missing SRC, and DST inside SRC (or SRC inside DST), are refused with a clear error', async () => {
    await assert.rejects(Track.start(join(dir, 'nowhere'), join(dir, 'x')), (error: unknown) => error instanceof TrackError && error.code === 'ERR_FMQ_TRACK_SOURCE')
    const src = join(dir, 'outer')
    await mkdir(src)
    await assert.rejects(Track.start(src, join(src, 'inner')), (error: unknown) => error instanceof TrackError && error.code === 'ERR_FMQ_TRACK_NESTED')
    await assert.rejects(Track.start(src, dir), (error: unknown) => error instanceof TrackError && error.code === 'ERR_FMQ_TRACK_NESTED')
  })
})
