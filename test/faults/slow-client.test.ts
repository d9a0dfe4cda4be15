/**
 * Scenario 4: clients that stop reading. A raw DEALER that greets, subscribes, grants 1 GiB
 * of credit and never reads (its receive queue held to one message, so the bytes back up
 * into the server), and an `fmq client` process frozen with SIGSTOP mid-transfer. Meanwhile
 * the server (a child process) must keep its memory bounded, measured from /proc/PID/status
 * VmRSS, and a healthy client must keep its speed, measured with and without the stalled ones.
 *
 * The bound asserted: the server's RSS never exceeds its RSS before the stalled clients came
 * plus the credit they can make it hold (the server caps any client's credit at 64 MiB; the
 * frozen fmq client grants its 8 MiB window) plus 96 MiB for the transfer to the healthy
 * client and the garbage collector's slack. Anything growing with the tree or with time
 * (messages queued beyond the credit, a leak per chunk) breaks it: the tree is larger than
 * the cap.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Dealer } from 'zeromq'
import { codecs } from '../../src/protocol/generated/fmq_codecs.js'
import { MessageId } from '../../src/protocol/generated/fmq_msg.js'
import { until } from '../fixtures/until.js'
import { recordFigure } from './figures.js'
import { buildTree, differences, fmqClient, LONG, manifestOf, MiB, randomFor, rssOf, RssSampler, SEED, ServerProcess, totalSize, withSeed } from './harness.js'

const TREE = (LONG ? 300 : 96) * MiB
const CREDIT_CAP = 64 * MiB
const CLIENT_WINDOW = 8 * MiB
const SLACK = 96 * MiB

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-slow-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

test(`clients that stop reading (a raw DEALER with 1 GiB of credit, an fmq client under SIGSTOP) keep the server's memory bounded and do not slow a healthy client (${TREE / MiB} MiB, seed ${SEED})`, async () =>
  withSeed(async () => {
    const random = randomFor('slow-client')
    const source = join(dir, 'source')
    const tree = await buildTree(source, TREE, random)
    const treeBytes = totalSize(tree)
    const server = new ServerProcess(source, 'tcp://127.0.0.1:*', { stateDir: join(dir, 'server-state') })
    closers.push(() => server.kill())
    const at = await server.at
    const sampler = new RssSampler(server.pid, 20)
    closers.push(async () => sampler.stop())

    /** A healthy client mirrors the tree into a fresh inbox; octets per second from its greeting to its exit. */
    let runs = 0
    const healthy = async (): Promise<number> => {
      const inbox = join(dir, `healthy-${runs++}`)
      const client = fmqClient(at, inbox, ['--once'])
      closers.push(() => client.kill())
      await client.waitFor((l) => l.type === 'connected', 60_000, 'the healthy client connected')
      const started = performance.now()
      assert.equal(await client.exited, 0, `the healthy client completes; stderr: ${client.stderr.slice(-3).join(' | ')}`)
      const seconds = (performance.now() - started) / 1000
      assert.deepEqual(differences(tree, await manifestOf(inbox)), [], 'the healthy client has the whole tree')
      return treeBytes / seconds
    }

    await healthy() // warm-up: the server hashes the tree as it sends it the first time
    const alone = await healthy()
    const before = (await rssOf(server.pid))!

    // The raw DEALER: libzmq in this process holds one message, the kernel the rest.
    const sentBefore = (await server.stats()).contentBytes
    const codec = codecs[2]
    const deaf = new Dealer({ linger: 0, receiveHighWaterMark: 1, receiveBufferSize: 64 * 1024 })
    closers.push(async () => deaf.close())
    deaf.connect(at)
    await deaf.send(codec.encode({ id: MessageId.OHAI }))
    await deaf.send(codec.encode({ id: MessageId.ICANHAZ, path: '/', options: new Map([['RESYNC', '1']]), cache: new Map() }))
    await deaf.send(codec.encode({ id: MessageId.NOM, credit: 1024n * BigInt(MiB), sequence: 0n }))

    // The frozen client: stopped once some of the tree has come in.
    const frozenInbox = join(dir, 'frozen')
    const frozen = fmqClient(at, frozenInbox)
    closers.push(() => frozen.kill())
    await frozen.waitFor((l) => l.type === 'progress' || l.type === 'delivered', 60_000, 'the frozen client receiving')
    frozen.child.kill('SIGSTOP')
    closers.push(async () => frozen.child.kill('SIGCONT'))

    // The server has filled what the deaf DEALER granted (the cap) before the healthy client is timed.
    await until(async () => (await server.stats()).contentBytes - sentBefore >= CREDIT_CAP - 2 * MiB, 60_000, 'the server to send the capped credit to the deaf client')
    const beside = await healthy()
    const bound = before + CREDIT_CAP + CLIENT_WINDOW + SLACK
    const max = Math.max(sampler.max, (await rssOf(server.pid)) ?? 0)
    sampler.stop()

    // The frozen client, thawed, finishes by itself.
    frozen.child.kill('SIGCONT')
    await until(async () => differences(tree, await manifestOf(frozenInbox)).length === 0, 120_000, 'the thawed client to complete')

    recordFigure('server RSS before the stalled clients (scenario 4)', +(before / MiB).toFixed(1), 'MiB')
    recordFigure('max server RSS with a deaf DEALER and a SIGSTOPped client (scenario 4)', +(max / MiB).toFixed(1), 'MiB')
    recordFigure('server RSS bound asserted (scenario 4)', +(bound / MiB).toFixed(1), 'MiB')
    recordFigure('healthy client alone (scenario 4)', +(alone / MiB).toFixed(1), 'MiB/s')
    recordFigure('healthy client beside the stalled ones (scenario 4)', +(beside / MiB).toFixed(1), 'MiB/s')
    recordFigure('healthy client speed kept (scenario 4)', +((100 * beside) / alone).toFixed(0), '%')
    assert.ok(max <= bound, `server RSS ${(max / MiB).toFixed(1)} MiB stays within ${(bound / MiB).toFixed(1)} MiB`)
    // One run each on two shared cores is noisy (61% to 109% seen): the floor is set to catch
    // a client held back by the stalled ones (it would wait sendTimeout, 10 s, at each send),
    // not to grade the speed; the figure above is the measure.
    assert.ok(beside >= alone * 0.3, `a healthy client beside stalled ones keeps its speed (${(beside / MiB).toFixed(1)} vs ${(alone / MiB).toFixed(1)} MiB/s)`)
  }))
