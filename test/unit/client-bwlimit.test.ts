/**
 * The client's `rateLimit` (`--bwlimit`): rates as users write them, the token bucket, and a
 * real transfer paced by the credit the client grants (a lower bound on its time: the limit's
 * behaviour, not a speed test).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, Server } from '../../src/index.js'
import { InvalidClientOptionError } from '../../src/client/errors.js'
import { resolveClientOptions } from '../../src/client/options.js'
import { CreditBucket, InvalidRateError, parseRate } from '../../src/client/rate.js'
import { sha1 } from '../fixtures/tree.js'

const MiB = 1024 * 1024

describe('parseRate', () => {
  test('plain octets, binary and decimal units, "/s"', () => {
    assert.equal(parseRate('1048576'), 1048576)
    assert.equal(parseRate('500k'), 500 * 1024)
    assert.equal(parseRate('500K'), 500 * 1024)
    assert.equal(parseRate('500KiB/s'), 500 * 1024)
    assert.equal(parseRate('500KB'), 500_000)
    assert.equal(parseRate('2M'), 2 * MiB)
    assert.equal(parseRate('1.5MB/s'), 1_500_000)
    assert.equal(parseRate('1.5MiB/s'), 1.5 * MiB)
    assert.equal(parseRate('1G'), 1024 ** 3)
    assert.equal(parseRate('100B/s'), 100)
    assert.equal(parseRate(' 10 k '), 10 * 1024)
    assert.equal(parseRate('1.9'), 1)
  })

  test('anything else is an InvalidRateError naming the input', () => {
    for (const bad of ['', 'fast', '-1', '0', '0.5', '10x', '10 kbps', '1e6', 'M', '1..5M', '10/s/s', 'Infinity']) {
      assert.throws(() => parseRate(bad), (error: unknown) => {
        assert.ok(error instanceof InvalidRateError, bad)
        assert.equal(error.code, 'ERR_FMQ_INVALID_RATE')
        assert.ok(error.message.includes(JSON.stringify(bad)))
        return true
      })
    }
  })

  test('the option must be a positive number', () => {
    assert.equal(resolveClientOptions({}).rateLimit, undefined)
    assert.equal(resolveClientOptions({ rateLimit: parseRate('2M') }).rateLimit, 2 * MiB)
    assert.throws(() => resolveClientOptions({ rateLimit: 0 }), InvalidClientOptionError)
    assert.throws(() => resolveClientOptions({ rateLimit: Number.NaN }), InvalidClientOptionError)
  })
})

describe('CreditBucket', () => {
  test('starts with a burst of 0.2 s, refills at the rate, never beyond the burst', () => {
    let now = 0
    const bucket = new CreditBucket(1000, () => now)
    assert.equal(bucket.burst, 200)
    assert.equal(bucket.take(10_000), 200)
    assert.equal(bucket.take(10_000), 0)
    now = 100
    assert.equal(bucket.take(10_000, 150), 0, 'fewer than the least asked for: nothing')
    assert.equal(bucket.take(30), 30)
    assert.equal(bucket.take(10_000), 70)
    now = 60_000
    assert.equal(bucket.take(10_000), 200)
  })
})

describe('client rateLimit', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-bwlimit-'))
  })
  after(async () => {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  })

  async function transfer(name: string, size: number, options: ConstructorParameters<typeof Client>[0]) {
    const source = join(dir, name, 'source')
    const inbox = join(dir, name, 'inbox')
    await mkdir(source, { recursive: true })
    await mkdir(inbox, { recursive: true })
    await writeFile(join(source, 'big.bin'), randomBytes(size))
    const server = new Server({ heartbeat: 200 })
    closers.push(() => server.close())
    await server.publish(source, '/')
    const at = await server.bind('tcp://127.0.0.1:*')
    const client = new Client({ inbox, resync: true, heartbeat: 200, ...options })
    const errors: unknown[] = []
    client.on('error', (event) => errors.push(event.error))
    closers.push(() => client.close())
    const delivered = new Promise<void>((resolve) => client.on('delivered', () => resolve()))
    const started = performance.now()
    await client.connect(at)
    await client.subscribe('/')
    await delivered
    const elapsed = performance.now() - started
    assert.equal(await sha1(join(inbox, 'big.bin')), await sha1(join(source, 'big.bin')))
    assert.deepEqual(errors, [])
    return elapsed
  }

  test('at 2 MiB/s, a 6 MiB file takes at least 2 s and arrives byte-identical', async () => {
    const elapsed = await transfer('limited', 6 * MiB, { rateLimit: parseRate('2M') })
    // 6 MiB less the first burst (0.4 MiB) at 2 MiB/s is 2.8 s; 2 s leaves room for timers.
    assert.ok(elapsed >= 2000, `took ${Math.round(elapsed)} ms`)
  })

  test('a limit whose grants are smaller than a chunk still delivers (the server sends smaller chunks)', async () => {
    // 200 KiB/s: grants of at most 40 KiB against chunks of 1,000,000 octets.
    const elapsed = await transfer('small-grants', 256 * 1024, { rateLimit: 200 * 1024, creditWindow: 64 * 1024, creditSlice: 16 * 1024 })
    assert.ok(elapsed >= 1000, `took ${Math.round(elapsed)} ms`)
  })

  test('without a limit, the same file just arrives', async () => {
    await transfer('unlimited', 6 * MiB, {})
  })
})
