/**
 * A live server fuzzed for a bounded time while a well-behaved client mirrors its tree.
 *
 * Several DEALER sockets send, in both protocol versions, with and without the signature:
 * mutated golden messages, random multi-frame messages, valid messages in states where they
 * are not expected (NOM, ICANHAZ or CHEEZBURGER before OHAI, YARLY without ORLY, OHAI twice,
 * credit 2^64-1, KTHXBAI mid-transfer, server-only messages), whole transfers cut short,
 * clients that say OHAI and vanish, sockets that stop reading, oversized frames, and
 * reconnections (each a new routing id). Meanwhile a real Client subscribes to "/".
 *
 * The server must not crash (no uncaught exception, no unhandled rejection, no 'error'
 * event), its memory must stay bounded, the good client must receive the whole tree byte
 * for byte (including a file written while the fuzzing goes on), and at the end the server
 * must still answer a fresh OHAI in both versions.
 *
 * Run with anonymous access and with PLAIN (so ORLY/YARLY are fuzzed too), 3/8 of the time
 * each; then, for the last quarter, with a client added that grants 2^64-1 credit again and
 * again and never reads: content in flight to it is bounded by what it acknowledged (twice
 * the credit cap, 128 MiB by default), so memory stays under the same bound.
 * FMQ_FUZZ_SECONDS (default 16) is the fuzzing time of the whole file; FMQ_FUZZ_SEED the seed
 * (the fuzzing is concurrent, so a seed reproduces the inputs, not their interleaving).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { Dealer } from 'zeromq'

import { Client } from '../../src/client/index.js'
import { MessageId, type Message } from '../../src/protocol/generated/fmq_msg.js'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'
import { Server } from '../../src/server/server.js'
import { sameTree, write } from '../fixtures/tree.js'
import {
  collectGarbage,
  type Frames,
  fuzzSeconds,
  fuzzSeed,
  goldenFrames,
  MiB,
  mib,
  mutateMany,
  Random,
  randomMessage,
  recordFigure,
  reproduce,
} from './lib.js'

const SECONDS = fuzzSeconds(16)
const SEED = fuzzSeed()
const FILE = 'test/fuzz/server.test.ts'
const FUZZERS = 4
const LOGIN = 'fuzz'
const PASSWORD = 'fuzz-secret'
/** The good client may take this long after the fuzzing ends to have the whole tree. */
const CLIENT_TIMEOUT_MS = 60_000

/**
 * Live heap growth the server may keep after the fuzzing, once garbage is collected: what
 * stays is the state of clients that said OHAI and went silent (kept up to maxSilence, 60 s,
 * for version 2: about 20 new ones a second here, so at most ~1,200 at once in a long run,
 * measured at about 1 MiB per 100 with everything they hold) and the index. 64 MiB is ample
 * for that and far below what a leak proportional to the messages sent (millions in a long
 * run) would keep.
 */
const HEAP_BOUND = 64 * MiB
/**
 * Resident memory of the whole test process (server, client, fuzzers and libzmq's queues)
 * over its size before the fuzzing. The server reads at most a chunk (1 MB) per client in
 * transfer, and libzmq may queue up to its high-water mark for a client that stops reading;
 * 512 MiB allows for transfers to every fuzzer at once and to the good client, and catches
 * queues growing without bound (a client granting 2^64-1 credit and never reading).
 */
const RSS_BOUND = 512 * MiB

// --- process-wide crash detectors ------------------------------------------------------------

const crashes: string[] = []
const onUncaught = (error: unknown): void => void crashes.push(`uncaught exception: ${(error as Error)?.stack ?? String(error)}`)
const onRejection = (error: unknown): void => void crashes.push(`unhandled rejection: ${(error as Error)?.stack ?? String(error)}`)
/** A file handle nobody closed, closed by the garbage collector: a descriptor leaked until then. */
const onWarning = (warning: Error & { code?: string }): void => {
  if (warning.code === 'DEP0137' || /closing file descriptor/i.test(warning.message)) crashes.push(`leaked file handle: ${warning.message}`)
}

