/**
 * Configs written in the reference's units (`heartbeat = 1`, seconds; `timeout`, milliseconds)
 * run a server and a client that stay connected to reference-like peers for many heartbeats,
 * live changes and deletions included. Before the units were fixed, `heartbeat = 1` was read
 * as 1 ms and a version-1 client was expired 11 ms after it spoke.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { Client } from '../../src/client/index.js'
import { resolveClientSettings } from '../../src/config/settings.js'
import { loadZplFile } from '../../src/config/zpl.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { Server } from '../../src/server/index.js'
import { ReferenceClient } from '../peers/reference-client.js'
import { nextEvent, record, ReferencePeer, tempDir, withTimeout } from '../peers/reference-server.js'

/** HUGZ exchanged before the test goes on: well past three heartbeats of silence (the v1 expiry). */
const HEARTBEATS = 4

describe('reference units: our server with a reference-style config', () => {
  for (const version of [1, 2] as const) {
    test(`a version-${version} reference-like client stays subscribed across ${HEARTBEATS} heartbeats, then gets a new file and a deletion`, async () => {
      const dir = await tempDir('fmq-units-')
      const send = join(dir.path, 'send')
      const config = join(dir.path, 'server.cfg')
      // As the reference's own sample: heartbeat and monitor in seconds; timeout (v2) in ms.
      await writeFile(
        config,
        ['server', '    monitor = 1', '    heartbeat = 1', '    timeout = 3000', 'publish', `    location = ${send}`, '    virtual = /', 'security', '    anonymous = 1', ''].join('\n'),
      )
      await mkdir(send)
      await writeFile(join(send, 'first.txt'), 'first')
      const server = new Server()
      const logs = record<string>(server, 'log')
      const warnings: string[] = []
      server.on('log', (level, text) => level === 'warn' && warnings.push(text))
      const peer = new ReferenceClient({ version })
      try {
        await server.configure(config)
        assert.equal(server.options.heartbeat, 1000)
        assert.equal(server.options.maxSilence, 3000)
        await peer.connect(await server.bind('tcp://127.0.0.1:*'))
        await peer.hello()
        await peer.until(() => peer.last(MessageId.OHAI_OK) !== undefined, 5000, 'OHAI-OK')
        await peer.subscribe('/', { RESYNC: '1' })
        await peer.until(() => peer.files.get('/first.txt')?.toString() === 'first', 10_000, 'first.txt')

        // Quiet now: the v1 server heartbeats the client; the v2 client heartbeats the server.
        const beats = (): number => peer.received.filter((message) => message.id === (version === 1 ? MessageId.HUGZ : MessageId.HUGZ_OK)).length
        const before = beats()
        await peer.until(() => beats() >= before + HEARTBEATS, (HEARTBEATS + 4) * 1000, `${HEARTBEATS} heartbeats`)

        await writeFile(join(send, 'later.txt'), 'later')
        await unlink(join(send, 'first.txt'))
        await peer.until(() => peer.files.get('/later.txt')?.toString() === 'later' && peer.deleted.includes('/first.txt'), 10_000, 'later.txt and the deletion')
        assert.equal(peer.last(MessageId.RTFM), undefined, 'no RTFM: never forgotten')
        assert.deepEqual(logs.filter((line) => /expired/.test(String(line))), [])
        assert.deepEqual(warnings, [])
      } finally {
        await peer.close()
        await server.close()
        await dir.remove()
      }
    })
  }
})

