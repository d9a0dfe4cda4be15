import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

import { Client, type DeliveredEvent, type ErrorEvent } from '../../src/client/index.js'
import { HEADER, RESUME_BLOCK, formatPartialEntry } from '../../src/protocol/extensions.js'
import { MessageId, type Icanhaz } from '../../src/protocol/generated/fmq_msg.js'
import { openStore } from '../../src/store/database.js'
import { ReferencePeer, nextEvent, record, tempDir, withTimeout, type PeerClient } from '../peers/reference-server.js'

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')
/** Three chunks of 1,000,000 land before the cut: the resume offset is two blocks. */
const SENT_BEFORE_CUT = 3_000_000
const OFFSET = 2 * RESUME_BLOCK
const SIZE = 5_000_000

const headersOf = (content: Buffer): Map<string, string> =>
  new Map([
    [HEADER.SIZE, String(content.length)],
    [HEADER.SHA1, sha1(content)],
    [HEADER.MTIME, String(Date.UTC(2022, 1, 3))],
    [HEADER.MODE, '600'],
  ])

const WINDOW = 2_500_000
const SLICE = 500_000

/**
 * Sends the first `octets` of a file in 1,000,000-octet chunks and resolves once the client
 * wrote them, seen from the NOMs it sends after storing a chunk (it tops up once a slice of
 * the window is used: a full chunk always does, a short last one may not).
 */
async function sendPrefix(peer: ReferencePeer, to: PeerClient, name: string, content: Buffer, octets: number, headers: Map<string, string>): Promise<void> {
  // The first NOM (the whole window) must not be taken for the answer to a chunk.
  await peer.waitForCredit(to, 1_000_000)
  const noms = to.noms.length
  for (let offset = 0; offset < octets; offset += 1_000_000) {
    await peer.waitForCredit(to, 1_000_000)
    const chunk = content.subarray(offset, Math.min(octets, offset + 1_000_000))
    await peer.cheezburger(to, { filename: name, offset: BigInt(offset), headers: offset === 0 ? headers : new Map(), chunk })
  }
  let credit = WINDOW
  let chunks = 0
  let acknowledged = false
  for (let offset = 0; offset < octets; offset += 1_000_000) {
    credit -= Math.min(1_000_000, octets - offset)
    acknowledged = credit <= WINDOW - SLICE
    if (acknowledged) {
      credit = WINDOW
      chunks++
    }
  }
  if (!acknowledged) throw new Error(`sendPrefix: no NOM would follow the last chunk of ${octets} octets; pick another length`)
  await withTimeout(
    new Promise<void>((done) => {
      const check = (who: PeerClient): void => {
        if (who !== to || to.noms.length < noms + chunks) return
        peer.off('credit', check)
        done()
      }
      peer.on('credit', check)
      check(to)
    }),
    5000,
    `${chunks} NOMs`,
  )
}

function partialRows(stateDir: string): { endpoint: string; name: string; size: number | null; digest: string | null }[] {
  const db = openStore(stateDir)
  try {
    return db.prepare('SELECT endpoint, name, size, digest FROM client_partials').all() as never
  } finally {
    db.close()
  }
}

const options = (inbox: string, resync: boolean) => ({ inbox, resync, versions: [2] as const, heartbeat: 100, creditWindow: WINDOW, creditSlice: SLICE })

