/**
 * Scenario 3: connection cuts, stalls and half-closes. A loopback proxy (proxy.ts) between
 * `fmq client` and the server injects faults at random, driven by the octets it forwards:
 * connections destroyed, connections that stop forwarding for longer than the heartbeat
 * timeouts, and FIN sent to one side only. The client recovers through its heartbeats and
 * reconnections; once the proxy turns clean the mirror equals the source, nothing lost.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { recordFigure } from './figures.js'
import { buildTree, clientConfig, differences, fmqClient, LONG, manifestOf, MiB, randomFor, SEED, ServerProcess, totalSize, withSeed } from './harness.js'
import { FaultyProxy } from './proxy.js'
import { TornWatcher } from './torn-watch.js'

const TREE = (LONG ? 300 : 24) * MiB
const FAULT_COUNT = LONG ? 40 : 8
/** The client's heartbeat (ms); with expiry 5 it gives up on a silent link after 1 s. */
const HEARTBEAT = 200
const BWLIMIT = LONG ? 30 * MiB : 12 * MiB

let dir: string
const closers: Array<() => Promise<unknown>> = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmq-faults-chaos-'))
})
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined)
  await rm(dir, { recursive: true, force: true })
})

test(`${FAULT_COUNT} random cuts, stalls and half-closes between client and server: the ${TREE / MiB} MiB mirror ends equal, nothing lost (seed ${SEED})`, async () =>
  withSeed(async () => {
    const random = randomFor('connection-chaos')
    const source = join(dir, 'source')
    const inbox = join(dir, 'inbox')
    const tree = await buildTree(source, TREE, random)
    const treeBytes = totalSize(tree)
    const server = new ServerProcess(source, 'tcp://127.0.0.1:*', { stateDir: join(dir, 'server-state') })
    closers.push(() => server.kill())
    const proxy = new FaultyProxy(await server.at)
    closers.push(() => proxy.close())
    const at = await proxy.listen()
    const faults: string[] = []
    proxy.on('fault', (f) => faults.push(`${f.fault}${f.detail === undefined ? '' : ` (${f.detail})`} at ${f.atBytes}`))
    // Spread over the tree, so that every fault lands while content flows.
    const calm = proxy.chaos(random, { faults: FAULT_COUNT, everyBytes: Math.floor((0.8 * treeBytes) / FAULT_COUNT), stallMs: HEARTBEAT * 5 * 2 })

    await mkdir(inbox)
    const watcher = TornWatcher.fromManifest(inbox, tree)
    await watcher.start()
    closers.push(() => watcher.stop())
    const config = await clientConfig(join(dir, 'client.cfg'), HEARTBEAT)
    const client = fmqClient(at, inbox, ['-c', config, '--bwlimit', String(BWLIMIT)])
    closers.push(() => client.kill())

    await calm
    // Clean from here on: the mirror must converge by itself. 'synced' after the last fault
    // means the server has sent everything the client's latest conversation asked for.
    const mark = client.lines.length
    await client.waitFor((l) => l.type === 'synced' && client.lines.indexOf(l) >= mark, 300_000, `a synced mark after the last fault (faults: ${faults.join('; ')})`)
    const mirror = await manifestOf(inbox)
    await watcher.stop()
    assert.equal(client.child.exitCode, null, 'the client is still running')

    assert.deepEqual(differences(tree, mirror), [], `the mirror equals the source (faults: ${faults.join('; ')})`)
    assert.deepEqual(watcher.torn, [], 'no file was ever seen torn under its final name')
    assert.equal(proxy.faults.length, FAULT_COUNT)
    const counts = (kind: string) => proxy.faults.filter((f) => f.fault === kind).length
    recordFigure('proxy faults survived (scenario 3)', `${proxy.faults.length} (${counts('drop')} cuts, ${counts('stall')} stalls, ${counts('half-close')} half-closes)`)
    recordFigure('TCP connections the client opened through the proxy (scenario 3)', proxy.accepted)
    recordFigure('octets through the proxy, server to client, over the tree (scenario 3)', +(proxy.bytesDown / treeBytes).toFixed(3), '×')
    recordFigure('disconnections the client reported (scenario 3)', client.lines.filter((l) => l.type === 'disconnected').length)
  }))