// --- messages ----------------------------------------------------------------------------------

const encode = (version: 1 | 2, message: Message): Frames => codecs[version].encode(message)
const ohai = (version: 1 | 2): Frames => encode(version, { id: MessageId.OHAI })
const nom = (version: 1 | 2, credit: bigint): Frames => encode(version, { id: MessageId.NOM, credit, sequence: 0n })
const MAX_U64 = (1n << 64n) - 1n
const plainResponse = (login: string, password: string): Buffer => Buffer.from(`\0${login}\0${password}`)

function icanhaz(random: Random, version: 1 | 2): Frames {
  const options = new Map<string, string>()
  if (random.chance(0.8)) options.set('RESYNC', '1')
  for (const name of ['MIRROR', 'ONCE', 'SYNCED', 'EOFDATA']) if (random.chance(0.3)) options.set(name, random.pick(['1', '0', '', 'x']))
  const cache = new Map<string, string>()
  for (let i = random.int(4); i > 0; i--) {
    cache.set(
      random.pick(['a.txt', '/a.txt', '/big.bin', 'nested/deep/b.bin', '../etc/passwd', '', '//x', 'big.bin']),
      random.pick(['da39a3ee5e6b4b0d3255bfef95601890afd80709', `${'0'.repeat(40)}@1048576`, `${'f'.repeat(40)}@18446744073709551615`, 'zz', '', '@']),
    )
  }
  const path = random.pick(['/', '/', '/nested', '/big.bin', '', 'relative', '/../..', '/a/../../b', '/%00', `/${'x'.repeat(200)}`])
  return encode(version, { id: MessageId.ICANHAZ, path, options, cache })
}

/** Valid messages in states that do not expect them. */
function invalidSequence(random: Random, version: 1 | 2): Frames[] {
  const other: 1 | 2 = version === 1 ? 2 : 1
  const any = (message: Message): Frames => encode(random.chance(0.8) ? version : other, message)
  const cheezburger: Message = { id: MessageId.CHEEZBURGER, sequence: 0n, operation: 1, filename: '/x', offset: 0n, eof: 1, headers: new Map(), chunk: Buffer.from('x') }
  const yarly: Message = { id: MessageId.YARLY, mechanism: random.pick(['PLAIN', 'ANONYMOUS', 'CURVE', '']), response: random.chance(0.5) ? plainResponse(LOGIN, PASSWORD) : random.bytes(random.int(40)) }
  const serverOnly: Message[] = [
    { id: MessageId.OHAI_OK },
    { id: MessageId.ORLY, mechanisms: ['PLAIN'], challenge: Buffer.alloc(0) },
    { id: MessageId.ICANHAZ_OK },
    cheezburger,
    { id: MessageId.SRSLY, reason: 'no' },
    { id: MessageId.RTFM, reason: 'no' },
  ]
  const sequences: Array<() => Frames[]> = [
    () => [nom(version, MAX_U64)],
    () => [icanhaz(random, version)],
    () => [any(cheezburger)],
    () => [any({ id: MessageId.HUGZ })],
    () => [any({ id: MessageId.KTHXBAI })],
    () => [ohai(version), any(yarly)],
    () => [any(yarly)],
    () => [ohai(version), ohai(version)],
    () => [ohai(version), ohai(other), icanhaz(random, version)],
    () => [ohai(version), icanhaz(random, version), nom(version, MAX_U64), nom(version, MAX_U64), nom(version, MAX_U64)],
    () => [ohai(version), icanhaz(random, version), nom(version, 5_000_000n), any({ id: MessageId.KTHXBAI }), nom(version, 1n)],
    () => [ohai(version), ...serverOnly.map(any)],
    () => [ohai(version), any(random.pick(serverOnly)), icanhaz(random, version)],
    () => [ohai(version), any({ id: MessageId.HUGZ_OK }), any({ id: MessageId.HUGZ }), nom(version, 0n)],
    () => [ohai(version), nom(version, BigInt(random.int(0x100000000)))],
  ]
  const frames = random.pick(sequences)()
  // Now and then without the signature: those must be dropped silently.
  return frames.map((message) => (random.chance(0.1) ? message.map((f, i) => (i === 0 ? Buffer.concat([Buffer.from([0x00, 0x00]), f.subarray(2)]) : f)) : message))
}