for (const resync of [true, false]) {
  test(`resync ${resync}: a client closed mid-file leaves a recorded partial; the next client offers name=SHA1@OFFSET and a resend from that offset arrives byte-identical`, async () => {
    const dir = await tempDir()
    const peer = await ReferencePeer.start({ version: 2 })
    const inbox = join(dir.path, 'inbox')
    const stateDir = join(inbox, '.fmq')
    const content = randomBytes(SIZE)
    const headers = headersOf(content)
    let second: Client | undefined
    try {
      const first = new Client(options(inbox, resync))
      await first.connect(peer.endpoint)
      await first.subscribe('/')
      await sendPrefix(peer, await peer.waitForSubscriber(), '/photos/big.bin', content, SENT_BEFORE_CUT, headers)
      await first.close()

      const partials = await readdir(join(stateDir, 'partial'))
      assert.equal(partials.length, 1)
      assert.equal((await stat(join(stateDir, 'partial', partials[0]!))).size, SENT_BEFORE_CUT)
      assert.deepEqual(partialRows(stateDir), [{ endpoint: peer.endpoint, name: '/photos/big.bin', size: SIZE, digest: sha1(content) }])

      second = new Client(options(inbox, resync))
      const errors = record<ErrorEvent>(second, 'error')
      await second.connect(peer.endpoint)
      await second.subscribe('/photos')
      const icanhaz = (peer.received(MessageId.ICANHAZ) as Icanhaz[]).at(-1)
      assert.equal(icanhaz?.path, '/photos')
      assert.equal(icanhaz?.options.get('RESYNC'), resync ? '1' : undefined)
      assert.deepEqual([...(icanhaz?.cache ?? [])], [['/photos/big.bin', formatPartialEntry(sha1(content.subarray(0, OFFSET)), OFFSET)]])
      // Only the prefix was read back; the rest is hashed as it arrives.
      assert.equal(second.stats.bytesHashed, OFFSET)

      const subscriber = await peer.waitForSubscriber(5000, '/photos')
      const delivered = nextEvent<DeliveredEvent>(second, 'delivered')
      await peer.sendFile(subscriber, '/photos/big.bin', content, headers, OFFSET)
      const event = await delivered
      assert.equal(event.size, SIZE)
      assert.ok((await readFile(event.path)).equals(content), 'byte-identical')
      assert.equal(subscriber.sent, SIZE - OFFSET, 'only the rest was sent')
      assert.equal(second.stats.bytesHashed, OFFSET, 'the final check read nothing back')
      assert.deepEqual(await readdir(join(stateDir, 'partial')), [])
      assert.deepEqual(errors, [])
      await second.close()
      assert.deepEqual(partialRows(stateDir), [])
    } finally {
      await second?.close()
      await peer.close()
      await dir.remove()
    }
  })
}

test('a partial file that already holds every octet: the resume is only the final, empty chunk, and the file is checked whole', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  // 11 blocks: the last 1,000,000-octet chunk is long enough to be acknowledged by a NOM.
  const size = 11 * RESUME_BLOCK
  const content = randomBytes(size)
  const headers = headersOf(content)
  let second: Client | undefined
  try {
    const first = new Client(options(inbox, false))
    await first.connect(peer.endpoint)
    await first.subscribe('/')
    await sendPrefix(peer, await peer.waitForSubscriber(), '/exact.bin', content, size, headers)
    await first.close()

    second = new Client(options(inbox, false))
    const errors = record<ErrorEvent>(second, 'error')
    await second.connect(peer.endpoint)
    await second.subscribe('/')
    const offered = (peer.received(MessageId.ICANHAZ) as Icanhaz[]).at(-1)?.cache.get('/exact.bin')
    assert.equal(offered, formatPartialEntry(sha1(content), size))
    const delivered = nextEvent<DeliveredEvent>(second, 'delivered')
    const subscriber = [...peer.clients.values()].at(-1)!
    await peer.sendFile(subscriber, '/exact.bin', content, headers, size)
    const event = await delivered
    assert.equal(subscriber.sent, 0, 'no content sent again')
    assert.equal(event.size, size)
    assert.ok((await readFile(event.path)).equals(content))
    assert.deepEqual(errors, [])
  } finally {
    await second?.close()
    await peer.close()
    await dir.remove()
  }
})

