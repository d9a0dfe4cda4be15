import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import {
  Client,
  ClientClosedError,
  InboxNotSetError,
  InvalidClientOptionError,
  RefusedFileNameError,
  type ClientEventRecord,
  type DeliveredEvent,
  type SubscribedEvent,
} from '../../src/client/index.js'
import { UnsafeNameError } from '../../src/fs/errors.js'
import { MessageId, type Icanhaz } from '../../src/protocol/generated/fmq_msg.js'
import { ReferencePeer, nextEvent, tempDir, withTimeout } from '../peers/reference-server.js'

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex')

test('events() yields typed records and ends quietly on close', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  try {
    const seen: ClientEventRecord[] = []
    const consumer = (async () => {
      for await (const event of client.events()) {
        if (event.type !== 'progress') seen.push(event)
        if (event.type === 'delivered') void client.close()
      }
    })()
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    await peer.sendFiles([['/hello.txt', Buffer.from('hi')]])
    await withTimeout(consumer, 5000, 'the iterator to end')
    assert.deepEqual(
      seen.map((event) => event.type),
      ['connected', 'subscribed', 'delivered', 'disconnected'],
    )
    const delivered = seen[2] as ClientEventRecord & { type: 'delivered' }
    assert.equal(delivered.virtualPath, '/hello.txt')
    assert.equal(delivered.endpoint, peer.endpoint)
    // An iterator asked for after close ends at once.
    assert.deepEqual(await client.events().next(), { value: undefined, done: true })
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('error events are emitted only where someone listens: without a listener a bad name does not crash anything', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    assert.equal(client.listenerCount('error'), 0)
    const iterator = client.events()
    await peer.sendFile(subscriber, '/../nope', Buffer.from('x'))
    const delivered = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.sendFile(subscriber, '/fine', Buffer.from('y'))
    await delivered
    // The iterator saw the error even though no listener did.
    const records: ClientEventRecord[] = []
    for (;;) {
      const { value } = await iterator.next()
      if (value === undefined) break
      records.push(value)
      if (value.type === 'delivered') break
    }
    const error = records.find((record) => record.type === 'error')
    assert.ok(error?.type === 'error' && error.error instanceof RefusedFileNameError)
    await iterator.return?.()
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('subscribe() before connect() waits, normalises the path, and resolves on ICANHAZ-OK', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  try {
    const subscribed = nextEvent<SubscribedEvent>(client, 'subscribed')
    let settled = false
    const pending = client.subscribe('//photos//2024/').then(() => {
      settled = true
    })
    await client.connect(peer.endpoint)
    assert.equal(settled, false)
    await pending
    assert.equal((await subscribed).path, '/photos/2024')
    const [icanhaz] = peer.received(MessageId.ICANHAZ) as Icanhaz[]
    assert.equal(icanhaz?.path, '/photos/2024')
    assert.equal(icanhaz?.options.get('RESYNC'), undefined, 'no RESYNC unless asked')
    assert.equal(icanhaz?.options.get('SYNCED'), '1', 'our SYNCED mark is asked for (a reference server ignores it)')
    // Asking again for the same path returns at once.
    await client.subscribe('/photos/2024')
    assert.equal(peer.received(MessageId.ICANHAZ).length, 1)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('API misuse: bad options, no inbox, unsafe subscriptions, pending subscribe on close, calls after close', async () => {
  assert.throws(() => new Client({ creditSlice: 0 }), InvalidClientOptionError)
  assert.throws(() => new Client({ creditWindow: 1000, creditSlice: 2000 }), InvalidClientOptionError)
  assert.throws(() => new Client({ versions: [3 as 1] }), InvalidClientOptionError)
  assert.throws(() => new Client({ login: 'only-login' }), InvalidClientOptionError)
  assert.ok(Object.isFrozen(new Client().options))

  const noInbox = new Client()
  await assert.rejects(noInbox.connect('tcp://127.0.0.1:1'), InboxNotSetError)
  await noInbox.close()

  const dir = await tempDir()
  const client = new Client({ heartbeat: 100 })
  client.setInbox(join(dir.path, 'later'))
  assert.equal(client.inbox, join(dir.path, 'later'))
  await assert.rejects(client.subscribe('/a/../b'), UnsafeNameError)
  await assert.rejects(client.subscribe('relative'), UnsafeNameError)
  await assert.rejects(client.connect('nonsense://x'))
  const pending = client.subscribe('/never-answered')
  await client.close()
  await assert.rejects(pending, ClientClosedError)
  await assert.rejects(client.subscribe('/'), ClientClosedError)
  await assert.rejects(client.connect('tcp://127.0.0.1:1'), ClientClosedError)
  await dir.remove()
})

for (const version of [2, 1] as const) {
  test(`v${version} resync: ICANHAZ carries RESYNC=1 and the SHA-1 of what the inbox holds, keyed relative to the path`, async () => {
    const dir = await tempDir()
    const inbox = join(dir.path, 'inbox')
    await mkdir(join(inbox, 'photos/2024'), { recursive: true })
    await mkdir(join(inbox, '.fmq/partial'), { recursive: true })
    await writeFile(join(inbox, 'photos/a.jpg'), 'A')
    await writeFile(join(inbox, 'photos/2024/b.jpg'), 'B')
    await writeFile(join(inbox, 'top.txt'), 'T')
    await writeFile(join(inbox, '.fmq/partial/junk.part'), 'J')
    await symlink(join(inbox, 'top.txt'), join(inbox, 'photos/link.jpg'))
    const peer = await ReferencePeer.start({ version, hugzInterval: 200 })
    const client = new Client({ inbox, versions: [version], heartbeat: 100, resync: true })
    try {
      await client.connect(peer.endpoint)
      await client.subscribe('/photos')
      await client.subscribe('/')
      const [photos, root] = peer.received(MessageId.ICANHAZ) as Icanhaz[]
      assert.equal(photos?.options.get('RESYNC'), '1')
      assert.deepEqual(
        new Map([...(photos?.cache ?? [])].sort()),
        new Map([
          ['2024/b.jpg', sha1('B')],
          ['a.jpg', sha1('A')],
        ]),
      )
      assert.deepEqual(
        new Map([...(root?.cache ?? [])].sort()),
        new Map([
          ['photos/2024/b.jpg', sha1('B')],
          ['photos/a.jpg', sha1('A')],
          ['top.txt', sha1('T')],
        ]),
        'no state directory, no symlinks',
      )
    } finally {
      await client.close()
      await peer.close()
      await dir.remove()
    }
  })
}

test('v1 resync with 300 files: only the 255 entries a version-1 dictionary can hold are sent', async () => {
  const dir = await tempDir()
  const inbox = join(dir.path, 'inbox')
  await mkdir(inbox)
  await Promise.all(Array.from({ length: 300 }, (_, i) => writeFile(join(inbox, `f${i}`), String(i))))
  await writeFile(join(inbox, 'x'.repeat(240)), 'long name: name=sha1 is over 255 octets')
  const peer = await ReferencePeer.start({ version: 1, hugzInterval: 200 })
  const client = new Client({ inbox, versions: [1], heartbeat: 100, resync: true })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const [icanhaz] = peer.received(MessageId.ICANHAZ) as Icanhaz[]
    assert.equal(icanhaz?.cache.size, 255)
    assert.ok(![...(icanhaz?.cache.keys() ?? [])].some((key) => key.length > 200))
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('several servers at once: one DEALER each, files from both arrive', async () => {
  const dir = await tempDir()
  const inbox = join(dir.path, 'inbox')
  const one = await ReferencePeer.start({ version: 2 })
  const two = await ReferencePeer.start({ version: 1, hugzInterval: 200 })
  const client = new Client({ inbox, heartbeat: 100, greetingTimeout: 200 })
  try {
    await client.connect(one.endpoint)
    await client.connect(two.endpoint)
    await client.connect(one.endpoint) // again: nothing new
    await client.subscribe('/')
    const fromTwo = await two.waitForSubscriber()
    const fromOne = await one.waitForSubscriber()
    const both = new Promise<string[]>((resolve) => {
      const seen: string[] = []
      client.on('delivered', (event) => {
        seen.push(event.endpoint)
        if (seen.length === 2) resolve(seen.sort())
      })
    })
    await one.sendFile(fromOne, '/from-one', Buffer.from('1'))
    await two.sendFile(fromTwo, '/from-two', Buffer.from('2'))
    assert.deepEqual(await withTimeout(both, 5000, 'two deliveries'), [one.endpoint, two.endpoint].sort())
    assert.equal(await readFile(join(inbox, 'from-one'), 'utf8'), '1')
    assert.equal(await readFile(join(inbox, 'from-two'), 'utf8'), '2')
    assert.equal(one.received(MessageId.OHAI).length, 1)
  } finally {
    await client.close()
    await one.close()
    await two.close()
    await dir.remove()
  }
})