// --- one fuzzing socket ----------------------------------------------------------------------

interface Tally {
  messages: number
  sockets: number
  received: number
  timeouts: number
  byScenario: Record<string, number>
}

class Fuzzer {
  private socket!: Dealer
  private reading = true
  private readonly waiters = new Set<() => void>()
  private received = 0

  constructor(
    private readonly at: string,
    private readonly random: Random,
    private readonly tally: Tally,
    private readonly plain: boolean,
  ) {
    this.open()
  }

  /** A new socket: a new connection, so a new routing id at the server. */
  open(): void {
    // A small receive queue: a fuzzer that stops reading pushes back on the server at once.
    this.socket = new Dealer({ linger: 0, sendTimeout: 2000, receiveHighWaterMark: 64, sendHighWaterMark: 10_000 })
    this.socket.connect(this.at)
    this.reading = this.random.chance(0.85)
    this.tally.sockets++
    if (this.reading) void this.drain(this.socket)
  }

  reopen(): void {
    this.socket.close()
    this.open()
  }

  close(): void {
    this.socket.close()
    for (const wake of this.waiters) wake()
  }

  private async drain(socket: Dealer): Promise<void> {
    try {
      for await (const _frames of socket) {
        this.received++
        this.tally.received++
        for (const wake of this.waiters) wake()
      }
    } catch {
      // closed under us
    }
  }

  async send(frames: Frames): Promise<void> {
    try {
      await this.socket.send(frames)
      this.tally.messages++
    } catch {
      // EAGAIN (the server stopped reading us, or dropped the connection) or a closed socket
      this.tally.timeouts++
    }
  }

  /** Waits for `count` more replies, at most `ms` (a fuzzer that does not read waits the whole time). */
  private async replies(count: number, ms: number): Promise<void> {
    const target = this.received + count
    if (!this.reading) return
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        if (this.received < target && !timedOut) return
        clearTimeout(timer)
        this.waiters.delete(wake)
        resolve()
      }
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        wake()
      }, ms)
      this.waiters.add(wake)
    })
  }

  /** One scenario. */
  async step(): Promise<void> {
    const random = this.random
    const version: 1 | 2 = random.chance(0.5) ? 1 : 2
    const greet = async (): Promise<void> => {
      await this.send(ohai(version))
      // Wrong passwords go to another account: failed logins cool an account down for everyone.
      const [login, password] = random.chance(0.8) ? [LOGIN, PASSWORD] : [random.pick(['intruder', '', 'x'.repeat(300)]), 'wrong']
      if (this.plain) await this.send(encode(version, { id: MessageId.YARLY, mechanism: 'PLAIN', response: plainResponse(login, password) }))
    }
    const roll = random.next()
    let scenario: string
    if (roll < 0.3) {
      scenario = 'mutated'
      if (random.chance(0.5)) await greet()
      for (let i = random.range(1, 20); i > 0; i--) await this.send(mutateMany(random, random.pick(goldenFrames).frames).frames)
    } else if (roll < 0.45) {
      scenario = 'random'
      if (random.chance(0.3)) await greet()
      for (let i = random.range(1, 10); i > 0; i--) {
        // Now and then a frame over the server's 64 KiB limit: libzmq drops the connection.
        await this.send(random.chance(0.03) ? [Buffer.concat([Buffer.from([0xaa, 0xa3, 5]), randomBytes(70_000)])] : randomMessage(random, 4096))
      }
    } else if (roll < 0.65) {
      scenario = 'invalid-state'
      for (const frames of invalidSequence(random, version)) await this.send(frames)
    } else if (roll < 0.85) {
      scenario = 'transfer'
      await greet()
      await this.send(icanhaz(random, version))
      await this.send(nom(version, random.pick([1n, 1000n, 1_000_000n, 5_000_000n, MAX_U64])))
      await this.replies(random.range(1, 10), 100)
      switch (random.int(5)) {
        case 0:
          await this.send(encode(version, { id: MessageId.KTHXBAI })) // mid-transfer
          break
        case 1:
          await this.send(ohai(version)) // restart mid-transfer
          break
        case 2:
          await this.send(nom(version, MAX_U64)) // more than anyone may hold
          break
        case 3:
          this.reopen() // vanish mid-transfer
          break
        default:
        // go silent
      }
    } else if (roll < 0.95) {
      scenario = 'ghost'
      // Say OHAI from a new connection and vanish: the server keeps it until it expires.
      this.reopen()
      await greet()
      this.reopen()
    } else {
      scenario = 'reconnect'
      this.reopen()
    }
    this.tally.byScenario[scenario] = (this.tally.byScenario[scenario] ?? 0) + 1
  }
}

