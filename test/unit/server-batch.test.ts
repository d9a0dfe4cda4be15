/**
 * BATCH=1 (ours, spec/fmq_msg.xml): a version-2 client that asks gets the messages the server
 * has ready at once as the frames of one ZeroMQ message, in order, each a whole message; a
 * client that does not ask, and any version-1 client, gets one message per ZeroMQ message.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { BATCH_MESSAGES } from '../../src/server/outbox.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { publishedServer, type PublishedServer } from '../peers/published-server.js'
import { ReferenceClient } from '../peers/reference-client.js'

describe('BATCH=1: several messages in one ZeroMQ message', () => {
  let published: PublishedServer
  let endpoint: string
  const files = new Map<string, Buffer>()
  const clients: ReferenceClient[] = []

  before(async () => {
    for (let i = 0; i < 300; i++) files.set(`f${String(i).padStart(3, '0')}.txt`, randomBytes(1 + (i % 7) * 700))
    files.set('big.bin', randomBytes(2_500_000))
    published = await publishedServer('fmq-batch-', files)
    endpoint = published.endpoint
  })

  after(async () => {
    for (const client of clients) await client.close()
    await published.close()
  })

  /** A full resync; resolves once the SYNCED mark came, with the client. */
  async function resync(version: 1 | 2, options: Record<string, string>): Promise<ReferenceClient> {
    const client = new ReferenceClient({ version, batch: options.BATCH === '1' })
    clients.push(client)
    await client.connect(endpoint)
    await client.hello()
    await client.subscribe('/', { RESYNC: '1', SYNCED: '1', ...options })
    if (version === 1) await client.grant(5_000_000)
    await client.until(() => client.received.some((m) => m.id === MessageId.CHEEZBURGER && m.operation === 3), 20_000, 'the SYNCED mark').catch((error: Error) => {
      throw new Error(`${error.message}: ${client.received.length} messages, the last ${JSON.stringify(client.received.slice(-3), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`)
    })
    return client
  }

  function assertFiles(client: ReferenceClient): void {
    for (const [name, content] of files) assert.deepEqual(client.files.get(`/${name}`), content, name)
  }

  test('the server names BATCH in its answer to FEATURES=1', async () => {
    const client = new ReferenceClient({ version: 2 })
    clients.push(client)
    await client.connect(endpoint)
    await client.hello()
    await client.subscribe('/.fmq/features', { FEATURES: '1' })
    await client.until(() => client.last(MessageId.SRSLY) !== undefined, 10_000, 'the answer')
    const answer = client.last(MessageId.SRSLY) as { reason: string }
    assert.ok(answer.reason.split(' ').includes('BATCH'), answer.reason)
  })

  test('version 2, asked: small files come many to a ZeroMQ message, in order, each message whole', async () => {
    const client = await resync(2, { BATCH: '1' })
    assertFiles(client)
    const most = Math.max(...client.frameCounts)
    assert.ok(most > 1, `some ZeroMQ message carried several messages (at most ${most})`)
    assert.ok(most <= BATCH_MESSAGES, `at most ${BATCH_MESSAGES} messages a batch (${most})`)
    // Order kept across batches: sequences of CHEEZBURGERs count up by one.
    const sequences = client.received.flatMap((m) => (m.id === MessageId.CHEEZBURGER ? [m.sequence] : []))
    sequences.forEach((sequence, i) => assert.equal(sequence, sequences[0]! + BigInt(i)))
  })

  test('version 2, not asked: one message per ZeroMQ message', async () => {
    const client = await resync(2, {})
    assertFiles(client)
    assert.deepEqual(new Set(client.frameCounts), new Set([1]))
  })

  test('version 1, asked: never batched (a version-1 message may be several frames)', async () => {
    const client = await resync(1, { BATCH: '1' })
    assertFiles(client)
    // A CHEEZBURGER of version 1 is two frames, everything else one.
    assert.ok(client.frameCounts.every((count) => count <= 2), `frames: ${[...new Set(client.frameCounts)].join(', ')}`)
  })
})
