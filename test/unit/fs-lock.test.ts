/**
 * lockFolder (src/fs/lock.ts): one holder at a time, named in the error; released, taken
 * again; a lock of a process that is gone, another host's, and a file that is not a lock.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { FolderLockedError, lockFolder } from '../../src/index.js'
import { scratch } from '../fixtures/scratch.js'

describe('lockFolder', () => {
  const scratchpad = scratch('lock')

  test('one holder; a second is refused, naming the first; released, it is taken again', async () => {
    const state = join(scratchpad.dir, 'a', '.fmq')
    const lock = await lockFolder(state, 'fmq track')
    const held = JSON.parse(await readFile(join(state, 'lock'), 'utf8')) as { pid: number; command: string }
    assert.deepEqual([held.pid, held.command], [process.pid, 'fmq track'])
    await assert.rejects(lockFolder(state, 'fmq client'), (error: unknown) => {
      assert.ok(error instanceof FolderLockedError)
      assert.equal(error.code, 'ERR_FMQ_LOCKED')
      assert.equal(error.owner.pid, process.pid)
      assert.match(error.message, new RegExp(`in use by fmq track \\(pid ${process.pid}\\)`))
      return true
    })
    // The state folder is private; the folder it was made in (an inbox, DST) is not.
    assert.equal((await stat(state)).mode & 0o777, 0o700)
    assert.equal((await stat(join(scratchpad.dir, 'a'))).mode & 0o777, 0o777 & ~process.umask())
    await lock.release()
    await assert.rejects(readFile(join(state, 'lock')))
    const again = await lockFolder(state, 'fmq client')
    await again.release()
  })

  test('a lock of a process that is gone, or a file that is not a lock, is taken over; another host\'s stands', async () => {
    const state = join(scratchpad.dir, 'b')
    await lockFolder(state, 'x').then((lock) => lock.release())
    await writeFile(join(state, 'lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), command: 'fmq track' }))
    await (await lockFolder(state, 'fmq track')).release()
    await writeFile(join(state, 'lock'), '')
    await (await lockFolder(state, 'fmq track')).release()
    await writeFile(join(state, 'lock'), JSON.stringify({ pid: 1, host: `not-${hostname()}`, command: 'fmq client' }))
    await assert.rejects(lockFolder(state, 'fmq track'), /in use by fmq client \(pid 1 on not-/)
  })
})
