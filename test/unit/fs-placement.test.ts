/**
 * Where a server's name lands in the inbox (src/fs/placement.ts): judged once per file, the
 * answer follows the inbox when the client moves it (`setInbox`), and a refused name stays refused.
 */
import assert from 'node:assert/strict'
import { mkdtemp, mkdir, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { InboxPlacement } from '../../src/fs/placement.js'

describe('InboxPlacement.target', () => {
  let dir: string
  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'fmq-placement-')))
    await mkdir(join(dir, 'one'))
    await mkdir(join(dir, 'two'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('the same name asked again lands in the inbox of now, not the one it was first judged in', () => {
    let inbox = join(dir, 'one')
    const placement = new InboxPlacement(
      () => ({ inbox, stateDir: join(inbox, '.fmq') }),
      (name, reason) => new Error(`${name}: ${reason}`),
    )
    assert.deepEqual(placement.target('/photos/a.jpg', false), { path: join(dir, 'one', 'photos', 'a.jpg'), virtualPath: '/photos/a.jpg' })
    assert.deepEqual(placement.target('/photos/a.jpg', false), { path: join(dir, 'one', 'photos', 'a.jpg'), virtualPath: '/photos/a.jpg' })
    inbox = join(dir, 'two')
    assert.deepEqual(placement.target('/photos/a.jpg', false), { path: join(dir, 'two', 'photos', 'a.jpg'), virtualPath: '/photos/a.jpg' })
    assert.equal(placement.target('/b.txt', false).path, join(dir, 'two', 'b.txt'))
  })

  test('a name in the state directory is refused every time it is asked', () => {
    const inbox = join(dir, 'one')
    const placement = new InboxPlacement(
      () => ({ inbox, stateDir: join(inbox, '.fmq') }),
      (name, reason) => new Error(`${name}: ${reason}`),
    )
    for (let i = 0; i < 2; i++) assert.throws(() => placement.target('/.fmq/partial/x.part', false), /state-dir/)
    assert.throws(() => placement.target('/../x', false), /unsafe/)
  })
})
