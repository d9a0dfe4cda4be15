import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'

import { Client, DigestMismatchError, type DeliveredEvent, type ErrorEvent } from '../../src/client/index.js'
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
  await client.connect(peer.endpoint)
  await client.subscribe('/')
  const subscriber = await peer.waitForSubscriber()
  const cleanup = async (): Promise<void> => {
    await client.close()
    await peer.close()
    await dir.remove()
  }
  return { peer, inbox, client, errors, subscriber, cleanup }
}

/** The content in one chunk with no headers, then the final empty chunk with `final`. */
async function sendHashedAtEnd(s: Awaited<ReturnType<typeof setup>>, name: string, content: Buffer, final: Map<string, string>, first = new Map<string, string>()): Promise<void> {
  await s.peer.waitForCredit(s.subscriber, content.length)
  await s.peer.cheezburger(s.subscriber, { filename: name, offset: 0n, headers: first, chunk: content })
  await s.peer.endFile(s.subscriber, name, content.length, final)
}

const mismatch = (client: Client): Promise<ErrorEvent> =>
  nextEvent<ErrorEvent>(client, 'error', (event) => event.error instanceof DigestMismatchError)

for (const version of [2, 1] as const) {
  test(`v${version}: size and sha1 on the final chunk only: a matching file is delivered, a corrupted one discarded and asked for again`, async () => {
    const s = await setup(version)
    try {
      const content = randomBytes(100_000)
      const delivered = nextEvent<DeliveredEvent>(s.client, 'delivered')
      await sendHashedAtEnd(s, '/good.bin', content, new Map([[HEADER.SIZE, String(content.length)], [HEADER.SHA1, sha1(content)]]))
      assert.ok((await readFile((await delivered).path)).equals(content))

      const failed = mismatch(s.client)
      const asked = s.peer.received(MessageId.ICANHAZ).length
      const wrong = sha1(Buffer.from('something else'))
      await sendHashedAtEnd(s, '/bad.bin', content, new Map([[HEADER.SHA1, wrong]]))
      const error = (await failed).error as DigestMismatchError
      assert.equal(error.check, 'sha1')
      assert.equal(error.expected, wrong)
      assert.equal(error.actual, sha1(content))
      assert.equal(error.retrying, true)
      assert.equal(await exists(join(s.inbox, 'bad.bin')), false, 'never renamed into the inbox')
      await s.peer.waitForMessages(MessageId.ICANHAZ, asked + 1)
      const reask = s.peer.received(MessageId.ICANHAZ).at(-1) as Icanhaz
      assert.equal(reask.path, '/bad.bin')
      assert.equal(reask.options.get(OPTION.ONCE), '1')
      assert.deepEqual(
        s.errors.map((event) => event.error.name),
        ['DigestMismatchError'],
      )
    } finally {
      await s.cleanup()
    }
  })
}

test('a size on the final chunk that the content does not reach is a size mismatch', async () => {
  const s = await setup(2)
  try {
    const failed = mismatch(s.client)
    await sendHashedAtEnd(s, '/short.bin', Buffer.alloc(1500), new Map([[HEADER.SIZE, '2000']]))
    const error = (await failed).error as DigestMismatchError
    assert.equal(error.check, 'size')
    assert.equal(error.expected, '2000')
    assert.equal(error.actual, '1500')
    assert.equal(await exists(join(s.inbox, 'short.bin')), false)
  } finally {
    await s.cleanup()
  }
})

test('sha1 on the first chunk and on the final one: both are checked', async () => {
  const s = await setup(2)
  try {
    const content = randomBytes(5000)
    const right = new Map([[HEADER.SHA1, sha1(content)]])
    const wrong = new Map([[HEADER.SHA1, sha1(Buffer.from('stale'))]])

    const delivered = nextEvent<DeliveredEvent>(s.client, 'delivered')
    await sendHashedAtEnd(s, '/both.bin', content, right, right)
    assert.ok((await readFile((await delivered).path)).equals(content))

    let failed = mismatch(s.client)
    await sendHashedAtEnd(s, '/final-wrong.bin', content, wrong, right)
    assert.equal(((await failed).error as DigestMismatchError).expected, wrong.get(HEADER.SHA1))

    failed = mismatch(s.client)
    await sendHashedAtEnd(s, '/first-wrong.bin', content, right, wrong)
    assert.equal(((await failed).error as DigestMismatchError).expected, wrong.get(HEADER.SHA1))
    assert.equal(await exists(join(s.inbox, 'final-wrong.bin')), false)
    assert.equal(await exists(join(s.inbox, 'first-wrong.bin')), false)
  } finally {
    await s.cleanup()
  }
})
