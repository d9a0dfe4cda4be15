/**
 * The client's `deletes: false` (`--no-delete`): an add-only receiver. A real server deletes a
 * file; a control client deletes it too, the add-only one keeps it, says nothing, and keeps it
 * in its manifest.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import type { DurableState } from '../../src/client/durable.js'
import { resolveClientOptions } from '../../src/client/options.js'
import { InvalidClientOptionError } from '../../src/client/errors.js'
import { write } from '../fixtures/tree.js'

/** Resolves on the first `name` event for `virtualPath`. */
function once(client: Client, name: 'delivered' | 'deleted', virtualPath: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (event: { virtualPath: string }) => {
      if (event.virtualPath !== virtualPath) return
      client.off(name as 'delivered', listener)
      resolve()
    }
    client.on(name as 'delivered', listener)
  })
}

describe('client deletes: false', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-nodelete-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  test('the option defaults to true and cannot go with mirror', () => {
    assert.equal(resolveClientOptions({}).deletes, true)
    assert.equal(resolveClientOptions({ deletes: false }).deletes, false)
    assert.throws(() => resolveClientOptions({ deletes: false, resync: true, mirror: true }), InvalidClientOptionError)
    assert.throws(() => resolveClientOptions({ deletes: 'no' as unknown as boolean }), InvalidClientOptionError)
  })

  test('a file deleted at the source stays in the inbox and in the manifest, without a deleted event', async () => {
    const source = join(dir, 'source')
    await write(source, { 'a.txt': 'alpha', 'b.txt': 'beta' })
    const server = new Server({ heartbeat: 200 })
    closers.push(() => server.close())
    await server.publish(source, '/')
    const at = await server.bind('tcp://127.0.0.1:*')

    async function client(name: string, deletes: boolean) {
      const inbox = join(dir, name)
      await mkdir(inbox, { recursive: true })
      const c = new Client({ inbox, resync: true, heartbeat: 200, deletes })
      c.on('error', () => undefined)
      closers.push(() => c.close())
      const both = Promise.all([once(c, 'delivered', '/a.txt'), once(c, 'delivered', '/b.txt')])
      await c.connect(at)
      await c.subscribe('/')
      await both
      return { client: c, inbox }
    }
    const control = await client('control', true)
    const keeper = await client('keeper', false)
    const deletedByKeeper: string[] = []
    keeper.client.on('deleted', (event) => deletedByKeeper.push(event.virtualPath))

    const controlDeleted = once(control.client, 'deleted', '/a.txt')
    await unlink(join(source, 'a.txt'))
    await controlDeleted
    // Each client gets its messages in order: once c.txt is in, the DELETE before it was handled.
    const later = once(keeper.client, 'delivered', '/c.txt')
    await writeFile(join(source, 'c.txt'), 'gamma')
    await later

    assert.equal(await readFile(join(keeper.inbox, 'a.txt'), 'utf8'), 'alpha')
    assert.equal(await readFile(join(keeper.inbox, 'c.txt'), 'utf8'), 'gamma')
    assert.deepEqual(deletedByKeeper, [])
    const durable = (keeper.client as unknown as { durable(): DurableState | undefined }).durable()
    assert.equal(durable?.manifest.get('a.txt')?.size, 5)
    await assert.rejects(readFile(join(control.inbox, 'a.txt')), { code: 'ENOENT' })
  })
})
