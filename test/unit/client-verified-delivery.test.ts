import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'

import { Client, DigestMismatchError, MAX_REASKS, type DeliveredEvent, type ErrorEvent } from '../../src/client/index.js'
import { HEADER, OPTION } from '../../src/protocol/extensions.js'
import { MessageId, type Icanhaz } from '../../src/protocol/generated/fmq_msg.js'
import { ReferencePeer, nextEvent, record, tempDir } from '../peers/reference-server.js'

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

/** A peer, a client subscribed to "/" and the peer's view of it. */
async function setup(version: 1 | 2) {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version, hugzInterval: 200 })
  const inbox = join(dir.path, 'inbox')
  const client = new Client({ inbox, versions: [version], heartbeat: 100 })
  const errors = record<ErrorEvent>(client, 'error')
  const subscribed = record<{ path: string }>(client, 'subscribed')
  await client.connect(peer.endpoint)
  await client.subscribe('/')
  const subscriber = await peer.waitForSubscriber()
  const cleanup = async (): Promise<void> => {
    await client.close()
    await peer.close()
    await dir.remove()
  }
  return { dir, peer, inbox, client, errors, subscribed, subscriber, cleanup }
}

const mismatch = (client: Client): Promise<ErrorEvent> =>
  nextEvent<ErrorEvent>(client, 'error', (event) => event.error instanceof DigestMismatchError)

for (const version of [2, 1] as const) {
  test(`v${version}: a file whose SHA-1 does not match its header is never renamed into the inbox; the client asks again (RESYNC=1, ONCE=1) and the correct resend is delivered with its mtime and mode`, async () => {
    const s = await setup(version)
    try {
      const target = join(s.inbox, 'photos/a.jpg')
      // Whether the file is in the inbox, looked at the moment each delivery is reported.
      const atDelivery: [string, boolean][] = []
      s.client.on('delivered', (event: DeliveredEvent) => atDelivery.push([event.virtualPath, existsSync(target)]))
      const content = randomBytes(2_500_000)
      const mtime = Date.UTC(2021, 5, 6, 7, 8, 9)
      const good = new Map([
        [HEADER.SIZE, String(content.length)],
        [HEADER.SHA1, sha1(content)],
        [HEADER.MTIME, String(mtime)],
        [HEADER.MODE, '640'],
      ])
      const bad = new Map([...good, [HEADER.SHA1, sha1(Buffer.from('something else'))]])

      const failed = mismatch(s.client)
      await s.peer.sendFile(s.subscriber, '/photos/a.jpg', content, bad)
      // Another file after it, delivered while the bad one must be absent.
      const other = nextEvent<DeliveredEvent>(s.client, 'delivered', (event) => event.virtualPath === '/other.txt')
      await s.peer.sendFile(s.subscriber, '/other.txt', Buffer.from('other'))
      await other
      assert.equal(await exists(target), false, 'absent when the next file is delivered')

      const { error } = await failed
      assert.ok(error instanceof DigestMismatchError)
      assert.equal(error.code, 'ERR_FMQ_DIGEST_MISMATCH')
      assert.equal(error.name, 'DigestMismatchError')
      assert.equal(error.virtualPath, '/photos/a.jpg')
      assert.equal(error.check, 'sha1')
      assert.equal(error.expected, bad.get(HEADER.SHA1))
      assert.equal(error.actual, sha1(content))
      assert.equal(error.retrying, true)

      const [, reask] = (await s.peer.waitForMessages(MessageId.ICANHAZ, 2)) as Icanhaz[]
      assert.equal(reask?.path, '/photos/a.jpg')
      assert.equal(reask?.options.get(OPTION.RESYNC), '1')
      assert.equal(reask?.options.get(OPTION.ONCE), '1')
      assert.equal(reask?.cache.size, 0)
      assert.equal(await exists(target), false)
      assert.deepEqual(await readdir(join(s.inbox, '.fmq', 'partial')), [], 'the corrupted partial file is gone')

      const delivered = nextEvent<DeliveredEvent>(s.client, 'delivered', (event) => event.virtualPath === '/photos/a.jpg')
      await s.peer.sendFile(s.subscriber, '/photos/a.jpg', content, good)
      const event = await delivered
      assert.ok((await readFile(event.path)).equals(content))
      const stats = await stat(event.path)
      assert.equal(stats.mtimeMs, mtime)
      assert.equal(stats.mode & 0o777, 0o640)
      // The re-ask is not a subscription: nothing published for it.
      assert.deepEqual(s.subscribed.map((sub) => sub.path), ['/'])
      assert.deepEqual(
        s.errors.map((e) => e.error.name),
        ['DigestMismatchError'],
      )
      assert.deepEqual(atDelivery, [
        ['/other.txt', false],
        ['/photos/a.jpg', true],
      ])
    } finally {
      await s.cleanup()
    }
  })
}