test('after the server restarts mid-file the same client reconnects and offers the partial file; the server may also start it over at 0', async () => {
  const dir = await tempDir()
  let peer = await ReferencePeer.start({ version: 2 })
  const endpoint = peer.endpoint
  const inbox = join(dir.path, 'inbox')
  const content = randomBytes(SIZE)
  const client = new Client({ ...options(inbox, true), reconnectDelay: 10 })
  try {
    await client.connect(endpoint)
    await client.subscribe('/')
    await sendPrefix(peer, await peer.waitForSubscriber(), '/big.bin', content, SENT_BEFORE_CUT, headersOf(content))
    await peer.close()
    peer = await ReferencePeer.start({ version: 2, endpoint })
    // The client finds out (its HUGZ gets RTFM) and says OHAI again.
    const subscriber = await peer.waitForSubscriber(10_000)
    const [icanhaz] = peer.received(MessageId.ICANHAZ) as Icanhaz[]
    assert.equal(icanhaz?.cache.get('/big.bin'), formatPartialEntry(sha1(content.subarray(0, OFFSET)), OFFSET))
    // A server whose file changed starts it over.
    const changed = randomBytes(SIZE)
    const delivered = nextEvent<DeliveredEvent>(client, 'delivered')
    await peer.sendFile(subscriber, '/big.bin', changed, headersOf(changed))
    assert.ok((await readFile((await delivered).path)).equals(changed))
    assert.deepEqual(await readdir(join(inbox, '.fmq', 'partial')), [])
  } finally {
    await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('a server that resumes a prefix the client does not really hold: the whole-file check fails, the file is never promoted, and is asked for again', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  const content = randomBytes(SIZE)
  const headers = headersOf(content)
  let second: Client | undefined
  try {
    const first = new Client(options(inbox, false))
    await first.connect(peer.endpoint)
    await first.subscribe('/')
    await sendPrefix(peer, await peer.waitForSubscriber(), '/big.bin', content, SENT_BEFORE_CUT, headers)
    await first.close()
    // One octet of the prefix flips on disk while no client runs.
    const [name] = await readdir(join(inbox, '.fmq', 'partial'))
    const handle = await open(join(inbox, '.fmq', 'partial', name!), 'r+')
    await handle.write(Buffer.from([content[1000]! ^ 0xff]), 0, 1, 1000)
    await handle.close()

    second = new Client(options(inbox, false))
    const errors = record<ErrorEvent>(second, 'error')
    await second.connect(peer.endpoint)
    await second.subscribe('/')
    const subscriber = await peer.waitForSubscriber()
    const offered = (peer.received(MessageId.ICANHAZ) as Icanhaz[]).at(-1)?.cache.get('/big.bin')
    assert.notEqual(offered, formatPartialEntry(sha1(content.subarray(0, OFFSET)), OFFSET), 'the offer shows the damage')
    // A careless server resumes anyway.
    const reasked = peer.waitForMessages(MessageId.ICANHAZ, 3)
    await peer.sendFile(subscriber, '/big.bin', content, headers, OFFSET)
    const reask = (await reasked).at(-1) as Icanhaz
    assert.equal(reask.path, '/big.bin')
    assert.equal(reask.options.get('ONCE'), '1')
    await assert.rejects(stat(join(inbox, 'big.bin')), { code: 'ENOENT' })
    assert.deepEqual(
      errors.map((event) => event.error.name),
      ['DigestMismatchError'],
    )
    const delivered = nextEvent<DeliveredEvent>(second, 'delivered')
    await peer.sendFile(subscriber, '/big.bin', content, headers)
    assert.ok((await readFile((await delivered).path)).equals(content))
  } finally {
    await second?.close()
    await peer.close()
    await dir.remove()
  }
})

test('no offer for a small cut file, nor for a partial file that is gone; an offer the server does not take changes nothing', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  const stateDir = join(inbox, '.fmq')
  const big = randomBytes(SIZE)
  const clients: Client[] = []
  const start = async (): Promise<{ client: Client; errors: ErrorEvent[]; icanhaz: Icanhaz; subscriber: PeerClient }> => {
    const client = new Client(options(inbox, true))
    clients.push(client)
    const errors = record<ErrorEvent>(client, 'error')
    await client.connect(peer.endpoint)
    await client.subscribe('/')
    const icanhaz = (peer.received(MessageId.ICANHAZ) as Icanhaz[]).at(-1)!
    const subscriber = [...peer.clients.values()].at(-1)!
    return { client, errors, icanhaz, subscriber }
  }
  try {
    // A cut small file (no size header, under a block) and a cut big one.
    let s = await start()
    await sendPrefix(peer, s.subscriber, '/small.bin', randomBytes(500_000), 500_000, new Map())
    await sendPrefix(peer, s.subscriber, '/big.bin', big, SENT_BEFORE_CUT, new Map())
    await s.client.close()
    assert.deepEqual(
      partialRows(stateDir).map((row) => row.name),
      ['/big.bin'],
      'recorded once the received length reached a block, without a size header',
    )
    assert.equal((await readdir(join(stateDir, 'partial'))).length, 1, "the small file's partial is gone")

    // An offer the server ignores (the reference takes it for a digest): row and file stay.
    s = await start()
    assert.deepEqual([...s.icanhaz.cache.keys()], ['/big.bin'])
    await s.client.close()
    assert.deepEqual(
      partialRows(stateDir).map((row) => row.name),
      ['/big.bin'],
    )

    // A resume at an offset that was not offered is refused; the partial stays for later.
    s = await start()
    const refused = nextEvent<ErrorEvent>(s.client, 'error', (event) => event.error.name === 'OutOfOrderChunkError')
    await peer.cheezburger(s.subscriber, { filename: '/big.bin', offset: BigInt(RESUME_BLOCK), chunk: Buffer.alloc(10) })
    await refused
    await s.client.close()
    assert.equal(partialRows(stateDir).length, 1)

    // The partial file vanished: the row goes quietly, nothing is offered.
    const [name] = await readdir(join(stateDir, 'partial'))
    await unlink(join(stateDir, 'partial', name!))
    s = await start()
    assert.equal(s.icanhaz.cache.size, 0)
    assert.deepEqual(partialRows(stateDir), [])
    assert.deepEqual(
      s.errors.map((event) => event.error.name),
      [],
    )
  } finally {
    for (const client of clients) await client.close()
    await peer.close()
    await dir.remove()
  }
})

test('version 1: among 300 files of the inbox the partial entry is kept when the cache is cut to 255 entries', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 1, hugzInterval: 200 })
  const inbox = join(dir.path, 'inbox')
  const content = randomBytes(SIZE)
  let second: Client | undefined
  try {
    await mkdir(join(inbox, 'many'), { recursive: true })
    for (let i = 0; i < 300; i++) await writeFile(join(inbox, 'many', `f${String(i).padStart(3, '0')}`), `file ${i}`)
    const first = new Client({ ...options(inbox, true), versions: [1] })
    await first.connect(peer.endpoint)
    await first.subscribe('/')
    await sendPrefix(peer, await peer.waitForSubscriber(), '/zzz/big.bin', content, SENT_BEFORE_CUT, headersOf(content))
    await first.close()

    second = new Client({ ...options(inbox, true), versions: [1] })
    await second.connect(peer.endpoint)
    await second.subscribe('/')
    const icanhaz = (peer.received(MessageId.ICANHAZ) as Icanhaz[]).at(-1)!
    assert.equal(icanhaz.cache.size, 255)
    assert.equal(icanhaz.cache.get('/zzz/big.bin'), formatPartialEntry(sha1(content.subarray(0, OFFSET)), OFFSET))
  } finally {
    await second?.close()
    await peer.close()
    await dir.remove()
  }
})

