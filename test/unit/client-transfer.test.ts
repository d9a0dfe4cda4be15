import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'

import { Client, type DeliveredEvent } from '../../src/client/index.js'
import { MessageId, type Nom } from '../../src/protocol/generated/fmq_msg.js'
import { ReferencePeer, TRANSPORTS, bindEndpoint, nextEvent, record, tempDir, withTimeout } from '../peers/reference-server.js'

const WINDOW = 2_500_000
const SLICE = 500_000

/** Resolves with the first `count` deliveries. */
function deliveries(client: Client, count: number, ms = 5000): Promise<DeliveredEvent[]> {
  const seen: DeliveredEvent[] = []
  return withTimeout(
    new Promise((resolve) => {
      const listener = (event: DeliveredEvent): void => {
        seen.push(event)
        if (seen.length < count) return
        client.off('delivered', listener)
        resolve(seen)
      }
      client.on('delivered', listener)
    }),
    ms,
    `${count} deliveries (got ${seen.length})`,
  )
}

for (const version of [2, 1] as const) {
  for (const transport of TRANSPORTS) {
    test(`v${version} over ${transport}: a tree with nested dirs, an empty file and 3 MB arrives byte-identical; deletes remove files`, async () => {
      const dir = await tempDir()
      const peer = await ReferencePeer.start({ version, endpoint: bindEndpoint(transport, dir.path), hugzInterval: 200 })
      const inbox = join(dir.path, 'inbox')
      const client = new Client({ inbox, versions: [version], heartbeat: 100, creditWindow: WINDOW, creditSlice: SLICE })
      const errors = record(client, 'error')
      try {
        const connected = nextEvent<{ version: number }>(client, 'connected')
        await client.connect(peer.endpoint)
        await client.subscribe('/')
        assert.equal((await connected).version, version)

        const files = new Map<string, Buffer>([
          ['/readme.txt', Buffer.from('hello, inbox\n')],
          ['/dir/sub/deep/data.bin', randomBytes(10_000)],
          ['/dir/empty', Buffer.alloc(0)],
          ['/big/three-megabytes.bin', randomBytes(3_000_000)],
        ])
        const arrived = deliveries(client, files.size)
        const subscriber = await peer.waitForSubscriber()
        await peer.sendFiles(files, subscriber)
        const events = await arrived

        assert.deepEqual(events.map((event) => event.virtualPath).sort(), [...files.keys()].sort())
        for (const [name, content] of files) {
          const copy = await readFile(join(inbox, name))
          assert.ok(copy.equals(content), `${name} is byte-identical`)
        }
        const big = events.find((event) => event.virtualPath === '/big/three-megabytes.bin')
        assert.equal(big?.size, 3_000_000)
        // Credit: the client never let the server hold more than its window.
        assert.ok(subscriber.maxCredit <= WINDOW, `max credit ${subscriber.maxCredit} <= ${WINDOW}`)
        assert.ok(subscriber.granted >= 3_010_013, 'enough credit was granted for everything')
        // Nothing left behind in the partial directory.
        assert.deepEqual(await readdir(join(inbox, '.fmq', 'partial')), [])

        const deleted = nextEvent<{ virtualPath: string }>(client, 'deleted')
        await peer.sendDelete(subscriber, '/dir/sub/deep/data.bin')
        assert.equal((await deleted).virtualPath, '/dir/sub/deep/data.bin')
        await assert.rejects(stat(join(inbox, 'dir/sub/deep/data.bin')), { code: 'ENOENT' })
        assert.deepEqual(errors, [])
      } finally {
        await client.close()
        await peer.close()
        await dir.remove()
      }
    })
  }
}

