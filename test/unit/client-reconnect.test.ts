import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

import {
  Client,
  ProtocolError,
  type ConnectedEvent,
  type DisconnectedEvent,
  type ErrorEvent,
  type SubscribedEvent,
} from '../../src/client/index.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { ReferencePeer, TRANSPORTS, bindEndpoint, nextEvent, record, tempDir } from '../peers/reference-server.js'

const FAST = { heartbeat: 50, expiry: 3, greetingTimeout: 500, reconnectDelay: 20 } as const

for (const version of [2, 1] as const) {
  for (const transport of TRANSPORTS) {
    test(`v${version} over ${transport}: the server goes away and comes back on the same endpoint; the client reconnects, resubscribes, receives`, async () => {
      const dir = await tempDir()
      const peerOptions = { version, hugzInterval: 50 } as const
      let peer = await ReferencePeer.start({ ...peerOptions, endpoint: bindEndpoint(transport, dir.path) })
      const endpoint = peer.endpoint
      const inbox = join(dir.path, 'inbox')
      const client = new Client({ inbox, versions: [version], ...FAST })
      client.on('error', () => undefined) // an RTFM from the new server is expected
      const disconnects = record<DisconnectedEvent>(client, 'disconnected')
      try {
        await client.connect(endpoint)
        await client.subscribe('/photos')

        const again = nextEvent<SubscribedEvent>(client, 'subscribed')
        const reconnected = nextEvent<ConnectedEvent>(client, 'connected')
        await peer.close()
        peer = await ReferencePeer.start({ ...peerOptions, endpoint })
        await reconnected
        assert.equal((await again).path, '/photos', 'the subscription is replayed')
        assert.equal(disconnects.length, 1)
        assert.ok(['expired', 'protocol-error'].includes(disconnects[0]?.reason ?? ''), disconnects[0]?.reason)

        const subscriber = await peer.waitForSubscriber()
        assert.deepEqual(subscriber.subscriptions.map((sub) => sub.path), ['/photos'])
        const delivered = nextEvent(client, 'delivered')
        await peer.sendFile(subscriber, '/photos/after-restart.jpg', Buffer.from('new server'))
        await delivered
        assert.equal(await readFile(join(inbox, 'photos/after-restart.jpg'), 'utf8'), 'new server')
      } finally {
        await client.close()
        await peer.close()
        await dir.remove()
      }
    })
  }
}

test('v2 server silent: the client asks with HUGZ, a HUGZ-OK keeps it alive; v1 server HUGZ gets HUGZ-OK', async () => {
  const dir = await tempDir()
  const v2 = await ReferencePeer.start({ version: 2 })
  const v1 = await ReferencePeer.start({ version: 1, hugzInterval: 30 })
  const a = new Client({ inbox: join(dir.path, 'a'), versions: [2], ...FAST })
  const b = new Client({ inbox: join(dir.path, 'b'), versions: [1], ...FAST, heartbeat: 1000 })
  const disconnectsA = record<DisconnectedEvent>(a, 'disconnected')
  const disconnectsB = record<DisconnectedEvent>(b, 'disconnected')
  try {
    await a.connect(v2.endpoint)
    await b.connect(v1.endpoint)
    await Promise.all([a.subscribe('/'), b.subscribe('/')])
    // Six heartbeats of 50 ms is twice the expiry: still connected, because the server answers.
    await v2.waitForMessages(MessageId.HUGZ, 6)
    // The v1 server heartbeats; the client answers each, and never needs to ask itself.
    await v1.waitForMessages(MessageId.HUGZ_OK, 3)
    assert.equal(v1.received(MessageId.HUGZ).length, 0)
    assert.deepEqual(disconnectsA, [])
    assert.deepEqual(disconnectsB, [])
    assert.equal(v2.received(MessageId.OHAI).length, 1)
  } finally {
    await a.close()
    await b.close()
    await v2.close()
    await v1.close()
    await dir.remove()
  }
})

test('a server that stays away: after expiry heartbeats of silence, disconnected (expired); back when it is', async () => {
  const dir = await tempDir()
  let peer = await ReferencePeer.start({ version: 2 })
  const endpoint = peer.endpoint
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], ...FAST })
  try {
    await client.connect(endpoint)
    await client.subscribe('/')
    const disconnected = nextEvent<DisconnectedEvent>(client, 'disconnected')
    const started = Date.now()
    await peer.close()
    assert.equal((await disconnected).reason, 'expired')
    assert.ok(Date.now() - started >= FAST.heartbeat * FAST.expiry - 30, 'not before expiry heartbeats')
    const connected = nextEvent<ConnectedEvent>(client, 'connected')
    peer = await ReferencePeer.start({ version: 2, endpoint })
    await connected
    await peer.waitForSubscriber()
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('RTFM in the ready state: a protocol error, then a new conversation with subscriptions replayed', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], ...FAST })
  const errors = record<ErrorEvent>(client, 'error')
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const first = await peer.waitForSubscriber()
    const disconnected = nextEvent<DisconnectedEvent>(client, 'disconnected')
    const resubscribed = nextEvent<SubscribedEvent>(client, 'subscribed')
    await peer.send(first, { id: MessageId.RTFM, reason: 'you lost me' })
    assert.equal((await disconnected).reason, 'protocol-error')
    await resubscribed
    assert.ok(errors[0]?.error instanceof ProtocolError)
    assert.equal((errors[0]?.error as ProtocolError).reason, 'you lost me')
    assert.equal(peer.received(MessageId.OHAI).length, 2)
    assert.equal(peer.received(MessageId.ICANHAZ).length, 2)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('KTHXBAI from the server: disconnected (server-closed), then reconnected', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], ...FAST })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    const disconnected = nextEvent<DisconnectedEvent>(client, 'disconnected')
    const connected = nextEvent<ConnectedEvent>(client, 'connected')
    await peer.send(subscriber, { id: MessageId.KTHXBAI })
    assert.equal((await disconnected).reason, 'server-closed')
    await connected
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('close() says KTHXBAI, reports disconnected (closed) and lets the process go', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], ...FAST })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const goodbye = nextEvent(peer, 'goodbye')
    const disconnected = nextEvent<DisconnectedEvent>(client, 'disconnected')
    await client.close()
    assert.equal((await disconnected).reason, 'closed')
    await goodbye
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})