test('a client killed with SIGKILL mid-file: the partial is on record, and the next client resumes it', async () => {
  const dir = await tempDir()
  const peer = await ReferencePeer.start({ version: 2 })
  const inbox = join(dir.path, 'inbox')
  const content = randomBytes(SIZE)
  const headers = headersOf(content)
  // The client runs in a child process, so that it can really be killed.
  const script = join(dir.path, 'client.mts')
  const entry = pathToFileURL(resolve('src/client/index.ts')).href
  await writeFile(
    script,
    `import { Client } from ${JSON.stringify(entry)}\n` +
      `const client = new Client(${JSON.stringify(options(inbox, true))})\n` +
      `await client.connect(${JSON.stringify(peer.endpoint)})\n` +
      `await client.subscribe('/')\n` +
      `console.log('subscribed')\n` +
      `setInterval(() => undefined, 1000)\n`,
  )
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, signal) => done(signal)))
  let second: Client | undefined
  try {
    await sendPrefix(peer, await peer.waitForSubscriber(20_000), '/big.bin', content, SENT_BEFORE_CUT, headers)
    child.kill('SIGKILL')
    assert.equal(await withTimeout(exited, 5000, 'the child to die'), 'SIGKILL')

    second = new Client(options(inbox, true))
    await second.connect(peer.endpoint)
    await second.subscribe('/')
    const icanhaz = (peer.received(MessageId.ICANHAZ) as Icanhaz[]).at(-1)!
    assert.equal(icanhaz.cache.get('/big.bin'), formatPartialEntry(sha1(content.subarray(0, OFFSET)), OFFSET))
    const subscriber = [...peer.clients.values()].at(-1)!
    const delivered = nextEvent<DeliveredEvent>(second, 'delivered')
    await peer.sendFile(subscriber, '/big.bin', content, headers, OFFSET)
    assert.ok((await readFile((await delivered).path)).equals(content))
  } finally {
    child.kill('SIGKILL')
    await second?.close()
    await peer.close()
    await dir.remove()
  }
})