/**
 * A client that grants 2^64-1 credit again and again, subscribes again and again, and never
 * reads: what the server sends it piles up in queues unless the server bounds it. It paces
 * itself on the server's progress (octets of content sent), so it is never a mere flood of
 * messages (which the server may drop for that alone).
 */
async function hog(at: string, random: Random, deadline: number, tally: Tally, plain: boolean, enough: () => boolean, progress: () => number): Promise<void> {
  const socket = new Dealer({ linger: 0, sendTimeout: 2000, receiveHighWaterMark: 16 })
  socket.connect(at)
  tally.sockets++
  const version: 1 | 2 = random.chance(0.5) ? 1 : 2
  const send = async (frames: Frames): Promise<void> => {
    try {
      await socket.send(frames)
      tally.messages++
    } catch {
      tally.timeouts++
    }
  }
  /** Until the server sent more content than `from`, at most `ms`. */
  const moved = async (from: number, ms: number): Promise<boolean> => {
    const until = performance.now() + ms
    while (progress() === from && performance.now() < until) await new Promise((resolve) => setImmediate(resolve))
    return progress() !== from
  }
  try {
    await send(ohai(version))
    if (plain) await send(encode(version, { id: MessageId.YARLY, mechanism: 'PLAIN', response: plainResponse(LOGIN, PASSWORD) }))
    // Stops once memory is over the bound: the point is made, and a long run must not exhaust the machine.
    while (performance.now() < deadline && !enough()) {
      await send(encode(version, { id: MessageId.ICANHAZ, path: '/', options: new Map([['RESYNC', '1']]), cache: new Map() }))
      // Credit again each time the server moves on, until the tree is sent; then subscribe again.
      do await send(nom(version, MAX_U64))
      while (await moved(progress(), 50))
    }
  } finally {
    socket.close()
  }
}

// --- helpers -----------------------------------------------------------------------------------

/** Resolves when `check` holds, re-checked at each event of the client; rejects after `ms`. */
function until(client: Client, check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let busy = false
    let again = false
    const timer = setTimeout(() => finish(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    const names = ['delivered', 'deleted', 'connected', 'subscribed', 'synced'] as const
    const onEvent = (): void => void probe()
    for (const name of names) client.on(name, onEvent)
    function finish(error?: Error): void {
      clearTimeout(timer)
      for (const name of names) client.off(name, onEvent)
      if (error) reject(error)
      else resolve()
    }
    async function probe(): Promise<void> {
      if (busy) {
        again = true
        return
      }
      busy = true
      try {
        do {
          again = false
          if (await check()) return finish()
        } while (again)
      } catch {
        // a file being put in place between listing and reading: the next event looks again
      } finally {
        busy = false
      }
    }
    void probe()
  })
}

