/**
 * Reruns over a finished mirror, with more entries than one message of cache holds (the
 * cache goes in parts, MORE=1): `fmq track --once` again exits 0 and sends nothing; one changed
 * file among them sends that file only; `fmq client --resync --mirror --once` into its full
 * inbox does the same against `fmq server`. Before the parts, such a rerun never ended.
 * A rerun judges files as rsync's quick check does (QUICK): a DST changed behind fmq's back
 * is put right exactly where `rsync -a --delete` puts it right, and left where rsync leaves it.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { write } from '../fixtures/tree.js'
import { listEntries } from '../fixtures/entries.js'
import { FmqProcess } from '../peers/fmq-process.js'

/** Files in the tree: well past the ~1,300 whose cache filled one 64 KiB message. */
const FILES = 2500

describe('reruns over a finished mirror', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-rerun-'))
    const files: Record<string, string> = {}
    for (let i = 0; i < FILES; i++) files[`dir${i % 25}/sub${i % 7}/file-with-a-longish-name-${i}.txt`] = `content ${i}\n`
    await write(join(dir, 'src'), files)
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  function fmq(args: string[]): FmqProcess {
    const child = new FmqProcess(args)
    closers.push(() => child.kill())
    return child
  }
  const deliveredBy = (child: FmqProcess): string[] => child.lines.filter((line) => line.type === 'delivered').map((line) => String(line.virtualPath))

  test('fmq track --once: a rerun sends nothing, one changed file is the only one sent', async () => {
    const src = join(dir, 'src')
    const dst = join(dir, 'track-dst')
    const first = fmq(['track', src, dst, '--once'])
    assert.equal(await first.exited, 0)
    assert.equal(deliveredBy(first).length, FILES)
    const again = fmq(['track', src, dst, '--once'])
    assert.equal(await again.exited, 0, 'a rerun over a finished mirror ends')
    assert.deepEqual(deliveredBy(again), [], 'a rerun over an unchanged mirror sends no file')
    await writeFile(join(src, 'dir3/sub3/file-with-a-longish-name-3.txt'), 'changed\n')
    const third = fmq(['track', src, dst, '--once'])
    assert.equal(await third.exited, 0)
    assert.deepEqual(deliveredBy(third), ['/dir3/sub3/file-with-a-longish-name-3.txt'])
    assert.deepEqual(await listEntries(dst), await listEntries(src))
  })

  test('fmq client --resync --mirror --once into its full inbox: nothing sent, stale entries deleted', async () => {
    const src = join(dir, 'src')
    const inbox = join(dir, 'inbox')
    const endpoint = `ipc://${join(dir, 'server.sock')}`
    const server = fmq(['server', '-p', `${src}=/`, '-b', endpoint])
    await server.waitFor((line) => line.type === 'listening', 30_000, 'the server to listen')
    const client = (): FmqProcess => fmq(['client', '-C', endpoint, '-s', '/', '-i', inbox, '--resync', '--mirror', '--once'])
    const first = client()
    assert.equal(await first.exited, 0)
    await write(inbox, { 'stale/one.txt': 'not at the source\n' })
    const again = client()
    assert.equal(await again.exited, 0, 'a resync into a full inbox ends')
    assert.deepEqual(deliveredBy(again), [], 'nothing is sent again')
    assert.deepEqual(await listEntries(inbox), await listEntries(src))
  })

  test('a DST changed behind its back: put right where rsync -a --delete puts it right, and only there', async () => {
    const run = promisify(execFile)
    const src = join(dir, 'tamper-src')
    const dst = join(dir, 'tamper-dst')
    const ref = join(dir, 'tamper-ref')
    const big = Buffer.alloc(9 * 1024 * 1024, 7)
    await write(src, {
      'rewritten.txt': 'the source version\n',
      'touched.txt': 'left as it is\n',
      'shortened.txt': 'a longer line of the source\n',
      'hidden.txt': 'the source, same size\n',
      'sub/big.bin': big,
      'sub/small.txt': 'small\n',
    })
    // The source an hour old, in whole seconds: rsync's quick check compares whole seconds
    // (fmq's, milliseconds), so a rewrite below within the second the source was written
    // would be left by rsync and put right by fmq. That difference is not what this tests.
    const hourAgo = Math.floor(Date.now() / 1000) - 3600
    for (const name of ['rewritten.txt', 'touched.txt', 'shortened.txt', 'hidden.txt', 'sub/big.bin', 'sub/small.txt']) await utimes(join(src, name), hourAgo, hourAgo)
    const first = fmq(['track', src, dst, '--once'])
    assert.equal(await first.exited, 0)
    await run('rsync', ['-a', '--delete', `${src}/`, `${ref}/`])
    assert.deepEqual(await listEntries(dst), await listEntries(ref))
    // The same changes to both copies, mtimes included.
    const later = new Date(Date.now() + 3_600_000)
    for (const root of [dst, ref]) {
      const at = (name: string): string => join(root, name)
      await writeFile(at('rewritten.txt'), 'THE OTHER VERSION!\n') // same size, new mtime, new content
      await utimes(at('touched.txt'), later, later) // mtime only
      await truncate(at('shortened.txt'), 5)
      const { mtime } = await stat(at('hidden.txt'))
      await writeFile(at('hidden.txt'), 'other bytes, same size\n') // same size and mtime: rsync keeps it
      await utimes(at('hidden.txt'), mtime, mtime)
      await utimes(at('sub/big.bin'), later, later) // a big file touched: the same content
      await rm(at('sub/small.txt'))
      await writeFile(at('stray.txt'), 'not in the source\n')
    }
    const again = fmq(['track', src, dst, '--once'])
    assert.equal(await again.exited, 0)
    await run('rsync', ['-a', '--delete', `${src}/`, `${ref}/`])
    assert.deepEqual(await listEntries(dst), await listEntries(ref))
    assert.ok(!deliveredBy(again).includes('/touched.txt'), 'a file touched only is not sent again')
  })
})
