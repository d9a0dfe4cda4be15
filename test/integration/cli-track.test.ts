/**
 * `fmq track`, the real command as a child process: --once mirrors a nested tree and exits 0;
 * live, it follows creations, modifications, deletions and renames, reported as --json events
 * checked by content; --on-synced runs its hook; bad folders are one line and exit code 2.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { access, mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sameTree, write } from '../fixtures/tree.js'
import { FmqProcess, type FmqLine } from '../peers/fmq-process.js'

describe('fmq track', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-cli-track-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  function track(args: string[]): FmqProcess {
    const child = new FmqProcess(['track', ...args])
    closers.push(() => child.kill())
    return child
  }

  test('--once mirrors a nested tree (stale files in DST removed) and exits 0', async () => {
    const src = join(dir, 'once-src')
    const dst = join(dir, 'once-dst')
    const files: Record<string, string | Buffer> = { 'top.txt': 'top\n', 'a/b/c/d.txt': 'deep\n', 'empty': '', 'big.bin': Buffer.alloc(2_500_000, 1) }
    for (let i = 0; i < 30; i++) files[`n${i % 3}/f${i}`] = `${i}\n`
    await write(src, files)
    await write(dst, { 'stale.txt': 'old\n' })
    const child = track([src, dst, '--once'])
    assert.equal(await child.exited, 0)
    assert.ok(await sameTree(src, dst))
    const delivered = child.lines.filter((line) => line.type === 'delivered').map((line) => line.virtualPath)
    assert.ok(delivered.includes('/a/b/c/d.txt') && delivered.includes('/big.bin'), 'delivered events name the files')
    assert.ok(child.lines.some((line) => line.type === 'deleted' && line.virtualPath === '/stale.txt'))
    const summary = child.lines.find((line) => line.type === 'summary')
    assert.ok(summary !== undefined, 'a summary event ends --once')
    assert.equal(summary.files, 34)
    assert.equal(summary.bytes, 4 + 5 + 2_500_000 + 10 * 2 + 20 * 3)
    assert.equal(summary.deleted, 1)
    assert.equal(summary.skipped, 0)
    assert.ok(typeof summary.seconds === 'number' && typeof summary.rate === 'number')
    assert.equal(child.lines.filter((line) => line.type === 'summary').length, 1)
  })

  test('live: creations, modifications, deletions and renames follow, as --json events; --on-synced runs; SIGINT exits 0', async () => {
    const src = join(dir, 'live-src')
    const dst = join(dir, 'live-dst')
    await write(src, { 'keep.txt': 'keep\n', 'old/name.txt': 'renamed soon\n', 'gone.txt': 'deleted soon\n', 'edit.txt': 'v1\n' })
    // The hook shares fmq's stdout: its line arrives among the events.
    const child = track([src, dst, '--on-synced', 'echo hook-ran'])
    await child.waitFor((line) => line.type === 'synced', 30_000, 'the first sync')
    assert.ok(await sameTree(src, dst))
    const since = child.lines.length
    const after = (match: (line: FmqLine) => boolean) => (line: FmqLine) => match(line) && child.lines.indexOf(line) >= since

    await writeFile(join(src, 'new.txt'), 'created\n')
    await writeFile(join(src, 'edit.txt'), 'v2, longer\n')
    await unlink(join(src, 'gone.txt'))
    await mkdir(join(src, 'new-dir'))
    await rename(join(src, 'old/name.txt'), join(src, 'new-dir/name.txt'))
    const event = (type: string, path: string) => after((line) => line.type === type && line.virtualPath === path)
    await child.waitFor(event('delivered', '/new.txt'), 30_000, 'new.txt delivered')
    await child.waitFor(event('delivered', '/edit.txt'), 30_000, 'edit.txt delivered again')
    await child.waitFor(event('deleted', '/gone.txt'), 30_000, 'gone.txt deleted')
    await child.waitFor(event('deleted', '/old/name.txt'), 30_000, 'the rename: old name deleted')
    await child.waitFor(event('delivered', '/new-dir/name.txt'), 30_000, 'the rename: new name delivered')
    assert.ok(await sameTree(src, dst))
    await child.waitFor((line) => line.type === 'text' && line.text === 'hook-ran', 10_000, 'the --on-synced command to run')

    child.child.kill('SIGINT')
    assert.equal(await child.exited, 0)
  })

  test('two signals at once (quit without waiting): exit 130 or 0, never an abort (134) of the server thread', async () => {
    const src = join(dir, 'twice-src')
    await write(src, { 'a.txt': 'a\n', 'b/c.txt': 'c\n' })
    const child = track([src, join(dir, 'twice-dst')])
    await child.waitFor((line) => line.type === 'synced', 30_000, 'the first sync')
    child.child.kill('SIGINT')
    child.child.kill('SIGINT')
    const code = await child.exited
    assert.ok(code === 130 || code === 0, `exit ${code}; stderr: ${child.stderr.join(' | ')}`)
    assert.ok(!child.stderr.some((line) => /Napi|terminate called/.test(line)), child.stderr.join(' | '))
  })

  test('a missing SRC, and DST inside SRC, are one clear line and exit code 2', async () => {
    const missing = track([join(dir, 'nowhere'), join(dir, 'x'), '--once'])
    assert.equal(await missing.exited, 2)
    assert.match(missing.stderr.join('\n'), /nowhere/)
    const src = join(dir, 'outer')
    await mkdir(src)
    const nested = track([src, join(src, 'inner'), '--once'])
    assert.equal(await nested.exited, 2)
    assert.match(nested.stderr.join('\n'), /DST .* is inside SRC/)
    assert.equal(nested.stderr.length, 1, 'one line, no stack trace')
    const same = track([src, `${src}/`, '--once'])
    assert.equal(await same.exited, 2)
    assert.match(same.stderr.join('\n'), /SRC and DST are the same folder/)
    await assert.rejects(access(join(src, 'inner')), 'nothing created inside SRC')
  })
})
