/**
 * Delta transfer (DELTA, issue 19): a file the client holds an older version of travels as what
 * differs, live and across a client restart: an append costs the appended octets, a change in
 * the middle a few chunks, an insertion at the start that shifts everything a chunk or two. The
 * result is checked octet for octet, and the octets of content the server sent and the client's
 * `sent` in its delivered events say what travelled. Small files, files with little in common
 * and new files go whole.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { appendFile, mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, type DeliveredEvent, Server } from '../../src/index.js'
import { until } from '../fixtures/until.js'

const MiB = 1024 * 1024
const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex')
const lastOf = (events: readonly DeliveredEvent[], virtualPath: string): DeliveredEvent | undefined => [...events].reverse().find((event) => event.virtualPath === virtualPath)

/** Writes a file whole outside the published tree and moves it in: never seen half written, never published under another name. */
async function replace(path: string, data: Buffer): Promise<void> {
  const temporary = join(path, '..', '..', `replacing-${process.pid}`)
  await writeFile(temporary, data)
  await rename(temporary, path)
}

describe('delta transfer', () => {
  let dir: string
  let src: string
  let inbox: string
  let server: Server
  let endpoint: string
  const closers: Array<() => Promise<void>> = []
  const delivered: DeliveredEvent[] = []
  let queuedBytes = 0

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-delta-'))
    src = join(dir, 'src')
    inbox = join(dir, 'inbox')
    await mkdir(src, { recursive: true })
    server = new Server({ settle: 50 })
    server.on('error', () => undefined)
    closers.push(() => server.close())
    await server.publish(src, '/')
    endpoint = await server.bind('tcp://127.0.0.1:*')
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  const start = async (options: { inbox?: string; delta?: boolean; versions?: ReadonlyArray<1 | 2> } = {}): Promise<Client> => {
    const { versions, ...rest } = options
    const client = new Client({ inbox, resync: true, ...rest, ...(versions === undefined ? {} : { versions: [...versions] }) })
    client.on('error', () => undefined)
    client.on('delivered', (event) => delivered.push(event))
    client.on('queued', (event) => void (queuedBytes += event.bytes))
    closers.push(() => client.close())
    const synced = new Promise<void>((resolve) => client.once('synced', () => resolve()))
    await client.connect(endpoint)
    await client.subscribe('/')
    await synced
    return client
  }

  /** Waits for the inbox copy of `name` to be `data`; returns the octets of content the server sent meanwhile and the delivered event. */
  const arrives = async (name: string, data: Buffer, since: number, what: string): Promise<{ wire: number; event: DeliveredEvent }> => {
    const digest = sha1(data)
    await until(async () => sha1(await readFile(join(inbox, name)).catch(() => Buffer.alloc(0))) === digest, 60_000, what)
    await until(() => delivered.some((event) => event.virtualPath === `/${name}` && event.size === data.length), 10_000, `${what}: delivered`)
    const event = lastOf(delivered, `/${name}`)!
    return { wire: server.stats.contentBytes - since, event }
  }

  test('live: an append sends the tail, a change in the middle and an insertion at the start a few chunks', async () => {
    let data = randomBytes(32 * MiB)
    await replace(join(src, 'big.bin'), data)
    const client = await start()
    let since = server.stats.contentBytes
    let { wire, event } = await arrives('big.bin', data, 0, 'the first version')
    assert.equal(event.sent, data.length, 'a new file is sent whole')

    // Appended in place, as a log grows.
    const tail = randomBytes(MiB)
    await appendFile(join(src, 'big.bin'), tail)
    data = Buffer.concat([data, tail])
    since = server.stats.contentBytes
    const queuedBefore = queuedBytes
    ;({ wire, event } = await arrives('big.bin', data, since, 'the appended version'))
    assert.ok(wire < MiB + 64 * 1024, `an append of 1 MiB put ${wire} octets of content on the wire`)
    assert.equal(queuedBytes - queuedBefore, data.length, 'the new version is announced once (QUEUED), offer and re-ask together')
    assert.equal(event.sent, wire, 'the delivered event says what was sent for it')

    // 4 KiB overwritten in the middle, in place.
    const handle = await open(join(src, 'big.bin'), 'r+')
    const patch = randomBytes(4096)
    await handle.write(patch, 0, patch.length, 16 * MiB)
    await handle.close()
    patch.copy(data, 16 * MiB)
    since = server.stats.contentBytes
    const parts = server.stats.signatureParts
    ;({ wire } = await arrives('big.bin', data, since, 'the version changed in the middle'))
    assert.ok(wire < MiB, `4 KiB changed in the middle put ${wire} octets of content on the wire`)
    // 33 MiB cut at 16 KiB on average: about 1,700 chunks, so the signature came in parts of 1024, one with PART=1, the last with the re-ask.
    assert.ok(server.stats.signatureParts - parts >= 1, `the signature came in ${server.stats.signatureParts - parts} parts before the last`)

    // 100 octets inserted at the start: everything after moves.
    data = Buffer.concat([randomBytes(100), data])
    await replace(join(src, 'big.bin'), data)
    since = server.stats.contentBytes
    ;({ wire } = await arrives('big.bin', data, since, 'the version with an insertion'))
    assert.ok(wire < MiB, `100 octets inserted at the start put ${wire} octets of content on the wire`)
    await client.close()
  })

  test('a client that was away gets what changed as a delta; little in common and small files go whole', async () => {
    let data = await readFile(join(src, 'big.bin'))
    const small = randomBytes(100 * 1024)
    await replace(join(src, 'small.bin'), small)
    const client = await start()
    await arrives('small.bin', small, 0, 'the small file')
    await client.close()

    // Away: the big file loses 1000 octets in its middle; the small one changes a little.
    data = Buffer.concat([data.subarray(0, 8 * MiB), data.subarray(8 * MiB + 1000)])
    await replace(join(src, 'big.bin'), data)
    small[0] = small[0]! ^ 1
    await replace(join(src, 'small.bin'), small)
    await until(() => server.publisher.get('/big.bin')?.size === data.length, 10_000, 'the server to see the change')
    let since = server.stats.contentBytes
    let client2 = await start()
    const big = await arrives('big.bin', data, since, 'the big file after a restart')
    const smallEvent = lastOf(delivered, '/small.bin')!
    assert.equal(smallEvent.sent, small.length, 'a small file is sent whole')
    assert.ok(big.event.sent < MiB, `a deletion of 1000 octets sent ${big.event.sent} octets of the big file`)

    // Away again: 4 KiB overwritten in place, same size (judged by stat, offered by digest, then a delta).
    await client2.close()
    const handle = await open(join(src, 'big.bin'), 'r+')
    const patch = randomBytes(4096)
    await handle.write(patch, 0, patch.length, 4 * MiB)
    await handle.close()
    patch.copy(data, 4 * MiB)
    await until(async () => server.publisher.get('/big.bin')?.mtimeMs === (await stat(join(src, 'big.bin'))).mtimeMs, 10_000, 'the server to see the overwrite')
    since = server.stats.contentBytes
    client2 = await start()
    const overwritten = await arrives('big.bin', data, since, 'the big file overwritten in place, after a restart')
    assert.ok(overwritten.wire < MiB, `4 KiB overwritten in place while away put ${overwritten.wire} octets on the wire`)

    // Nothing in common: whole.
    const other = randomBytes(data.length)
    since = server.stats.contentBytes
    await replace(join(src, 'big.bin'), other)
    const { event } = await arrives('big.bin', other, since, 'a version with nothing in common')
    assert.equal(event.sent, other.length, 'a version with nothing in common is sent whole')
  })

  for (const [name, options] of [
    ['a client that asks for whole files (delta: false, --whole-file) gets them whole', { delta: false }],
    ['a version-1 client (no room for a signature in its 255-octet values) gets them whole', { versions: [1 as const] }],
  ] as const) test(name, async () => {
    const whole = join(dir, `whole-${options.delta === false ? 'asked' : 'v1'}`)
    await mkdir(whole)
    const client = await start({ inbox: whole, ...options })
    let data = await readFile(join(src, 'big.bin'))
    await until(async () => sha1(await readFile(join(whole, 'big.bin')).catch(() => Buffer.alloc(0))) === sha1(data), 60_000, 'the first version')
    const tail = randomBytes(MiB)
    await appendFile(join(src, 'big.bin'), tail)
    data = Buffer.concat([data, tail])
    await until(async () => sha1(await readFile(join(whole, 'big.bin')).catch(() => Buffer.alloc(0))) === sha1(data), 60_000, 'the appended version')
    await until(() => delivered.some((event) => event.path === join(whole, 'big.bin') && event.size === data.length), 10_000, 'its delivery')
    const event = [...delivered].reverse().find((event) => event.path === join(whole, 'big.bin'))!
    assert.equal(event.sent, data.length, 'sent whole')
    await client.close()
  })

  test('a file appended to 20 times while published costs less than twice its final size on the wire', async () => {
    const logs = join(dir, 'logs')
    await mkdir(logs)
    const client = await start({ inbox: logs })
    let data = randomBytes(2 * MiB)
    await replace(join(src, 'app.log'), data)
    let sent = 0
    let whole = 0
    for (let i = 0; i <= 20; i++) {
      if (i > 0) {
        const tail = randomBytes(512 * 1024)
        await appendFile(join(src, 'app.log'), tail)
        data = Buffer.concat([data, tail])
      }
      const size = data.length
      await until(() => delivered.some((event) => event.path === join(logs, 'app.log') && event.size === size), 60_000, `the version of ${size} octets`)
      sent += delivered.find((event) => event.path === join(logs, 'app.log') && event.size === size)!.sent
      whole += size
    }
    assert.equal(sha1(await readFile(join(logs, 'app.log'))), sha1(data))
    assert.ok(sent < 2 * data.length, `${sent} octets sent for a final ${data.length} (whole each time: ${whole})`)
    await client.close()
  })
})
