import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

import { Client, type ConnectedEvent } from '../../src/client/index.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { ReferencePeer, nextEvent, tempDir } from '../peers/reference-server.js'

test('version 2 first; a v1 server stays silent, so after greetingTimeout the client says OHAI in version 1', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 1, hugzInterval: 200 })
  const inbox = join(dir.path, 'inbox')
  const client = new Client({ inbox, heartbeat: 100, greetingTimeout: 250 })
  try {
    const connected = nextEvent<ConnectedEvent>(client, 'connected')
    const started = Date.now()
    await client.connect(peer.endpoint)
    const subscribed = client.subscribe('/')
    assert.equal((await connected).version, 1)
    assert.ok(Date.now() - started >= 200, 'version 1 only after the greeting timeout')
    assert.equal(peer.undecodable, 1, 'the v1 server dropped exactly one (v2) OHAI')
    await subscribed
    const delivered = nextEvent(client, 'delivered')
    await peer.sendFiles([['/v1.txt', Buffer.from('spoken in version 1')]])
    await delivered
    assert.equal(await readFile(join(inbox, 'v1.txt'), 'utf8'), 'spoken in version 1')
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('version 1 first against a v2 server that gives up silently: the client falls back to version 2', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [1, 2], heartbeat: 100, greetingTimeout: 250 })
  try {
    const connected = nextEvent<ConnectedEvent>(client, 'connected')
    await client.connect(peer.endpoint)
    assert.equal((await connected).version, 2)
    assert.equal(peer.undecodable, 1)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('RTFM to the greeting: the next version is tried at once, on a fresh socket', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 1, wrongVersion: 'rtfm', hugzInterval: 200 })
  // A greeting timeout far longer than the test: only the RTFM can make it move on.
  const client = new Client({ inbox: join(dir.path, 'inbox'), heartbeat: 100, greetingTimeout: 60_000 })
  try {
    const connected = nextEvent<ConnectedEvent>(client, 'connected', () => true, 2000)
    await client.connect(peer.endpoint)
    assert.equal((await connected).version, 1)
    // Two different DEALERs spoke: the v2 attempt's (refused) and the v1 one's.
    assert.equal(peer.undecodable, 1)
    const ohai = peer.log.find((entry) => entry.message.id === MessageId.OHAI)
    assert.ok(ohai !== undefined)
    assert.notEqual(ohai.client, peer.undecodableFrom[0], 'version 1 spoke on a new socket')
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('the version that worked is remembered: after the server restarts, the client greets in it straight away', async () => {
  const dir = await tempDir()
  let peer = await ReferencePeer.start({ version: 1, hugzInterval: 50 })
  const endpoint = peer.endpoint
  const client = new Client({
    inbox: join(dir.path, 'inbox'),
    heartbeat: 50,
    expiry: 3,
    greetingTimeout: 250,
    reconnectDelay: 20,
  })
  try {
    const first = nextEvent<ConnectedEvent>(client, 'connected', () => true, 5000)
    await client.connect(endpoint)
    await client.subscribe('/')
    assert.equal((await first).version, 1)

    const second = nextEvent<ConnectedEvent>(client, 'connected', () => true, 5000)
    await peer.close()
    peer = await ReferencePeer.start({ version: 1, hugzInterval: 50, endpoint })
    assert.equal((await second).version, 1)
    assert.equal(peer.undecodable, 0, 'no version-2 OHAI reached the new server')
    assert.equal(peer.received(MessageId.OHAI).length, 1)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})
