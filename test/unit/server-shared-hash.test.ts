/**
 * Clients that start on the same cold file at once share one hash of it: the first transfer
 * hashes what it sends and indexes it, the others take its digest at their end. Every
 * client still gets the file's SHA-1 to verify.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { Server } from '../../src/index.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { ReferenceClient } from '../peers/reference-client.js'

describe('concurrent transfers of one cold file', () => {
  let dir: string
  let server: Server
  const content = randomBytes(6_000_000)
  const clients: ReferenceClient[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-shared-hash-'))
    await mkdir(join(dir, 'src'))
    await writeFile(join(dir, 'src', 'big.bin'), content)
  })

  after(async () => {
    for (const client of clients) await client.close()
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('five clients at once: the file is hashed at most twice, and each client gets its SHA-1', async () => {
    server = new Server({ stateDir: join(dir, 'state') })
    await server.publish(join(dir, 'src'), '/')
    const endpoint = await server.bind('tcp://127.0.0.1:*')
    for (let i = 0; i < 5; i++) clients.push(new ReferenceClient({ version: 2 }))
    await Promise.all(
      clients.map(async (client) => {
        await client.connect(endpoint)
        await client.hello()
        await client.subscribe('/', { RESYNC: '1' })
      }),
    )
    for (const client of clients) await client.until(() => client.files.has('/big.bin'), 20_000, 'the file')
    const sha1 = createHash('sha1').update(content).digest('hex')
    for (const client of clients) {
      assert.deepEqual(client.files.get('/big.bin'), content)
      const announced = new Map<string, string>()
      for (const message of client.received) {
        if (message.id === MessageId.CHEEZBURGER && message.filename === '/big.bin') for (const [key, value] of message.headers) announced.set(key, value)
      }
      assert.equal(announced.get('sha1'), sha1)
    }
    // The leader's pass, and at most one read for transfers that ended before it did.
    assert.ok(server.stats.bytesHashed <= 2 * content.length, `hashed ${server.stats.bytesHashed} octets of a ${content.length}-octet file`)
    assert.ok(server.stats.bytesHashed >= content.length)
  })
})
