/**
 * Folders without owner write, as a user who is not root would mirror them (the tests run as
 * root, so the CLI runs as `nobody` through setpriv). rsync -a copies a mode-0555 folder and
 * keeps filling it on later runs, as fmq must: `fmq track --once` first, then files added,
 * deleted and the whole read-only tree removed at the source, each run compared with what
 * rsync leaves. And a file that cannot be written at all (a folder of DST owned by someone
 * else is in the way) is not a success: it is named, and the run exits 23.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compare, formatDifferences, snapshot } from '../differential/snapshot.js'
import { write } from '../fixtures/tree.js'
import { FmqProcess } from '../peers/fmq-process.js'

const NOBODY = 65534
const root = process.getuid?.() === 0
const uid = root ? NOBODY : undefined
const has = (command: string): boolean => {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const skip = !has('rsync') ? 'needs rsync' : root && !has('setpriv') ? 'needs setpriv to run the CLI as an unprivileged user' : false

describe('read-only folders', { skip }, () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-readonly-'))
    await chmod(dir, 0o777)
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    execFileSync('chmod', ['-R', 'u+rwX', dir])
    await rm(dir, { recursive: true, force: true })
  })

  function fmq(args: string[]): FmqProcess {
    const child = new FmqProcess(args, { ...(uid === undefined ? {} : { uid }), json: true })
    closers.push(() => child.kill())
    return child
  }

  /** As the CLI's user (nobody as root): rsync -a --delete SRC/ EXPECTED/. */
  function rsync(src: string, expected: string): void {
    const args = ['-a', '--delete', `${src}/`, `${expected}/`]
    if (uid === undefined) execFileSync('rsync', args)
    else execFileSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', 'rsync', ...args])
  }

  async function sameAsRsync(src: string, dst: string, expected: string): Promise<void> {
    rsync(src, expected)
    const differences = compare(await snapshot(expected), await snapshot(dst))
    assert.deepEqual(differences, [], formatDifferences(differences))
  }

  /** `fmq track --once SRC DST` as the CLI's user: exit 0, and DST as rsync makes it. */
  async function trackOnce(src: string, dst: string, expected: string): Promise<void> {
    const child = fmq(['track', src, dst, '--once'])
    assert.equal(await child.exited, 0, `stderr: ${child.stderr.join(' | ')}`)
    await sameAsRsync(src, dst, expected)
  }

  /** SRC given to the CLI's user, as a user's own tree is. */
  const own = (src: string): void => {
    if (uid !== undefined) execFileSync('chown', ['-R', `${uid}:${uid}`, src])
  }

  test('fmq track --once fills, empties and removes folders of mode 0555 as rsync does', async () => {
    const src = join(dir, 'src')
    const dst = join(dir, 'dst')
    const expected = join(dir, 'rsync')
    await write(src, { 'top.txt': 'top\n', 'ro/a.txt': 'a\n', 'ro/sub/b.txt': 'b\n', 'rw/c.txt': 'c\n' })
    own(src)
    await chmod(join(src, 'ro', 'sub'), 0o555)
    await chmod(join(src, 'ro'), 0o555)

    const run = (): Promise<void> => trackOnce(src, dst, expected)
    await run()
    // Later files into the read-only folders, and a deletion out of one.
    await chmod(join(src, 'ro'), 0o755)
    await chmod(join(src, 'ro', 'sub'), 0o755)
    await writeFile(join(src, 'ro', 'later.txt'), 'later\n')
    await mkdir(join(src, 'ro', 'sub', 'new'))
    await writeFile(join(src, 'ro', 'sub', 'new', 'd.txt'), 'd\n')
    await rm(join(src, 'ro', 'sub', 'b.txt'))
    own(src)
    await chmod(join(src, 'ro', 'sub', 'new'), 0o500)
    await chmod(join(src, 'ro', 'sub'), 0o555)
    await chmod(join(src, 'ro'), 0o555)
    await run()
    // The whole read-only tree goes.
    execFileSync('chmod', ['-R', 'u+w', join(src, 'ro')])
    await rm(join(src, 'ro'), { recursive: true })
    await run()
  })

  test('a read-only folder replaced by a file in a read-only folder: the file gets its own mode, not the folder\'s', async () => {
    // Found by the differential run as a user: the folder's mode was put back on the file that took its place.
    const src = join(dir, 'src3')
    const dst = join(dir, 'dst3')
    const expected = join(dir, 'rsync3')
    await write(src, { 'ro/x/inner.txt': 'inner\n' })
    own(src)
    await chmod(join(src, 'ro', 'x'), 0o555)
    await chmod(join(src, 'ro'), 0o555)
    const run = (): Promise<void> => trackOnce(src, dst, expected)
    await run()
    await chmod(join(src, 'ro'), 0o755)
    execFileSync('chmod', ['-R', 'u+w', join(src, 'ro', 'x')])
    await rm(join(src, 'ro', 'x'), { recursive: true })
    await writeFile(join(src, 'ro', 'x'), 'a file now\n')
    await chmod(join(src, 'ro', 'x'), 0o644)
    own(src)
    await chmod(join(src, 'ro'), 0o555)
    await run()
  })

  test('a file that cannot be written is named and the run exits 23, not 0', { skip: uid === undefined ? 'needs root to make a folder nobody may not write' : false }, async () => {
    const src = join(dir, 'src2')
    const dst = join(dir, 'dst2')
    await write(src, { 'ok.txt': 'ok\n', 'theirs/a.txt': 'a\n' })
    execFileSync('chmod', ['-R', 'a+rwX', src])
    // DST's folder belongs to root: nobody may neither write it nor change its mode.
    await mkdir(join(dst, 'theirs'), { recursive: true })
    execFileSync('chown', [`${uid}:${uid}`, dst])
    await chmod(join(dst, 'theirs'), 0o755)

    const child = fmq(['track', src, dst, '--once'])
    assert.equal(await child.exited, 23, `stderr: ${child.stderr.join(' | ')}`)
    // The folder's mode could not be set either (rsync says "failed to set permissions" too).
    const skipped = child.lines.filter((line) => line.type === 'skipped').map((line) => line.path as string)
    assert.deepEqual(skipped.sort(), ['theirs', 'theirs/a.txt'])
    assert.ok(child.lines.some((line) => line.type === 'delivered' && line.virtualPath === '/ok.txt'))
  })
})
