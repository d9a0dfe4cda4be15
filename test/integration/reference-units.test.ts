/**
 * Our client, busy writing a burst from a reference-like server whose config is in the
 * reference's units (`heartbeat = 1`, seconds; `timeout`, milliseconds), is never taken for
 * dead. Configs in the reference's units over time, with live changes, deletions and late
 * joiners, are in reference-interop.test.ts (before the units were fixed, `heartbeat = 1` was
 * read as 1 ms and a version-1 client was expired 11 ms after it spoke).
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { Client } from '../../src/client/index.js'
import { loadZplFile } from '../../src/config/zpl.js'
import { record, ReferencePeer, tempDir, withTimeout } from '../peers/reference-server.js'

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
