/**
 * One writer per destination: `fmq track` and `fmq client`, real child processes, lock their
 * state folder; a second one on the same DST or inbox exits at once with code 2 and a line
 * naming the first's pid; the lock of a process killed with SIGKILL is taken over.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { sameTree, write } from '../fixtures/tree.js'
import type { FmqProcess } from '../peers/fmq-process.js'
import { scratch } from '../fixtures/scratch.js'

describe('one writer per destination', () => {
  const scratchpad = scratch('cli-lock')
  const fmq = (args: string[]): FmqProcess => scratchpad.fmq(args)

  test('a second fmq track on the same DST is refused (exit 2, naming the pid); after a SIGKILL the lock is taken over', async () => {
    const src = join(scratchpad.dir, 'src')
    const dst = join(scratchpad.dir, 'dst')
    await write(src, { 'a.txt': 'a\n', 'b/c.txt': 'c\n' })
    const first = fmq(['track', src, dst])
    await first.waitFor((line) => line.type === 'synced', 30_000, 'the first sync')

    const second = fmq(['track', src, dst, '--once'])
    assert.equal(await second.exited, 2)
    const said = second.lines.find((line) => line.type === 'error')?.error ?? second.stderr.join('\n')
    assert.match(String(said), new RegExp(`in use by fmq track \\(pid ${first.child.pid}\\)`))

    // Same DST under another spelling (a trailing slash, a relative path): the same lock.
    const third = fmq(['track', src, `${dst}/`, '--once'])
    assert.equal(await third.exited, 2)

    await first.kill('SIGKILL')
    const held = JSON.parse(await readFile(join(dst, '.fmq', 'lock'), 'utf8')) as { pid: number }
    assert.equal(held.pid, first.child.pid, 'the dead process left its lock behind')
    await write(src, { 'later.txt': 'later\n' })
    const after = fmq(['track', src, dst, '--once'])
    assert.equal(await after.exited, 0, after.stderr.join(' | '))
    assert.ok(await sameTree(src, dst))
    await assert.rejects(readFile(join(dst, '.fmq', 'lock')), 'released on exit')
  })

  test('a lock file of a process that is gone, or one that is not a lock, is taken over', async () => {
    const src = join(scratchpad.dir, 'stale-src')
    const dst = join(scratchpad.dir, 'stale-dst')
    await write(src, { 'x.txt': 'x\n' })
    await write(dst, { '.fmq/placeholder': '' })
    const gone = spawn(process.execPath, ['-e', ''])
    const pid = gone.pid!
    await new Promise((resolve) => gone.once('exit', resolve))
    await writeFile(join(dst, '.fmq', 'lock'), JSON.stringify({ pid, host: hostname(), command: 'fmq track' }))
    const run = fmq(['track', src, dst, '--once'])
    assert.equal(await run.exited, 0, run.stderr.join(' | '))
    await writeFile(join(dst, '.fmq', 'lock'), 'not json')
    const again = fmq(['track', src, dst, '--once'])
    assert.equal(await again.exited, 0, again.stderr.join(' | '))
    assert.ok(await sameTree(src, dst))
  })

  test('a second fmq relay on the same inbox is refused (exit 2, naming the pid)', async () => {
    const src = join(scratchpad.dir, 'relayed')
    await write(src, { 'r.txt': 'r\n' })
    const server = fmq(['server', '-p', `${src}=/`, '-b', 'tcp://127.0.0.1:*'])
    const endpoint = await server.endpoint()
    const inbox = join(scratchpad.dir, 'relay-inbox')
    const first = fmq(['relay', '-u', endpoint, '-i', inbox, '-b', 'tcp://127.0.0.1:*'])
    await first.waitFor((line) => line.type === 'synced', 30_000, 'the first relay in sync')
    const second = fmq(['relay', '-u', endpoint, '-i', inbox, '-b', 'tcp://127.0.0.1:*'])
    assert.equal(await second.exited, 2)
    const said = second.lines.find((line) => line.type === 'error')?.error ?? second.stderr.join('\n')
    assert.match(String(said), new RegExp(`in use by fmq relay \\(pid ${first.child.pid}\\)`))
  })

  test('a second fmq client on the same inbox is refused (exit 2, naming the pid)', async () => {
    const src = join(scratchpad.dir, 'served')
    await write(src, { 'f.txt': 'f\n' })
    const server = fmq(['server', '-p', `${src}=/`, '-b', 'tcp://127.0.0.1:*'])
    const endpoint = await server.endpoint()
    const inbox = join(scratchpad.dir, 'inbox')
    const first = fmq(['client', '-C', endpoint, '-i', inbox, '--resync'])
    await first.waitFor((line) => line.type === 'synced', 30_000, 'the first client in sync')
    const second = fmq(['client', '-C', endpoint, '-i', inbox, '--resync', '--once'])
    assert.equal(await second.exited, 2)
    const said = second.lines.find((line) => line.type === 'error')?.error ?? second.stderr.join('\n')
    assert.match(String(said), new RegExp(`in use by fmq client \\(pid ${first.child.pid}\\)`))
    // Another inbox is another destination.
    const other = fmq(['client', '-C', endpoint, '-i', join(scratchpad.dir, 'inbox2'), '--resync', '--once'])
    assert.equal(await other.exited, 0, other.stderr.join(' | '))
  })
})
