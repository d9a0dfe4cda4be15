/**
 * Scenario 2: the server killed with SIGKILL mid-transfer and started again on the same port
 * with the same state folder, several times; the `fmq client` process, never restarted,
 * completes by itself (heartbeats, reconnection, resume) and ends an exact mirror.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { recordFigure } from './figures.js'
import { buildTree, differences, fmqClient, LONG, manifestOf, MiB, randomFor, receivedBytes, SEED, ServerProcess, totalSize, withSeed } from './harness.js'
import { TornWatcher } from './torn-watch.js'

const TREE = (LONG ? 300 : 24) * MiB
const KILLS = LONG ? 6 : 3
const BWLIMIT = LONG ? 40 * MiB : 8 * MiB

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-server-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

test(`the server killed (SIGKILL) ${KILLS} times mid-transfer and restarted: the client, never restarted, completes the ${TREE / MiB} MiB mirror by itself (seed ${SEED})`, async () =>
  withSeed(async () => {
    const random = randomFor('server-kill')
    const source = join(dir, 'source')
    const inbox = join(dir, 'inbox')
    const state = join(dir, 'server-state')
    const tree = await buildTree(source, TREE, random)
    const treeBytes = totalSize(tree)
    const start = (endpoint: string): ServerProcess => {
      const server = new ServerProcess(source, endpoint, { stateDir: state })
      closers.push(() => server.kill())
      return server
    }
    let server = start('tcp://127.0.0.1:*')
    const at = await server.at

    await mkdir(inbox)
    const watcher = TornWatcher.fromManifest(inbox, tree)
    await watcher.start()
    closers.push(() => watcher.stop())
    const client = fmqClient(at, inbox, ['--bwlimit', String(BWLIMIT), '--once'])
    closers.push(() => client.kill())

    // Kill points: random shares of the tree as the client counts it, in order.
    const points = Array.from({ length: KILLS }, () => Math.floor(treeBytes * (0.05 + 0.85 * random.next()))).sort((a, b) => a - b)
    const recoveries: number[] = []
    let kills = 0
    for (const point of points) {
      const reached = await client.waitFor((l) => l.type === 'synced' || receivedBytes(client.lines) >= point, 120_000, `${point} octets received`)
      if (reached.type === 'synced') break
      await server.kill('SIGKILL')
      kills++
      const mark = client.lines.length
      const killedAt = Date.now()
      server = start(at)
      assert.equal(await server.at, at, 'the server is back on the same endpoint')
      // The client notices and comes back by itself: a new greeting with the restarted server.
      await client.waitFor((l) => l.type === 'connected' && client.lines.indexOf(l) >= mark, 60_000, 'the client greeting the restarted server')
      recoveries.push(Date.now() - killedAt)
    }
    assert.equal(await client.exited, 0, `the client exits 0 once synced; stderr: ${client.stderr.slice(-5).join(' | ')}`)
    await watcher.stop()

    assert.deepEqual(differences(tree, await manifestOf(inbox)), [], 'the mirror equals the source')
    assert.deepEqual(watcher.torn, [], 'no file was ever seen torn under its final name')
    assert.ok(kills >= 1, 'the server was killed mid-transfer at least once')
    const disconnects = client.lines.filter((l) => l.type === 'disconnected').length
    recordFigure('server SIGKILLs survived, client never restarted (scenario 2)', kills)
    recordFigure('client reconnection after a server kill, slowest (scenario 2)', Math.max(...recoveries), 'ms')
    recordFigure('disconnections the client reported (scenario 2)', disconnects)
  }))
