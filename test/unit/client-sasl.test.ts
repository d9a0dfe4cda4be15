import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

import {
  AccessRefusedError,
  Client,
  SubscriptionRefusedError,
  type AccessDeniedEvent,
} from '../../src/client/index.js'
import { MessageId, type Yarly } from '../../src/protocol/generated/fmq_msg.js'
import { ReferencePeer, nextEvent, tempDir } from '../peers/reference-server.js'

const ACCOUNT = { login: 'reader', password: 's3cret' }

/** Files below the inbox, leaving out the state directory. */
async function inboxFiles(inbox: string): Promise<string[]> {
  const entries = await readdir(inbox, { recursive: true })
  return entries.filter((entry) => entry !== '.fmq' && !entry.startsWith('.fmq/')).sort()
}

for (const version of [2, 1] as const) {
  test(`v${version} PLAIN with the right password: YARLY carries NUL login NUL password, then files flow`, async () => {
    const dir = await tempDir()
    const peer = await ReferencePeer.start({ version, plain: ACCOUNT, hugzInterval: 200 })
    const inbox = join(dir.path, 'inbox')
    const client = new Client({ inbox, versions: [version], heartbeat: 100, ...ACCOUNT })
    try {
      await client.connect(peer.endpoint)
      await client.subscribe('/')
      const [yarly] = peer.received(MessageId.YARLY) as Yarly[]
      assert.equal(yarly?.mechanism, 'PLAIN')
      assert.deepEqual(yarly?.response, Buffer.from('\0reader\0s3cret'))
      const delivered = nextEvent(client, 'delivered')
      await peer.sendFiles([['/secret/plan.txt', Buffer.from('authenticated')]])
      await delivered
      assert.equal(await readFile(join(inbox, 'secret/plan.txt'), 'utf8'), 'authenticated')
    } finally {
      await client.close()
      await peer.close()
      await dir.remove()
    }
  })
}

test('PLAIN with a wrong password: access-denied, the link stops (one OHAI, no retries), nothing written', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2, plain: ACCOUNT })
  const inbox = join(dir.path, 'inbox')
  const intruder = new Client({
    inbox,
    versions: [2],
    heartbeat: 50,
    greetingTimeout: 100,
    reconnectDelay: 1,
    login: 'reader',
    password: 'guess',
  })
  const friend = new Client({ inbox: join(dir.path, 'friend'), versions: [2], heartbeat: 50, ...ACCOUNT })
  try {
    const denied = nextEvent<AccessDeniedEvent>(intruder, 'access-denied')
    await intruder.connect(peer.endpoint)
    const subscription = intruder.subscribe('/')
    assert.equal((await denied).endpoint, peer.endpoint)
    // No server is left to answer: the pending subscription is rejected, not left hanging.
    await assert.rejects(subscription, AccessRefusedError)

    // Meanwhile a legitimate client gets a file (the server is fine) and heartbeats: its
    // fourth HUGZ comes 200 ms later, twice the intruder's greeting timeout plus backoff.
    await friend.connect(peer.endpoint)
    await friend.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    const delivered = nextEvent(friend, 'delivered')
    await peer.sendFile(subscriber, '/only-for-friends.txt', Buffer.from('x'.repeat(100)))
    await delivered
    await peer.waitForMessages(MessageId.HUGZ, 4)

    assert.equal(peer.received(MessageId.OHAI).length, 2, 'one OHAI each: the intruder did not retry')
    assert.deepEqual(await inboxFiles(inbox), [])
  } finally {
    await intruder.close()
    await friend.close()
    await peer.close()
    await dir.remove()
  }
})

test('a server that asks for credentials when the client has none: access-denied without a YARLY', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2, plain: ACCOUNT })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  try {
    const denied = nextEvent<AccessDeniedEvent>(client, 'access-denied')
    await client.connect(peer.endpoint)
    assert.match((await denied).reason, /no login/)
    assert.equal(peer.received(MessageId.YARLY).length, 0)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('SRSLY to a subscription rejects that subscribe() with SubscriptionRefusedError; others go on', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2, refuse: ['/secret'] })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  client.on('error', () => undefined)
  try {
    await client.connect(peer.endpoint)
    const refused = client.subscribe('/secret')
    const accepted = client.subscribe('/public/')
    await assert.rejects(refused, (error: unknown) => {
      assert.ok(error instanceof SubscriptionRefusedError)
      assert.equal(error.path, '/secret')
      assert.equal(error.reason, 'not for you')
      assert.equal(error.code, 'ERR_FMQ_SUBSCRIPTION_REFUSED')
      return true
    })
    await accepted
    const subscriber = await peer.waitForSubscriber()
    assert.deepEqual(
      subscriber.subscriptions.map((sub) => sub.path),
      ['/public'],
    )
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})
