/**
 * Nothing skipped in silence: run as a user who may not read some entries (the tests run as
 * root, so the CLI runs as `nobody` through setpriv), `fmq track --once` and `fmq server` +
 * `fmq client --once` mirror the rest, name every entry left out (an unreadable file or
 * folder, a FIFO, a name that is not UTF-8) once, and exit 23; nothing aborts, and what DST
 * already holds under an unreadable folder is not deleted.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { digests, write } from '../fixtures/tree.js'
import { FmqProcess, type FmqLine } from '../peers/fmq-process.js'

const NOBODY = 65534
const root = process.getuid?.() === 0
/** As root the CLI runs as nobody; as anyone else it runs as that user, for whom mode 000 is just as unreadable. */
const uid = root ? NOBODY : undefined
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
const skip = root && !hasSetpriv ? 'needs setpriv to run the CLI as an unprivileged user' : false

/** The readable part of the source tree: what every mirror must hold, exactly. */
const READABLE: Record<string, string> = { 'top.txt': 'top\n', 'ok/a.txt': 'a\n', 'ok/deep/b.txt': 'b\n', 'locked-sibling/c.txt': 'c\n' }

describe('skipped entries', { skip }, () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-skipped-'))
    await chmod(dir, 0o777) // nobody writes DST and state here
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    // Readable again, so the clean-up can go in; rm(1), which removes a name that is not UTF-8.
    execFileSync('chmod', ['-R', 'u+rwX', dir])
    execFileSync('rm', ['-rf', dir])
  })

  function fmq(args: string[], json = true): FmqProcess {
    const child = new FmqProcess(args, { ...(uid === undefined ? {} : { uid }), json })
    closers.push(() => child.kill())
    return child
  }

  /** SRC with the readable files, an unreadable file, an unreadable folder, a FIFO and a name that is not UTF-8. */
  async function source(name: string): Promise<string> {
    const src = join(dir, name)
    await write(src, { ...READABLE, 'secret.txt': 'secret\n', 'locked/inner/hidden.txt': 'hidden\n' })
    execFileSync('mkfifo', [join(src, 'pipe')])
    await writeFile(Buffer.from(join(src, 'latin1-\xe9.txt'), 'latin1'), 'not UTF-8\n')
    execFileSync('chmod', ['-R', 'a+rwX', src])
    await chmod(join(src, 'secret.txt'), 0o000)
    await chmod(join(src, 'locked'), 0o000)
    return src
  }

  const skippedPaths = (lines: readonly FmqLine[]): string[] =>
    lines
      .filter((line) => line.type === 'skipped')
      .map((line) => line.path as string)
      .sort()

  test('fmq track --once: the rest is mirrored, each skip is one event, exit 23; DST keeps what it had under the unreadable folder', async () => {
    const src = await source('track-src')
    const dst = join(dir, 'track-dst')
    await write(dst, { 'locked/inner/hidden.txt': 'an older copy\n', 'stale.txt': 'deleted in SRC\n' })
    execFileSync('chmod', ['-R', 'a+rwX', dst])

    const child = fmq(['track', src, dst, '--once'])
    assert.equal(await child.exited, 23, `stderr: ${child.stderr.join(' | ')}`)
    assert.deepEqual(skippedPaths(child.lines), ['latin1-\ufffd.txt', 'locked', 'pipe', 'secret.txt'])
    const byPath = new Map(child.lines.filter((line) => line.type === 'skipped').map((line) => [line.path, line]))
    assert.equal(byPath.get('locked')?.code, 'EACCES')
    assert.equal(byPath.get('secret.txt')?.code, 'EACCES')
    assert.equal(byPath.get('pipe')?.code, 'ERR_FMQ_SPECIAL_FILE')
    assert.equal(byPath.get('latin1-\ufffd.txt')?.code, 'ERR_FMQ_BAD_NAME')
    assert.ok(child.lines.some((line) => line.type === 'partial' && line.skipped === 4), 'the count')

    const mirrored = await digests(dst)
    const expected = [...Object.keys(READABLE), 'locked/inner/hidden.txt'].sort()
    assert.deepEqual([...mirrored.keys()].sort(), expected, 'the readable tree, stale.txt deleted, the copy under locked/ kept')
    for (const [name, content] of Object.entries(READABLE)) assert.equal(await readFile(join(dst, name), 'utf8'), content)
    assert.equal(await readFile(join(dst, 'locked/inner/hidden.txt'), 'utf8'), 'an older copy\n')
  })

  test('fmq track --once, text output: one "fmq: skipped PATH: REASON" line on stderr per entry', async () => {
    const src = await source('text-src')
    const dst = join(dir, 'text-dst')
    const child = fmq(['track', src, dst, '--once'], false)
    assert.equal(await child.exited, 23)
    const skipped = child.stderr.filter((line) => line.startsWith('fmq: skipped '))
    assert.deepEqual(skipped.sort(), [
      'fmq: skipped latin1-\ufffd.txt: name not valid UTF-8',
      'fmq: skipped locked: cannot list folder (permission denied)',
      'fmq: skipped pipe: a FIFO, not a regular file',
      'fmq: skipped secret.txt: cannot read (permission denied)',
    ])
    assert.ok(child.stderr.includes('fmq: partial transfer: 4 entries skipped'), child.stderr.join(' | '))
    assert.ok(!child.stderr.some((line) => /Napi|terminate called|at .*\(/.test(line)), 'no abort, no stack trace')
  })

  test('a track that skips nothing still exits 0', async () => {
    const src = join(dir, 'clean-src')
    await write(src, READABLE)
    execFileSync('chmod', ['-R', 'a+rwX', src])
    const child = fmq(['track', src, join(dir, 'clean-dst'), '--once'])
    assert.equal(await child.exited, 0, `stderr: ${child.stderr.join(' | ')}`)
    assert.deepEqual(skippedPaths(child.lines), [])
  })

  test('fmq server starts over an unreadable folder and names it; fmq client --once gets the rest and exits 23', async () => {
    const src = await source('server-src')
    const state = join(dir, 'server-state')
    await mkdir(state, { mode: 0o777 })
    await chmod(state, 0o777)
    const server = fmq(['server', '-p', `${src}=/`, '-b', `ipc://${join(dir, 'server.sock')}`, '--state', state])
    const endpoint = await server.endpoint()
    await server.waitFor((line) => line.type === 'skipped' && line.path === 'secret.txt', 20_000, 'the unreadable file named')
    assert.deepEqual(skippedPaths(server.lines), ['latin1-\ufffd.txt', 'locked', 'pipe', 'secret.txt'])
    const locked = server.lines.find((line) => line.type === 'skipped' && line.path === 'locked')!
    assert.equal(locked.virtualPath, '/locked')
    assert.equal(locked.location, src)

    const inbox = join(dir, 'server-inbox')
    const client = fmq(['client', '-C', endpoint, '-i', inbox, '--mirror', '--once'])
    assert.equal(await client.exited, 23, `stderr: ${client.stderr.join(' | ')}`)
    assert.ok(client.lines.some((line) => line.type === 'synced' && line.skipped === 4), 'the synced mark says how many')
    assert.ok(client.lines.some((line) => line.type === 'server-skipped' && line.skipped === 4))
    assert.deepEqual([...(await digests(inbox)).keys()].sort(), Object.keys(READABLE).sort())
    assert.equal(server.child.exitCode, null, 'the server is still running')
  })

  test('an unreadable SRC, or publish folder, is one line and exit code 2, never an abort', async () => {
    const src = join(dir, 'closed-src')
    await write(src, { 'f.txt': 'f\n' })
    await chmod(src, 0o000)
    const track = fmq(['track', src, join(dir, 'closed-dst'), '--once'], false)
    assert.equal(await track.exited, 2)
    assert.deepEqual(track.stderr, [`fmq: cannot read SRC ${src}: permission denied`])
    const server = fmq(['server', '-p', `${src}=/`, '-b', `ipc://${join(dir, 'closed.sock')}`], false)
    assert.equal(await server.exited, 2)
    assert.deepEqual(server.stderr, [`fmq: publish directory ${src} cannot be read (permission denied)`])
  })
})
