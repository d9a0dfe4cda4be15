/**
 * Every name Linux allows that is valid UTF-8 mirrors exactly, byte for byte, through
 * `fmq track --once` and through `fmq server` + `fmq client --once`: newline, tab, backslash,
 * leading and trailing spaces, emoji, glob characters (`#`, `*`, `[`, `{`, `?`), a drive-like
 * `C:`, names starting with dots. Nothing is skipped, both exit 0.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { digests, write } from '../fixtures/tree.js'
import { FmqProcess } from '../peers/fmq-process.js'

/** Name → content (each content different, so a mix-up shows). */
const ODD: Record<string, string> = Object.fromEntries(
  [
    'new\nline.txt',
    'tab\there',
    'back\\slash',
    '\\',
    'a\\..\\..\\escape', // one segment on Linux: lands inside DST as it is
    ' leading space',
    'trailing space ',
    '😀 emoji.txt',
    '#hash',
    'star*',
    '[bracket]',
    '{brace,s}',
    'what?',
    '!bang',
    'C:drive',
    'a:b',
    '..dots',
    '...',
    '.hidden',
    '-dash',
    '~tilde',
    `quote'"`,
    'percent%20',
    '$HOME',
    'del\u007fchar',
    'ctrl\u0001a',
    'é accent',
    'dir\nwith newline/inner\\file.txt',
    'nested/*/[x]',
    ' spaced dir /  inner  ',
  ].map((name, i) => [name, `${i}: ${JSON.stringify(name)}\n`]),
)

describe('odd names', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-odd-names-'))
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

  /** DST holds exactly SRC's names, each with SRC's content. */
  async function assertMirrors(dst: string): Promise<void> {
    const mirrored = await digests(dst)
    assert.deepEqual([...mirrored.keys()].sort(), Object.keys(ODD).sort())
    for (const [name, content] of Object.entries(ODD)) assert.equal(await readFile(join(dst, name), 'utf8'), content, JSON.stringify(name))
  }

  test('fmq track --once mirrors every name exactly and exits 0', async () => {
    const src = join(dir, 'track-src')
    const dst = join(dir, 'track-dst')
    await write(src, ODD)
    const child = fmq(['track', src, dst, '--once'])
    assert.equal(await child.exited, 0, `stderr: ${child.stderr.join(' | ')}`)
    assert.deepEqual(child.lines.filter((line) => line.type === 'skipped' || line.type === 'error'), [])
    await assertMirrors(dst)
    const delivered = new Set(child.lines.filter((line) => line.type === 'delivered').map((line) => line.virtualPath))
    assert.ok(delivered.has('/new\nline.txt') && delivered.has('/dir\nwith newline/inner\\file.txt'), 'named as they are in the events')

    // Again, with a stale odd name in DST: the client's manifest knows every name, so nothing
    // is sent again, and the stale one is deleted.
    await write(dst, { 'stale\nname*': 'gone\n' })
    const again = fmq(['track', src, dst, '--once'])
    assert.equal(await again.exited, 0, `stderr: ${again.stderr.join(' | ')}`)
    assert.deepEqual(again.lines.filter((line) => line.type === 'delivered'), [])
    assert.ok(again.lines.some((line) => line.type === 'deleted' && line.virtualPath === '/stale\nname*'))
    await assertMirrors(dst)
  })

  test('live: odd names created, and then deleted, in SRC follow in DST (the watcher path)', async () => {
    const src = join(dir, 'live-src')
    const dst = join(dir, 'live-dst')
    await write(src, { 'first.txt': 'first\n' })
    const child = fmq(['track', src, dst])
    await child.waitFor((line) => line.type === 'synced', 30_000, 'the first sync')
    const live = ['..dots-live', 'new\nline-live', 'back\\slash-live', '[glob]*-live', 'made\ndir/tab\tinner']
    await write(src, Object.fromEntries(live.map((name) => [name, `live ${name}\n`])))
    for (const name of live) {
      await child.waitFor((line) => line.type === 'delivered' && line.virtualPath === `/${name}`, 30_000, `${JSON.stringify(name)} delivered`)
      assert.equal(await readFile(join(dst, name), 'utf8'), `live ${name}\n`)
    }
    await rm(join(src, 'new\nline-live'))
    await child.waitFor((line) => line.type === 'deleted' && line.virtualPath === '/new\nline-live', 30_000, 'the newline name deleted')
    assert.deepEqual(child.lines.filter((line) => line.type === 'skipped' || line.type === 'error'), [])
  })

  test('fmq server + fmq client --once mirror every name exactly', async () => {
    const src = join(dir, 'server-src')
    await write(src, ODD)
    const server = fmq(['server', '-p', `${src}=/odd`, '-b', `ipc://${join(dir, 'odd.sock')}`, '--state', join(dir, 'server-state')])
    const endpoint = await server.endpoint()
    const inbox = join(dir, 'inbox')
    const client = fmq(['client', '-C', endpoint, '-s', '/odd', '-i', inbox, '--mirror', '--once'])
    assert.equal(await client.exited, 0, `stderr: ${client.stderr.join(' | ')}`)
    assert.deepEqual(client.lines.filter((line) => line.type === 'skipped' || line.type === 'error'), [])
    await assertMirrors(join(inbox, 'odd'))
    assert.deepEqual(server.lines.filter((line) => line.type === 'skipped' || line.type === 'error'), [])
  })
})
