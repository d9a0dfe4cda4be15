import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstat, mkdir, readdir, readlink, rename, symlink } from 'node:fs/promises'
import { join } from 'node:path'

import { Client, RefusedFileNameError, type DeliveredEvent, type ErrorEvent } from '../../src/client/index.js'
import { ReferencePeer, nextEvent, record, tempDir } from '../peers/reference-server.js'

/**
 * The inbox changes while a file is being received: the checks made at the first chunk are made
 * again before the file is renamed into place.
 */
test('a symbolic link put in place of a directory or of the name itself while a file is received: refused, nothing written outside', async () => {
  const dir = await tempDir()
  const inbox = join(dir.path, 'inbox')
  const outside = join(dir.path, 'outside')
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox, versions: [2], heartbeat: 100 })
  const errors = record<ErrorEvent>(client, 'error')
  try {
    await mkdir(outside)
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()

    // A directory on the way becomes a link once the first chunk is written.
    const first = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.sendFile(subscriber, '/sub/first.txt', Buffer.from('makes sub'))
    await first
    await peer.cheezburger(subscriber, { filename: '/sub/late.txt', offset: 0n, chunk: Buffer.from('evil') })
    // Chunks are stored in order: once this file arrives, the first chunk above was handled.
    const marker = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.sendFile(subscriber, '/marker.txt', Buffer.from('m'))
    await marker
    await rename(join(inbox, 'sub'), join(dir.path, 'moved'))
    await symlink(outside, join(inbox, 'sub'))
    const refusedDir = nextEvent<ErrorEvent>(client, 'error')
    await peer.endFile(subscriber, '/sub/late.txt', 4)
    const dirError = (await refusedDir).error
    assert.ok(dirError instanceof RefusedFileNameError, String(dirError))
    assert.equal(dirError.reason, 'outside-inbox')

    // The name itself becomes a link.
    await peer.cheezburger(subscriber, { filename: '/name.txt', offset: 0n, chunk: Buffer.from('evil') })
    const marker2 = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.sendFile(subscriber, '/marker2.txt', Buffer.from('m'))
    await marker2
    await symlink(join(outside, 'target.txt'), join(inbox, 'name.txt'))
    const refusedName = nextEvent<ErrorEvent>(client, 'error')
    await peer.endFile(subscriber, '/name.txt', 4)
    const nameError = (await refusedName).error
    assert.ok(nameError instanceof RefusedFileNameError, String(nameError))
    assert.equal(nameError.reason, 'outside-inbox')

    assert.deepEqual(await readdir(outside), [])
    assert.ok((await lstat(join(inbox, 'name.txt'))).isSymbolicLink(), 'the link is left alone')
    assert.equal(await readlink(join(inbox, 'name.txt')), join(outside, 'target.txt'))
    assert.deepEqual(await readdir(join(inbox, '.fmq', 'partial')), [])
    assert.equal(errors.length, 2)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})