/** Sends OHAI from a fresh socket and returns the id of the answer (undefined after `ms`). */
async function freshOhai(at: string, version: 1 | 2, ms: number): Promise<number | undefined> {
  const socket = new Dealer({ linger: 0, receiveTimeout: ms, sendTimeout: ms })
  socket.connect(at)
  try {
    await socket.send(ohai(version))
    const [first] = await socket.receive()
    return first?.[2]
  } catch {
    return undefined
  } finally {
    socket.close()
  }
}

interface Sample {
  heapUsed: number
  rss: number
  peers: number
}

/** The server's live clients (a private field: read for the figures only). */
const peerCount = (server: Server): number => (server as unknown as { peers: Map<string, unknown> }).peers.size

// --- the runs ----------------------------------------------------------------------------------

describe('fuzz: a live server', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fmq-fuzz-server-'))
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onRejection)
    process.on('warning', onWarning)
  })
  after(async () => {
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onRejection)
    process.off('warning', onWarning)
    await rm(dir, { recursive: true, force: true })
  })

  /** One run: a server, the good client, the fuzzers (and the hog, when asked) for `share` of the time. */
  async function run(t: TestContext, name: string, access: 'anonymous' | 'plain', share: number, withHog: boolean): Promise<void> {
    const random = new Random(SEED ^ (access === 'plain' ? 0x5a5a : 0) ^ (withHog ? 0x0f0f : 0))
    const source = join(dir, `${name}-source`)
    const inbox = join(dir, `${name}-inbox`)
    const files: Record<string, Buffer> = {
      'a.txt': Buffer.from('hello\n'),
      empty: Buffer.alloc(0),
      'nested/deep/b.bin': randomBytes(100_000),
      'big.bin': randomBytes(6 * MiB + 12_345),
    }
    for (let i = 0; i < 10; i++) files[`small/${i}.txt`] = randomBytes(1 + i * 997)
    await write(source, files)
    await mkdir(inbox, { recursive: true })

    const crashesBefore = crashes.length
    const errors: string[] = []
    const server = new Server({ anonymous: access === 'anonymous', plain: access === 'plain', accounts: [{ login: LOGIN, password: PASSWORD }], loginDelay: 50 })
    server.on('error', (error) => errors.push(error.stack ?? error.message))
    await server.publish(source, '/')
    const at = await server.bind('tcp://127.0.0.1:*')

    const good = new Client({ inbox, resync: true, ...(access === 'plain' ? { login: LOGIN, password: PASSWORD } : {}) })
    const clientErrors: string[] = []
    good.on('error', (event) => clientErrors.push(JSON.stringify(event)))

    collectGarbage()
    const baseline = process.memoryUsage()
    const max: Sample = { heapUsed: baseline.heapUsed, rss: baseline.rss, peers: 0 }
    const sampler = setInterval(() => {
      const now = process.memoryUsage()
      max.heapUsed = Math.max(max.heapUsed, now.heapUsed)
      max.rss = Math.max(max.rss, now.rss)
      max.peers = Math.max(max.peers, peerCount(server))
    }, 100)

    const tally: Tally = { messages: 0, sockets: 0, received: 0, timeouts: 0, byScenario: {} }
    const fuzzers = Array.from({ length: FUZZERS }, () => new Fuzzer(at, random.fork(), tally, access === 'plain'))
    try {
      await good.connect(at)
      const subscribed = good.subscribe('/')

      const started = performance.now()
      const deadline = started + SECONDS * 1000 * share
      let lateWritten = false
      await Promise.all([
        withHog ? hog(at, random.fork(), deadline, tally, access === 'plain', () => max.rss - baseline.rss > RSS_BOUND, () => server.stats.contentBytes) : Promise.resolve(),
        ...fuzzers.map(async (fuzzer, i) => {
          while (performance.now() < deadline) {
            await fuzzer.step()
            if (i === 0 && !lateWritten && performance.now() > started + (deadline - started) / 2) {
              // A file written mid-fuzz: the good client must get it while the fuzzing goes on.
              lateWritten = true
              files['late/late.bin'] = randomBytes(2 * MiB)
              await mkdir(join(source, 'late'), { recursive: true })
              await writeFile(join(source, 'late/late.bin'), files['late/late.bin'])
            }
          }
        }),
      ])
      const seconds = (performance.now() - started) / 1000
      for (const fuzzer of fuzzers) fuzzer.close()

      await subscribed
      await until(good, () => sameTree(source, inbox), CLIENT_TIMEOUT_MS, 'the good client to hold the whole tree')
      const answers = { 1: await freshOhai(at, 1, 5000), 2: await freshOhai(at, 2, 5000) }
      const expected = access === 'anonymous' ? MessageId.OHAI_OK : MessageId.ORLY
      clearInterval(sampler)
      collectGarbage()
      // Warnings of handles closed by that collection are emitted on a later turn.
      await new Promise((resolve) => setImmediate(resolve))
      const end = process.memoryUsage()
      const rate = Math.round(tally.messages / seconds)

      t.diagnostic(`seed ${SEED}: ${tally.messages} messages in ${seconds.toFixed(1)} s (${rate}/s) from ${tally.sockets} sockets; ${tally.received} replies; ${tally.timeouts} sends timed out; the server sent ${mib(server.stats.contentBytes)} of content`)
      t.diagnostic(`scenarios: ${JSON.stringify(tally.byScenario)}`)
      t.diagnostic(`memory: heap ${mib(baseline.heapUsed)} before, max ${mib(max.heapUsed)}, ${mib(end.heapUsed)} after; rss ${mib(baseline.rss)} before, max ${mib(max.rss)}; at most ${max.peers} clients known at once, ${peerCount(server)} at the end`)
      await recordFigure(`fuzz server (${name}): messages per second`, rate, 'messages/s')
      await recordFigure(`fuzz server (${name}): messages sent`, tally.messages, 'messages')
      await recordFigure(`fuzz server (${name}): max heap growth`, Number(((max.heapUsed - baseline.heapUsed) / MiB).toFixed(1)), 'MiB')
      await recordFigure(`fuzz server (${name}): max RSS growth`, Number(((max.rss - baseline.rss) / MiB).toFixed(1)), 'MiB')
      await recordFigure(`fuzz server (${name}): max clients known`, max.peers, 'clients')

      const again = reproduce(SEED, SECONDS, FILE)
      assert.deepEqual(crashes.slice(crashesBefore), [], `the process must not crash nor leak file handles; ${again}`)
      assert.deepEqual(errors, [], `the server must not report errors; ${again}`)
      assert.equal(answers[2], expected, `a fresh version 2 OHAI must be answered; ${again}`)
      assert.equal(answers[1], expected, `a fresh version 1 OHAI must be answered; ${again}`)
      assert.ok(end.heapUsed - baseline.heapUsed < HEAP_BOUND, `live heap grew by ${mib(end.heapUsed - baseline.heapUsed)} (bound ${mib(HEAP_BOUND)}); ${again}`)
      assert.ok(max.rss - baseline.rss < RSS_BOUND, `RSS grew by ${mib(max.rss - baseline.rss)} (bound ${mib(RSS_BOUND)}); ${again}`)
      assert.ok(tally.messages > 0, 'the fuzzers must have sent something')
    } finally {
      clearInterval(sampler)
      for (const fuzzer of fuzzers) fuzzer.close()
      await good.close()
      await server.close()
    }
  }

  test(`anonymous access: fuzzed for ${SECONDS * 0.375} s by ${FUZZERS} sockets while a good client mirrors the tree (seed ${SEED})`, (t) => run(t, 'anonymous', 'anonymous', 0.375, false))
  test(`PLAIN access: fuzzed for ${SECONDS * 0.375} s by ${FUZZERS} sockets while a good client mirrors the tree (seed ${SEED})`, (t) => run(t, 'plain', 'plain', 0.375, false))
  test(`with a client that grants 2^64-1 credit again and again and never reads, for ${SECONDS * 0.25} s (seed ${SEED})`, (t) =>
    run(t, 'hog', 'anonymous', 0.25, true),
  )
})