describe('reference units: our client with a reference-style config', () => {
  for (const version of [1, 2] as const) {
    test(`against a version-${version} reference-like server (heartbeat = 1 s, timeout = 3000 ms) it stays known across ${HEARTBEATS} heartbeats, then gets a file and a deletion`, async () => {
      const dir = await tempDir('fmq-units-')
      const serverConfig = join(dir.path, 'server.cfg')
      await writeFile(serverConfig, ['server', '    heartbeat = 1', '    timeout = 3000', ''].join('\n'))
      const peer = await ReferencePeer.start({ version, config: await loadZplFile(serverConfig) })
      const clientConfig = join(dir.path, 'client.cfg')
      await writeFile(clientConfig, ['client', '    heartbeat = 1', `    inbox = ${join(dir.path, 'inbox')}`, 'connect', `    endpoint = ${peer.endpoint}`, ''].join('\n'))
      const settings = resolveClientSettings(await loadZplFile(clientConfig), {}, clientConfig)
      assert.equal(settings.options.heartbeat, 1000)
      const client = new Client({ ...settings.options, versions: [version] })
      const forgotten = record(peer, 'forgotten')
      const errors = record(client, 'error')
      const disconnects = record(client, 'disconnected')
      try {
        await client.connect(settings.connect[0]!)
        await client.subscribe('/')
        const subscriber = await peer.waitForSubscriber(10_000)
        const delivered = nextEvent(client, 'delivered', () => true, 10_000)
        await peer.sendFiles([['/one.txt', Buffer.from('one')]], subscriber)
        await delivered

        // Quiet: our client speaks once a heartbeat (HUGZ, or HUGZ-OK to the v1 peer's HUGZ).
        const beats = (): number => peer.log.filter((entry) => entry.message.id === MessageId.HUGZ || entry.message.id === MessageId.HUGZ_OK).length
        const before = beats()
        await withTimeout(
          new Promise<void>((resolve) => {
            const check = (): void => {
              if (beats() < before + HEARTBEATS) return
              peer.off('message', check)
              resolve()
            }
            peer.on('message', check)
          }),
          (HEARTBEATS + 4) * 1000,
          `${HEARTBEATS} heartbeats`,
        )

        assert.equal(peer.clients.get(subscriber.key), subscriber, 'still known to the server')
        const more = nextEvent(client, 'delivered', (event: { virtualPath: string }) => event.virtualPath === '/two.txt', 10_000)
        await peer.sendFiles([['/two.txt', Buffer.from('two')]], subscriber)
        await more
        const gone = nextEvent(client, 'deleted', () => true, 10_000)
        await peer.sendDelete(subscriber, '/one.txt')
        await gone
        assert.equal(await readFile(join(dir.path, 'inbox', 'two.txt'), 'utf8'), 'two')
        assert.deepEqual(forgotten, [])
        assert.deepEqual(disconnects, [])
        assert.deepEqual(errors, [])
      } finally {
        await client.close()
        await peer.close()
        await dir.remove()
      }
    })
  }
})

describe('reference units: our client busy with a burst from a reference-like server', () => {
  const FILES = 10_000
  for (const version of [1, 2] as const) {
    test(`a version-${version} server that forgets after 3 s of silence never forgets our client while it writes ${FILES} tiny files`, { timeout: 120_000 }, async () => {
      const dir = await tempDir('fmq-units-busy-')
      // Reference units: v1 heartbeats each second and forgets after three; v2 forgets after server/timeout ms.
      const serverConfig = join(dir.path, 'server.cfg')
      await writeFile(serverConfig, ['server', '    heartbeat = 1', '    timeout = 3000', ''].join('\n'))
      const peer = await ReferencePeer.start({ version, config: await loadZplFile(serverConfig) })
      const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [version], heartbeat: 1000 })
      const forgotten = record(peer, 'forgotten')
      const disconnects = record(client, 'disconnected')
      let delivered = 0
      const all = new Promise<void>((resolve) => {
        client.on('delivered', () => {
          if (++delivered === FILES) resolve()
        })
      })
      try {
        await client.connect(peer.endpoint)
        await client.subscribe('/')
        const subscriber = await peer.waitForSubscriber(10_000)
        // Tiny files: the credit they use is a few octets each, so no NOM is due for thousands of them.
        for (let i = 0; i < FILES; i++) await peer.sendFile(subscriber, `/d${i % 50}/f${i}.txt`, Buffer.from(`${i}`))
        await withTimeout(all, 100_000, `${FILES} deliveries (have ${delivered})`)
        assert.deepEqual(forgotten, [], 'never forgotten')
        assert.deepEqual(disconnects, [])
        assert.ok(peer.clients.has(subscriber.key))
      } finally {
        await client.close()
        await peer.close()
        await dir.remove()
      }
    })
  }
})