test('first NOM grants the window after ICANHAZ-OK, then tops up by the difference once a slice is used; NOM echoes the sequence', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100, creditWindow: WINDOW, creditSlice: SLICE })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    await peer.waitForCredit(subscriber, WINDOW)
    assert.deepEqual(subscriber.noms, [BigInt(WINDOW)])
    const done = nextEvent(client, 'delivered')
    await peer.sendFile(subscriber, '/f', randomBytes(2_000_000))
    await done
    // The NOMs go out as the chunks are stored, but may reach the peer after 'delivered'.
    await peer.waitForCredit(subscriber, WINDOW)
    // Each 1,000,000-octet chunk leaves 1.5 M <= window - slice (2 M): topped up by exactly what was used.
    const noms = peer.received(MessageId.NOM) as Nom[]
    assert.deepEqual(
      noms.map((nom) => [nom.credit, nom.sequence]),
      [
        [BigInt(WINDOW), 0n],
        [1_000_000n, 0n],
        [1_000_000n, 1n],
      ],
    )
    assert.ok(subscriber.maxCredit <= WINDOW)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('mtime and mode headers are applied; a file is visible under its final name only after its final chunk', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  // A window of 1500 and a slice of 500: the 1000-octet first chunk makes the client send a NOM,
  // which tells the test that chunk has been handled.
  const client = new Client({ inbox, versions: [2], heartbeat: 100, creditWindow: 1500, creditSlice: 500 })
  const errors = record(client, 'error')
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    await peer.waitForCredit(subscriber, 1500)
    const mtime = Date.UTC(2020, 0, 2, 3, 4, 5)
    const headers = new Map([
      ['mtime', String(mtime)],
      ['mode', '640'],
      ['size', '2000'],
    ])
    const first = randomBytes(1000)
    const second = randomBytes(1000)
    await peer.cheezburger(subscriber, { filename: '/photos/a.jpg', offset: 0n, headers, chunk: first })
    await peer.waitForMessages(MessageId.NOM, 2)
    // Content is on disk, but only in the state directory.
    await assert.rejects(stat(join(inbox, 'photos/a.jpg')), { code: 'ENOENT' })
    const partials = await readdir(join(inbox, '.fmq', 'partial'))
    assert.equal(partials.length, 1)
    assert.ok((await readFile(join(inbox, '.fmq', 'partial', partials[0]!))).equals(first))

    const delivered = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.cheezburger(subscriber, { filename: '/photos/a.jpg', offset: 1000n, headers, chunk: second })
    await peer.endFile(subscriber, '/photos/a.jpg', 2000, headers)
    const event = await delivered
    assert.equal(event.path, join(inbox, 'photos/a.jpg'))
    assert.equal(event.size, 2000)
    const stats = await stat(event.path)
    assert.equal(stats.mtimeMs, mtime)
    assert.equal(stats.mode & 0o777, 0o640)
    assert.ok((await readFile(event.path)).equals(Buffer.concat([first, second])))
    assert.deepEqual(await readdir(join(inbox, '.fmq', 'partial')), [])
    assert.deepEqual(errors, [])
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('progress is reported for a file that takes a while, with the size the server announced', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const client = new Client({ inbox: join(dir.path, 'inbox'), versions: [2], heartbeat: 100 })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    const headers = new Map([['size', '3000']])
    await peer.cheezburger(subscriber, { filename: '/slow.bin', offset: 0n, headers, chunk: Buffer.alloc(1000) })
    // Chunks keep coming until the client reports progress (at most every 100 ms).
    const progressed = nextEvent<{ bytes: number; size?: number; virtualPath: string }>(client, 'progress')
    await peer.cheezburger(subscriber, { filename: '/slow.bin', offset: 1000n, headers, chunk: Buffer.alloc(1000) })
    const tick = setInterval(() => void peer.send(subscriber, { id: MessageId.HUGZ }), 20)
    await peer.waitForMessages(MessageId.HUGZ_OK, 6).finally(() => clearInterval(tick))
    await peer.cheezburger(subscriber, { filename: '/slow.bin', offset: 2000n, headers, chunk: Buffer.alloc(1000) })
    const progress = await progressed
    assert.equal(progress.virtualPath, '/slow.bin')
    assert.equal(progress.bytes, 3000)
    assert.equal(progress.size, 3000)
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('while files are small the window of credit holds at most 512 of them: the server holds about 2 MB of credit, not the 8 MB window', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  // The default window (8 MB) and slice (1 MB).
  const client = new Client({ inbox, versions: [2] })
  try {
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    const batch = (from: number, count: number): Map<string, Buffer> => new Map(Array.from({ length: count }, (_, i) => [`/small/f${from + i}.bin`, randomBytes(4096)] as const))
    // The first grant is the whole window (nothing says yet what messages cost): 2,000 files use it up.
    let arrived = deliveries(client, 2000, 60_000)
    await peer.sendFiles(batch(0, 2000), subscriber)
    await arrived
    subscriber.maxCredit = 0
    arrived = deliveries(client, 1000, 60_000)
    await peer.sendFiles(batch(2000, 1000), subscriber)
    await arrived
    // 512 messages of 4 KiB and what goes around each: 2.2 MB; never the 8 MB window.
    assert.ok(subscriber.maxCredit > 0 && subscriber.maxCredit <= 2_300_000, `the server held at most ${subscriber.maxCredit} octets of credit`)
    assert.ok(subscriber.granted >= 3000 * 4096, 'enough credit was granted for everything')
    // Large messages again: the window grows back.
    const big = randomBytes(12_000_000)
    arrived = deliveries(client, 1, 30_000)
    await peer.sendFiles([['/big.bin', big]], subscriber)
    await arrived
    assert.ok((await readFile(join(inbox, 'big.bin'))).equals(big))
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})