test(`after ${MAX_REASKS} re-asks of one file the client gives up: the next mismatch is reported with retrying = false and nothing is asked`, async () => {
  const s = await setup(2)
  try {
    const content = Buffer.from('the real content')
    const bad = new Map([[HEADER.SHA1, sha1(Buffer.from('a lie'))]])
    const reported: DigestMismatchError[] = []
    for (let attempt = 1; attempt <= MAX_REASKS + 1; attempt++) {
      const failed = mismatch(s.client)
      await s.peer.sendFile(s.subscriber, '/f.txt', content, bad)
      reported.push((await failed).error as DigestMismatchError)
    }
    // A HUGZ round trip: a re-ask queued after the last mismatch would reach the peer before HUGZ-OK.
    await s.peer.send(s.subscriber, { id: MessageId.HUGZ })
    await s.peer.waitForMessages(MessageId.HUGZ_OK, 1)
    assert.deepEqual(
      reported.map((error) => error.retrying),
      [true, true, true, false],
    )
    const icanhaz = s.peer.received(MessageId.ICANHAZ) as Icanhaz[]
    assert.deepEqual(
      icanhaz.map((message) => message.path),
      ['/', '/f.txt', '/f.txt', '/f.txt'],
    )
    assert.equal(await exists(join(s.inbox, 'f.txt')), false)

    // A good delivery resets the count.
    const delivered = nextEvent<DeliveredEvent>(s.client, 'delivered')
    await s.peer.sendFile(s.subscriber, '/f.txt', content, new Map([[HEADER.SHA1, sha1(content)]]))
    await delivered
    const failed = mismatch(s.client)
    await s.peer.sendFile(s.subscriber, '/f.txt', content, bad)
    assert.equal(((await failed).error as DigestMismatchError).retrying, true)
    // The good copy delivered before stays: a bad new version never replaces it.
    assert.ok((await readFile(join(s.inbox, 'f.txt'))).equals(content))
  } finally {
    await s.cleanup()
  }
})

test('a file shorter than its size header is discarded as a size mismatch; a file without sha1 header is delivered as from a reference server', async () => {
  const s = await setup(2)
  try {
    const failed = mismatch(s.client)
    await s.peer.cheezburger(s.subscriber, { filename: '/short.bin', offset: 0n, headers: new Map([[HEADER.SIZE, '2000']]), chunk: Buffer.alloc(1500) })
    await s.peer.endFile(s.subscriber, '/short.bin', 1500)
    const error = (await failed).error as DigestMismatchError
    assert.equal(error.check, 'size')
    assert.equal(error.expected, '2000')
    assert.equal(error.actual, '1500')
    assert.equal(await exists(join(s.inbox, 'short.bin')), false)

    const delivered = nextEvent<DeliveredEvent>(s.client, 'delivered')
    await s.peer.sendFile(s.subscriber, '/plain.bin', Buffer.from('no headers at all'))
    assert.ok((await readFile((await delivered).path)).equals(Buffer.from('no headers at all')))
  } finally {
    await s.cleanup()
  }
})

test('a re-ask refused by the server (SRSLY) is an error event, and does not touch the user subscriptions', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2, refuse: ['/secret.bin'] })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  const errors = record<ErrorEvent>(client, 'error')
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    const refused = nextEvent<ErrorEvent>(client, 'error', (event) => event.error.name === 'SubscriptionRefusedError')
    await peer.sendFile(subscriber, '/secret.bin', Buffer.from('x'), new Map([[HEADER.SHA1, '0'.repeat(40)]]))
    const { error } = await refused
    assert.equal((error as { path?: string }).path, '/secret.bin')
    assert.deepEqual(
      errors.map((event) => event.error.name),
      ['DigestMismatchError', 'SubscriptionRefusedError'],
    )
    // The subscription to "/" still works.
    const delivered = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.sendFile(subscriber, '/fine.txt', Buffer.from('fine'))
    assert.equal((await delivered).virtualPath, '/fine.txt')
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})
