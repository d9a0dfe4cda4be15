/**
 * The tree as `rsync -a --delete` leaves it, through `track` (server and client of ours, in one
 * process): empty directories and their permission bits, symbolic links as links (inside,
 * dangling, leaving the tree), file modes exactly, and later a chmod or a touch alone, a directory removed
 * with its content, a file replaced by a directory and a link retargeted, each mirrored.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Track } from '../../track/track.js'
import { write } from '../fixtures/tree.js'
import { listEntries, sameEntries } from '../fixtures/entries.js'
import { until } from '../fixtures/until.js'

describe('track mirrors the tree, not only files', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-tree-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('directories, modes and links at the first sync, then chmod, rmdir, type changes and retargeted links live', async () => {
    const src = join(dir, 'src')
    const dst = join(dir, 'dst')
    await write(src, { 'a/file.txt': 'a\n', 'exec.sh': '#!/bin/sh\n', 'private.txt': 'p\n', 'gone/x/y.txt': 'y\n', 'was-file': 'f\n' })
    await mkdir(join(src, 'empty/deeper'), { recursive: true })
    await chmod(join(src, 'a'), 0o750)
    await chmod(join(src, 'exec.sh'), 0o755)
    await chmod(join(src, 'private.txt'), 0o600)
    await symlink('a/file.txt', join(src, 'inside'))
    await symlink('nowhere/at/all', join(src, 'dangling'))
    await symlink('/etc/hostname', join(src, 'outside'))
    // Stale entries of every kind in DST go.
    await mkdir(join(dst, 'stale-dir/sub'), { recursive: true })
    await symlink('x', join(dst, 'stale-link'))

    const track = await Track.start(src, dst)
    track.on('error', () => undefined)
    closers.push(() => track.close())
    await track.firstSync
    assert.deepEqual(await listEntries(dst), await listEntries(src), 'DST mirrors SRC at the first synced mark')

    await chmod(join(src, 'private.txt'), 0o640)
    await utimes(join(src, 'exec.sh'), new Date(), new Date(Date.UTC(2020, 1, 2, 3, 4, 5, 678)))
    await chmod(join(src, 'a'), 0o700)
    await rm(join(src, 'gone'), { recursive: true })
    await unlink(join(src, 'was-file'))
    await mkdir(join(src, 'was-file'))
    await unlink(join(src, 'inside'))
    await symlink('exec.sh', join(src, 'inside'))
    await mkdir(join(src, 'new-empty'))
    await writeFile(join(src, 'a/second.txt'), 'second\n')
    const delivered: string[] = []
    track.on('delivered', ({ virtualPath }) => delivered.push(virtualPath))
    await until(() => sameEntries(src, dst), 30_000, 'DST to follow chmod, rmdir, type changes and links')
    assert.ok(!delivered.includes('/private.txt'), 'a chmod alone sends no content')
    assert.ok(!delivered.includes('/exec.sh'), 'a touch alone sends no content')
  })

  test('a directory or a link where a file arrives is replaced by the file; what the link points to is left alone', async () => {
    const src = join(dir, 'src-in-the-way')
    const dst = join(dir, 'dst-in-the-way')
    const outside = join(dir, 'outside.txt')
    await writeFile(outside, 'not ours\n')
    await write(src, { 'was-dir': 'a file now\n', 'was-link': 'a file too\n', 'deep/was-dir': 'deeper\n' })
    await mkdir(join(dst, 'was-dir/sub'), { recursive: true })
    await writeFile(join(dst, 'was-dir/sub/old.txt'), 'old\n')
    await mkdir(join(dst, 'deep/was-dir'), { recursive: true })
    await symlink(outside, join(dst, 'was-link'))

    const track = await Track.start(src, dst)
    track.on('error', () => undefined)
    closers.push(() => track.close())
    await track.firstSync
    assert.deepEqual(await listEntries(dst), await listEntries(src))
    assert.equal(await readFile(join(dst, 'was-dir'), 'utf8'), 'a file now\n')
    assert.equal(await readFile(join(dst, 'was-link'), 'utf8'), 'a file too\n')
    assert.equal(await readFile(outside, 'utf8'), 'not ours\n', 'the link was replaced, never written through')
    await assert.rejects(readlink(join(dst, 'was-link')), { code: 'EINVAL' })
  })
})
